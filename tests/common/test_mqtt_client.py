"""The one module that reaches under aiomqtt: fails loudly if aiomqtt's private parts it
uses are gone (an upgrade), and delivers messages directly against a real mosquitto."""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common import mqtt_client
from harness.servers import MosquittoServer


async def test_the_private_parts_used_are_there() -> None:
    client = aiomqtt.Client("127.0.0.1", 1)
    paho = mqtt_client.paho_client(client)
    assert isinstance(paho, mqtt.Client)
    assert isinstance(client._disconnected, asyncio.Future)
    assert callable(paho.manual_ack_set) and callable(paho.ack)
    # aiomqtt's own queue is fed through paho's on_message: what deliver_to replaces.
    assert paho.on_message == client._on_message
    # What PacketReader reads and calls in place of paho's own reader.
    for method in (
        "_sock_recv",
        "_packet_handle",
        "_loop_rc_handle",
        "_send_puback",
        "_packet_queue",
    ):
        assert callable(getattr(paho, method)), method
    for attribute in (
        "_sock",
        "_msgtime_mutex",
        "_last_bytes_received",
        "_in_packet",
        "_protocol",
        "_manual_ack",
    ):
        assert hasattr(paho, attribute), attribute
    assert set(paho._in_packet) == set(mqtt_client._in_packet(0, b""))


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


def _encode(command: int, body: bytes) -> bytes:
    length, header = len(body), bytearray([command])
    while True:
        byte, length = length & 0x7F, length >> 7
        header.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(header) + body


@settings(max_examples=200, deadline=None)
@given(
    packets=st.lists(
        st.tuples(
            st.integers(0, 255),
            st.one_of(st.binary(max_size=300), st.integers(0, 40_000).map(lambda n: b"x" * n)),
        ),
        max_size=12,
    ),
    cuts=st.lists(st.integers(1, 50_000), max_size=20),
)
def test_packets_split_anywhere_come_out_whole_and_in_order(
    packets: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(_encode(c, b) for c, b in packets)
    buffer, out, at = bytearray(), [], 0
    for size in [*cuts, len(stream)]:  # the reads of a socket, then the rest
        buffer += stream[at : at + size]
        at += size
        complete, used = mqtt_client.split_packets(buffer)
        del buffer[:used]
        out += complete
    assert out == packets
    assert buffer == b""


def test_a_remaining_length_of_five_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        mqtt_client.split_packets(b"\x30\xff\xff\xff\xff\x01")
    # Four bytes of length is the most there is, and an incomplete packet waits.
    assert mqtt_client.split_packets(b"\x30\xff\xff\xff\x7f") == ([], 0)


@pytest.mark.integration
@pytest.mark.parametrize("protocol", [aiomqtt.ProtocolVersion.V311, aiomqtt.ProtocolVersion.V5])
async def test_a_burst_of_every_size_and_kind_arrives_whole_and_in_order(
    mosquitto: MosquittoServer, protocol: aiomqtt.ProtocolVersion
) -> None:
    """Small messages many to a read, one larger than a read, QoS 0/1/2, and (MQTT 5) a
    message with properties, which paho decodes: all delivered, in order, once."""
    # In runs of one QoS: a publisher alternating QoS 0 and 1 takes ~40 ms a message.
    sent = [("burst/zero", f'{{"value": {k}}}'.encode(), 0) for k in range(1500)]
    sent.append(("burst/large", bytes(range(256)) * 1000, 1))  # 256 KB, several reads
    sent += [("burst/one", f'{{"value": {k}}}'.encode(), 1) for k in range(1500)]
    sent.append(("burst/props", b"with properties", 1))
    # Last: a QoS 2 message reaches the callback only at PUBREL, and a message published
    # after it may overtake it (MQTT orders messages of one QoS, not across QoS levels).
    sent.append(("burst/two", b"exactly once", 2))
    got: list[tuple[str, bytes, int]] = []
    done = asyncio.Event()

    def receive(topic: str, payload: bytes, qos: int, mid: int) -> None:
        got.append((topic, payload, qos))
        if len(got) == len(sent):
            done.set()

    client = aiomqtt.Client(mosquitto.host, mosquitto.port, protocol=protocol, keepalive=1)
    mqtt_client.deliver_to(client, receive)
    publisher = aiomqtt.Client(mosquitto.host, mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5)
    async with client, publisher:
        await client.subscribe("burst/#", qos=2)
        for topic, payload, qos in sent[:-2]:
            await publisher.publish(topic, payload, qos=qos)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = ("line", "l1")
        topic, payload, qos = sent[-2]
        await publisher.publish(topic, payload, qos=qos, properties=properties)
        topic, payload, qos = sent[-1]
        await publisher.publish(topic, payload, qos=qos)
        await done.wait()  # bounded by pytest's timeout
        # Quiet for three keepalive periods: paho's pings are answered through the reader.
        await asyncio.sleep(3.5)
        waiting = asyncio.create_task(mqtt_client.disconnected(client))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        waiting.cancel()
    # The subscription grants what the publisher used (mosquitto gives the lower QoS).
    assert got == sent


@pytest.mark.integration
@pytest.mark.parametrize("manual", [False, True])
async def test_qos1_is_acknowledged_by_paho_unless_acknowledgement_is_manual(
    mosquitto: MosquittoServer, manual: bool
) -> None:
    got: list[bytes] = []
    five = asyncio.Event()

    def receive(topic: str, payload: bytes, qos: int, mid: int) -> None:
        got.append(payload)
        if len(got) >= 5:
            five.set()

    async def session() -> None:
        client = aiomqtt.Client(
            mosquitto.host, mosquitto.port, identifier=f"acks-{manual}", clean_session=False
        )
        if manual:
            mqtt_client.enable_manual_acks(client)
        mqtt_client.deliver_to(client, receive)
        async with client:
            await client.subscribe("acks/x", qos=1)
            await five.wait()  # bounded by pytest's timeout
            await asyncio.sleep(0.3)  # time for the acknowledgements to reach the broker

    async with aiomqtt.Client(
        mosquitto.host, mosquitto.port, identifier=f"acks-{manual}", clean_session=False
    ) as first:
        await first.subscribe("acks/x", qos=1)  # the persistent session exists
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as publisher:
        for k in range(5):
            await publisher.publish("acks/x", str(k).encode(), qos=1)
    await session()
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    got.clear()
    # The next connection of the session gets again exactly what was not acknowledged.
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as publisher:
        for k in range(5, 10):
            await publisher.publish("acks/x", str(k).encode(), qos=1)
    five.clear()
    await session()
    again = [b"0", b"1", b"2", b"3", b"4"] if manual else []
    assert got[: len(again)] == again
    assert got[len(again) :][:5] == [b"5", b"6", b"7", b"8", b"9"]


@pytest.mark.integration
async def test_a_paused_reader_reads_nothing_keeps_the_connection_and_resumes_in_order(
    mosquitto: MosquittoServer,
) -> None:
    """Paused for three keepalive periods with messages waiting unread: paho would take the
    silence for a dead broker and close; bytes waiting in the kernel count as received."""
    got: list[bytes] = []
    done = asyncio.Event()
    sent = [str(k).encode() for k in range(300)]

    def receive(topic: str, payload: bytes, qos: int, mid: int) -> None:
        got.append(payload)
        if len(got) == len(sent):
            done.set()

    client = aiomqtt.Client(mosquitto.host, mosquitto.port, keepalive=1)
    reader = mqtt_client.deliver_to(client, receive)
    async with client, aiomqtt.Client(mosquitto.host, mosquitto.port) as publisher:
        await client.subscribe("paused/x", qos=1)
        reader.pause()
        assert reader.paused
        for payload in sent:
            await publisher.publish("paused/x", payload, qos=1)
        waiting = asyncio.create_task(mqtt_client.disconnected(client))
        await asyncio.sleep(3.5)
        assert got == []
        assert not waiting.done()
        reader.resume()
        await done.wait()  # bounded by pytest's timeout
        assert not waiting.done()
        waiting.cancel()
    assert got == sent
    assert reader.pauses == 1


@pytest.mark.integration
@pytest.mark.parametrize("protocol", [aiomqtt.ProtocolVersion.V311, aiomqtt.ProtocolVersion.V5])
async def test_acknowledgements_given_together_leave_together_and_all_count(
    mosquitto: MosquittoServer, protocol: aiomqtt.ProtocolVersion
) -> None:
    """PUBACKs given during one turn of the event loop (every message of a read) go out
    as one write; the broker takes every one (the next connection of the session gets
    nothing of them again), and the messages left unacknowledged come again."""
    identifier = f"batched-acks-{protocol.name}"
    got: list[bytes] = []
    arrived = asyncio.Event()

    async def session(acknowledged: int) -> None:
        client = aiomqtt.Client(
            mosquitto.host, mosquitto.port, identifier=identifier, **_resumed(protocol)
        )

        def receive(topic: str, payload: bytes, qos: int, mid: int) -> None:
            got.append(payload)
            if len(got) <= acknowledged:
                mqtt_client.acknowledge(client, mid, qos)
            if len(got) == 400:
                arrived.set()

        mqtt_client.enable_manual_acks(client)
        mqtt_client.deliver_to(client, receive)
        async with client:
            await client.subscribe("batched/x", qos=1)
            await arrived.wait()  # bounded by pytest's timeout
            await asyncio.sleep(0.5)  # time for the acknowledgements to reach the broker

    async with aiomqtt.Client(
        mosquitto.host, mosquitto.port, identifier=identifier, **_resumed(protocol)
    ) as first:
        await first.subscribe("batched/x", qos=1)  # the persistent session exists
    sent = [str(k).encode() for k in range(400)]
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as publisher:
        for payload in sent:
            await publisher.publish("batched/x", payload, qos=1)
    await session(390)  # all but the last ten
    assert got == sent
    got.clear()
    arrived.clear()
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as publisher:
        for payload in sent[:390]:
            await publisher.publish("batched/x", b"new " + payload, qos=1)
    await session(400)
    assert got[:10] == sent[390:]  # the unacknowledged ten, again, first
    assert got[10:] == [b"new " + payload for payload in sent[:390]]


def _resumed(protocol: aiomqtt.ProtocolVersion) -> dict[str, Any]:
    """A session that outlives the connection, in either protocol's terms."""
    if protocol != aiomqtt.ProtocolVersion.V5:
        return {"protocol": protocol, "clean_session": False}
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 300
    return {"protocol": protocol, "clean_start": False, "properties": properties}
