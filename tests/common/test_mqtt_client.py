"""The one module that reaches under aiomqtt: fails loudly if aiomqtt's private parts it
uses are gone (an upgrade), and delivers messages directly against a real mosquitto."""

from __future__ import annotations

import asyncio

import aiomqtt
import paho.mqtt.client as mqtt
import pytest

from common import mqtt_client
from tests.support.servers import MosquittoServer


async def test_the_private_parts_used_are_there() -> None:
    client = aiomqtt.Client("127.0.0.1", 1)
    paho = mqtt_client.paho_client(client)
    assert isinstance(paho, mqtt.Client)
    assert isinstance(client._disconnected, asyncio.Future)
    assert callable(paho.manual_ack_set) and callable(paho.ack)
    # aiomqtt's own queue is fed through paho's on_message: what deliver_to replaces.
    assert paho.on_message == client._on_message


@pytest.mark.integration
async def test_messages_go_to_the_callback_not_the_queue_and_a_failing_one_is_survived(
    mosquitto: MosquittoServer,
) -> None:
    got: list[tuple[str, bytes, int]] = []
    three = asyncio.Event()

    def receive(topic: str, payload: bytes, qos: int, mid: int) -> None:
        if payload == b"boom":
            raise RuntimeError("a bug in the handler")
        got.append((topic, payload, qos))
        if len(got) == 3:
            three.set()

    client = aiomqtt.Client(mosquitto.host, mosquitto.port)
    mqtt_client.deliver_to(client, receive)
    async with client, aiomqtt.Client(mosquitto.host, mosquitto.port) as publisher:
        await client.subscribe("direct/#", qos=1)
        for payload in (b"a", b"boom", b"b", b"c"):
            await publisher.publish("direct/x", payload, qos=1)
        await three.wait()  # bounded by pytest's timeout
        assert got == [("direct/x", b"a", 1), ("direct/x", b"b", 1), ("direct/x", b"c", 1)]
        assert len(client.messages) == 0  # nothing queued in aiomqtt
        waiting = asyncio.create_task(mqtt_client.disconnected(client))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # still connected after the failing message
        waiting.cancel()
    assert client._disconnected.done()  # cancelling the wait left aiomqtt's future alone
