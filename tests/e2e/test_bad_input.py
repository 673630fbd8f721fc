"""Bad input, against real mosquitto, influxd and OPC UA servers: every bad thing is named and
counted, and everything else keeps flowing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from collector.service import Collector
from collector.settings import ApiSettings, CollectorSettings, KpiSettings
from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from common.endpoints import parse_broker_url
from common.protocols.mqtt import MqttSource
from common.protocols.opcua import OpcUaSource
from common.register_loader import load_register
from common.topics import edge_topic
from common.wire import Sample, SampleColumns, UplinkBatch
from edge.sources.mqtt.source import MqttDeviceSource, TopicBinding
from edge.sources.opcua.build import node_binding
from edge.sources.opcua.source import OpcUaSource as OpcUaReader
from harness.servers import InfluxServer, MosquittoServer, free_port
from simulators import Simulator, load_scenario
from tests.edge.mqtt.helpers import RecordingSink
from tests.edge.source_kit import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "examples" / "demo"
REGISTER = load_register(DEMO / "register.yaml")
ENTERPRISE = REGISTER.enterprise_id


@pytest.fixture
async def collector(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: str
) -> AsyncIterator[Collector]:
    settings = CollectorSettings(
        registers=[DEMO / "register.yaml"],
        broker={"url": mosquitto.url, "client_id": f"test-collector-{uuid.uuid4().hex[:6]}"},
        influx=InfluxSettings(url=influxdb.url, database=influx_db),
        api=ApiSettings(port=free_port()),
        kpi=KpiSettings(period=3600, window=60),
    )
    service = Collector(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.consumer.connected.wait(), 20)
    yield service
    stop.set()
    await asyncio.wait_for(task, 30)


def batch(
    seq: int, samples: list[tuple[str, str, int, Any]], plant: str = "plant-a", **extra: Any
) -> UplinkBatch:
    cols = SampleColumns()
    for process, signal, ts, value in samples:
        cols.append(Sample(process, signal, ts, value, 0, ts + 1000, extra.pop("server_ts", None)))
    return UplinkBatch(
        edge=f"edge-{plant}",
        enterprise=ENTERPRISE,
        plant=plant,
        register_version="v",
        boot=1,
        seq=seq,
        sent=time.time_ns(),
        samples=cols,
    )


async def stored_values(influxdb: InfluxServer, database: str) -> dict[tuple[str, str], list[Any]]:
    reader = InfluxQLReader(InfluxSettings(url=influxdb.url, database=database))
    try:
        found = await reader.samples(0, time.time_ns() + 10**12, 0, ENTERPRISE)
    finally:
        await reader.close()
    return {key: cols.value for key, cols in found.items()}


async def test_malformed_batches_are_dead_lettered_and_good_batches_still_flow(
    collector: Collector, mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: str
) -> None:
    broker = parse_broker_url(mosquitto.url)
    topic = edge_topic("plantkpi", ENTERPRISE, "plant-a", "edge-plant-a", "samples")
    now = time.time_ns()
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"t-{uuid.uuid4().hex[:6]}"
    ) as client:
        await client.subscribe("plantkpi/deadletter/#", qos=1)
        await client.publish(topic, b"this is not json", qos=1)
        wrong = json.loads(batch(1, []).encode())
        del wrong["plant"]
        await client.publish(topic, json.dumps(wrong).encode(), qos=1)
        good = batch(
            2,
            [
                ("a1-turning", "spindle_speed", now, 1200.0),
                ("a1-turning", "no_such_signal", now, 1.0),
            ],
        )
        await client.publish(topic, good.encode(), qos=1)
        letters = []
        async with asyncio.timeout(20):
            async for message in client.messages:
                letters.append(json.loads(bytes(message.payload)))
                if len(letters) == 2:
                    break

    assert all(letter["topic"] == topic for letter in letters)
    assert "malformed batch on " + topic in letters[0]["reason"]
    assert "plant" in letters[1]["reason"] and "Field required" in letters[1]["reason"]
    await eventually(lambda: collector.pipeline.stats.samples_written >= 1, what="the good sample")
    stats = collector.pipeline.stats
    assert stats.batches_malformed == 2
    assert stats.samples_rejected == 1  # the unknown signal, named in the log
    values = await stored_values(influxdb, influx_db)
    assert values[("a1-turning", "spindle_speed")] == [1200.0]
    assert ("a1-turning", "no_such_signal") not in values


async def test_unstorable_sample_is_rejected_alone_and_ingestion_continues(
    collector: Collector, mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: str
) -> None:
    broker = parse_broker_url(mosquitto.url)
    topic = edge_topic("plantkpi", ENTERPRISE, "plant-b", "edge-plant-b", "samples")
    now = time.time_ns()
    far_future = 253402300799 * 10**9  # OPC UA's "max date" does not fit InfluxDB's int64 time
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"t-{uuid.uuid4().hex[:6]}"
    ) as client:
        await client.publish(
            topic,
            batch(1, [("b1-furnace", "temperature", far_future, 900.0)], "plant-b").encode(),
            qos=1,
        )
        await client.publish(
            topic, batch(2, [("b1-furnace", "temperature", now, 901.0)], "plant-b").encode(), qos=1
        )
    await eventually(lambda: collector.pipeline.stats.samples_written >= 1, what="the second batch")
    assert collector.pipeline.stats.samples_rejected == 1
    assert collector.consumer.stats.failed_messages == 0
    values = await stored_values(influxdb, influx_db)
    assert values[("b1-furnace", "temperature")] == [901.0]


async def test_bad_device_payloads_are_named_and_good_ones_still_read(
    mosquitto: MosquittoServer,
) -> None:
    plant = REGISTER.plant("plant-a")
    config = next(s for s in plant.sources if isinstance(s, MqttSource))
    signal = REGISTER.signal("a2-screwing", "torque")
    assert signal is not None
    topic = f"test/{uuid.uuid4().hex[:6]}/torque"
    source = MqttDeviceSource(
        config,
        [TopicBinding(topic, "a2-screwing", signal.signal)],
        client_id=f"t-{uuid.uuid4().hex[:6]}",
        broker=mosquitto.url,
    )
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(lambda: any(up for _, up, _ in sink.events), what="device broker up")
        broker = parse_broker_url(mosquitto.url)
        async with aiomqtt.Client(broker.host, broker.port) as client:
            for payload in (
                b"garbage",
                b'{"val": 3}',
                b'{"value": [1, 2]}',
                b'{"value": 12.5, "quality": "good"}',
            ):
                await client.publish(topic, payload, qos=1)
        await eventually(lambda: len(sink.samples) == 1, what="the good payload")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [(*s[:2], s[3], s[4]) for s in sink.samples] == [("a2-screwing", "torque", 12.5, 0)]
    reasons = [reason for _, culprit, reason in sink.rejections if culprit == f"topic {topic}"]
    assert len(reasons) == 3
    assert (
        "not JSON" in reasons[0]
        and "no value at 'value'" in reasons[1]
        and "is a list" in reasons[2]
    )
    assert source.stats.rejected == 3


async def test_unreachable_opcua_endpoint_at_start_is_retried_until_it_comes_up() -> None:
    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}"
    config = next(s for s in REGISTER.plant("plant-b").sources if isinstance(s, OpcUaSource))
    bindings = [
        node_binding(ref.process.id, ref.signal)
        for ref in REGISTER.signals()
        if ref.signal.source == config.id
    ]
    reader = OpcUaReader(config, bindings, endpoint=endpoint, reconnect_max_delay=1.0)
    sink = RecordingSink()
    task = asyncio.create_task(reader.run(sink))
    try:
        await eventually(lambda: len(sink.events) >= 1, what="a down report")
        source, up, detail = sink.events[0]
        assert (source, up) == (config.id, False)
        assert "connection refused" in detail
        assert reader.health()["endpoint"] == endpoint and reader.stats.connects == 0

        scenario = load_scenario(DEMO / "scenario.yaml")
        async with Simulator(scenario, endpoints={config.id: endpoint}, sources=[config.id]):
            await eventually(lambda: any(up for _, up, _ in sink.events), timeout=30, what="up")
            await eventually(
                lambda: len(sink.samples) > 10, what="samples after the server came up"
            )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert {s[0] for s in sink.samples} >= {"b1-furnace", "b1-quench"}


@pytest.mark.parametrize("command", [["edge", "run", "--plant", "plant-a"], ["collector", "run"]])
def test_malformed_register_stops_start_up_naming_file_line_and_field(
    tmp_path: Path, command: list[str]
) -> None:
    bad = tmp_path / "register.yaml"
    bad.write_text(
        (DEMO / "register.yaml").read_text().replace("industry: discrete", "industry: discret", 1)
    )
    result = subprocess.run(
        [sys.executable, "-m", *command, "--register", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert (
        f"{bad}:" in result.stderr and "industry" in result.stderr and "discrete" in result.stderr
    )


async def test_batch_influxdb_refuses_is_dead_lettered_with_its_reason_and_later_batches_written(
    collector: Collector, mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: str
) -> None:
    # Someone wrote `value` as a string into this database first: our float `value` now
    # conflicts (HTTP 400), while string values (field `value_str`) still fit.
    await _write_raw(influxdb, influx_db, 'sample,enterprise=other value="text"')
    broker = parse_broker_url(mosquitto.url)
    topic = edge_topic("plantkpi", ENTERPRISE, "plant-a", "edge-plant-a", "samples")
    now = time.time_ns()
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"t-{uuid.uuid4().hex[:6]}"
    ) as client:
        await client.subscribe("plantkpi/deadletter/#", qos=1)
        await client.publish(
            topic, batch(1, [("a1-turning", "spindle_speed", now, 1200.0)]).encode(), qos=1
        )
        await client.publish(
            topic, batch(2, [("a1-turning", "state", now, "RUNNING")]).encode(), qos=1
        )
        async with asyncio.timeout(20):
            async for message in client.messages:
                letter = json.loads(bytes(message.payload))
                break
    assert letter["topic"] == topic
    assert "InfluxDB rejected" in letter["reason"] and "value" in letter["reason"]
    assert json.loads(base64.b64decode(letter["excerpt_base64"]))["seq"] == 1
    await eventually(lambda: collector.pipeline.stats.samples_written >= 1, what="the second batch")
    assert collector.pipeline.stats.batches_dead_lettered == 1
    assert collector.pipeline.stats.write_failures.get("rejected") == 1
    values = await stored_values(influxdb, influx_db)
    assert values[("a1-turning", "state")] == ["RUNNING"]
    assert ("a1-turning", "spindle_speed") not in values


async def _write_raw(influxdb: InfluxServer, database: str, line: str) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{influxdb.url}/write", params={"db": database}, data=line) as response,
    ):
        assert response.status == 204, await response.text()
