"""Wildcard subscriptions and persistent sessions against a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from common.endpoints import parse_broker_url
from common.register_loader import load_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources.mqtt.source import MqttDeviceSource
from harness.servers import MosquittoServer
from tests.edge.mqtt.helpers import RecordingSink, write_register
from tests.edge.source_kit import eventually

pytestmark = pytest.mark.integration


def build(
    folder: Path, broker: MosquittoServer, source: dict[str, Any], signals: list[dict[str, Any]]
) -> MqttDeviceSource:
    register = write_register(folder, {"broker": broker.url, **source}, signals)
    settings = EdgeSettings(
        register_file=register,
        plant="plant-t",
        edge_id=f"t-{uuid.uuid4().hex[:8]}",  # the stable client id derives from it
        reconnect_max_delay=0.2,
    )
    [built] = build_sources(load_register(register), settings)
    assert isinstance(built, MqttDeviceSource)
    return built


@contextlib.asynccontextmanager
async def running(source: MqttDeviceSource, sink: RecordingSink) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(sink.is_up, what=f"source {source.id} subscribed")
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish(broker: MosquittoServer, *messages: tuple[str, bytes]) -> None:
    address = parse_broker_url(broker.url)
    async with aiomqtt.Client(address.host, address.port) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


async def test_topic_levels_name_the_signal_and_unknown_ones_are_rejected_by_name(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    root = f"t{uuid.uuid4().hex[:8]}"
    source = build(
        tmp_path,
        mosquitto,
        {"subscriptions": [{"pattern": f"{root}/+/{{process}}/{{signal}}"}]},
        [
            {"id": "torque", "role": "parameter", "source": "devices"},
            {"id": "speed", "role": "parameter", "source": "devices", "path": "data.rpm"},
            # An exact topic the pattern also covers: read once, with its own binding.
            {"id": "state", "role": "state", "source": "devices", "topic": f"{root}/l1/p1/state"},
        ],
    )
    assert source.filters == [f"{root}/+/+/+"]
    sink = RecordingSink()
    async with running(source, sink):
        await publish(
            mosquitto,
            (f"{root}/l1/p1/torque", b'{"value": 12.5}'),
            (f"{root}/l1/p1/speed", b'{"data": {"rpm": 1200}}'),
            (f"{root}/l1/p1/state", b'{"value": "RUNNING"}'),
            (f"{root}/l1/p1/pressure", b'{"value": 3}'),
            (f"{root}/l1/p9/torque", b'{"value": 3}'),
            (f"{root}/l1/p1/torque", b'{"value": 13.0}'),
        )
        await eventually(lambda: len(sink.samples) == 4, what="four samples")
        await eventually(lambda: len(sink.rejections) == 2, what="two rejections")
    assert [(s[0], s[1], s[3]) for s in sink.samples] == [
        ("p1", "torque", 12.5),
        ("p1", "speed", 1200),
        ("p1", "state", "RUNNING"),
        ("p1", "torque", 13.0),
    ]
    culprits = {culprit: reason for _, culprit, reason in sink.rejections}
    assert (
        "process 'p1', signal 'pressure' is no signal" in culprits[f"topic {root}/l1/p1/pressure"]
    )
    assert "process 'p9', signal 'torque' is no signal" in culprits[f"topic {root}/l1/p9/torque"]
    assert source.stats.rejected == 2 and len(source.stats.rejected_by_topic) == 2


@pytest.mark.parametrize("persistent", [True, False])
async def test_persistent_session_delivers_what_was_published_while_the_edge_was_away(
    tmp_path: Path, mosquitto: MosquittoServer, persistent: bool
) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}/press/torque"
    source = build(
        tmp_path,
        mosquitto,
        {"persistent_session": persistent, "session_expiry": "5m"},
        [{"id": "torque", "role": "parameter", "source": "devices", "topic": topic}],
    )
    first = RecordingSink()
    async with running(source, first):
        pass  # subscribed, then disconnected: the broker keeps the session if asked to
    await publish(mosquitto, (topic, b'{"value": 1.0}'))  # while the edge is away

    second = RecordingSink()
    async with running(source, second):
        await publish(mosquitto, (topic, b'{"value": 2.0}'))
        await eventually(lambda: any(s[3] == 2.0 for s in second.samples), what="the live one")
    expected = [1.0, 2.0] if persistent else [2.0]
    assert [s[3] for s in second.samples] == expected
    assert source.health()["persistent_session"] is persistent
