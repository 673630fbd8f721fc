"""The shipped central-broker configs keep what they acknowledged across a kill -9.

The edge deletes a batch from its disk buffer once the central broker has acknowledged it,
so a broker that loses acknowledged messages in a crash loses data. Each shipped config's
persistence lines (``deploy/mosquitto/*.conf``, read from the files themselves) run a real
mosquitto: a persistent subscriber is offline, 100 QoS 1 messages are published and
acknowledged, the broker is killed with SIGKILL and started again, and the subscriber must
receive all 100. (With the ``autosave_interval 60`` the files had before: 0 of 100.)
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness.broker_config import CENTRAL, CENTRAL_SECURE, shipped_lines
from harness.servers import LOOPBACK, MosquittoServer

MESSAGES = 100


def _session(port: int, client_id: str) -> aiomqtt.Client:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    return aiomqtt.Client(
        LOOPBACK,
        port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=props,
    )


@pytest.mark.parametrize("shipped", [CENTRAL, CENTRAL_SECURE], ids=lambda p: p.name)
async def test_acknowledged_messages_survive_a_kill_of_the_broker(
    shipped: Path, tmp_path: Path
) -> None:
    broker = MosquittoServer(tmp_path / "broker", extra_config=shipped_lines(shipped))
    await broker.start_async()
    topic = f"durability/{uuid.uuid4().hex[:8]}"
    subscriber = f"sub-{uuid.uuid4().hex[:8]}"
    try:
        async with _session(broker.port, subscriber) as client:
            await client.subscribe(topic, qos=1)
        async with aiomqtt.Client(LOOPBACK, broker.port, identifier="pub") as publisher:
            for i in range(MESSAGES):
                await publisher.publish(topic, str(i).encode(), qos=1)  # returns on PUBACK
        # Give the broker one loop to act on its autosave rule, as it would between two
        # messages in production; a save every 60 s would not come.
        await asyncio.sleep(0.5)
        await broker.kill_async()
        await broker.start_async()
        received: set[str] = set()
        async with _session(broker.port, subscriber) as client:
            await client.subscribe(topic, qos=1)
            try:
                async with asyncio.timeout(10):
                    async for message in client.messages:
                        received.add(bytes(message.payload).decode())
                        if len(received) == MESSAGES:
                            break
            except TimeoutError:
                pass
        assert len(received) == MESSAGES, f"{shipped.name}: {len(received)} of {MESSAGES}"
    finally:
        await broker.stop_async()
