"""At-least-once delivery into idempotent storage: batches are acknowledged only once InfluxDB
has them, so a collector crash or an InfluxDB outage loses nothing and duplicates nothing.

Real mosquitto, real influxd, the collector as a real process (killed with SIGKILL)."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
import uuid
from pathlib import Path

import aiomqtt
import httpx
import pytest

from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from common.endpoints import parse_broker_url
from common.topics import edge_topic
from common.wire import Sample, SampleColumns, UplinkBatch
from harness.plant import PlantStack
from harness.servers import InfluxServer, MosquittoServer, free_port

pytestmark = pytest.mark.integration

DEMO = Path(__file__).parents[3] / "examples" / "demo"
ENTERPRISE = "jinhua-machinery"
BATCHES, PER_BATCH = 20, 50


def make_batches(start_ns: int, batches: int = BATCHES) -> list[bytes]:
    payloads = []
    for seq in range(batches):
        cols = SampleColumns()
        for i in range(PER_BATCH):
            ts = start_ns + (seq * PER_BATCH + i) * 1_000_000
            cols.append(
                Sample("a1-turning", "spindle_speed", ts, float(seq * PER_BATCH + i), 0, ts + 1)
            )
        payloads.append(
            UplinkBatch(
                edge="edge-plant-a",
                enterprise=ENTERPRISE,
                plant="plant-a",
                register_version="v",
                boot=start_ns,
                seq=seq,
                sent=time.time_ns(),
                samples=cols,
            ).encode()
        )
    return payloads


async def publish(broker_url: str, payloads: list[bytes]) -> None:
    broker = parse_broker_url(broker_url)
    topic = edge_topic("plantkpi", ENTERPRISE, "plant-a", "edge-plant-a", "samples")
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"pub-{uuid.uuid4().hex[:6]}"
    ) as client:
        for payload in payloads:
            await client.publish(topic, payload, qos=1)


async def stored(influx: InfluxServer, database: str) -> list[float]:
    reader = InfluxQLReader(InfluxSettings(url=influx.url, database=database))
    try:
        found = await reader.samples(0, time.time_ns() + 10**12, 0, ENTERPRISE)
    finally:
        await reader.close()
    cols = found.get(("a1-turning", "spindle_speed"))
    return [float(v) for v in cols.value if isinstance(v, float)] if cols else []


async def wait_stored(
    influx: InfluxServer, database: str, n: int, stack: PlantStack
) -> list[float]:
    deadline = time.monotonic() + 60
    values: list[float] = []
    while time.monotonic() < deadline:
        stack.check_alive()
        values = await stored(influx, database)
        if len(values) >= n:
            return values
        await asyncio.sleep(0.3)
    raise AssertionError(f"{len(values)} of {n} samples stored\n{stack.logs()}")


async def wait_batches(http: httpx.AsyncClient, stack: PlantStack, n: int) -> None:
    """Until the collector has taken ``n`` batches (its ``/api/v1/stats``)."""
    for _ in range(300):
        stack.check_alive()
        if (await http.get(f"{stack.api_url}/api/v1/stats")).json()["batches"] >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the collector never took {n} batches\n{stack.logs()}")


def collector_stack(broker: str, influx: InfluxServer, database: str, workdir: Path) -> PlantStack:
    env = {"COLLECTOR_INFLUX__URL": influx.url, "COLLECTOR_INFLUX__DATABASE": database}
    return PlantStack(DEMO / "register.yaml", DEMO / "scenario.yaml", broker, env, workdir)


async def test_collector_killed_while_influxdb_is_down_loses_nothing(
    mosquitto: MosquittoServer, private_influxdb: InfluxServer, tmp_path: Path
) -> None:
    database = "delivery"
    private_influxdb.create_database(database)
    port = free_port()
    stack = collector_stack(mosquitto.url, private_influxdb, database, tmp_path / "a")
    try:
        stack.start_collector(period="1h", api_port=port)
        stack.wait_for_api()
        await private_influxdb.stop_async()
        await publish(mosquitto.url, make_batches(time.time_ns()))
        await asyncio.sleep(2)  # the collector has the batches, cannot write, does not ack
        stack.components[0].proc.send_signal(signal.SIGKILL)
        stack.components[0].proc.wait(10)
        await private_influxdb.start_async()

        again = collector_stack(mosquitto.url, private_influxdb, database, tmp_path / "b")
        try:
            again.start_collector(period="1h", api_port=port)  # same client id: same session
            values = await wait_stored(private_influxdb, database, BATCHES * PER_BATCH, again)
        finally:
            again.stop_all()
    finally:
        stack.stop_all()
    # Exactly once in storage: every value, none twice (a redelivered batch rewrites the
    # same points: same measurement, tags and timestamp).
    assert sorted(values) == [float(i) for i in range(BATCHES * PER_BATCH)]


async def test_sigterm_writes_what_was_taken_and_a_restart_gets_the_rest(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    port = free_port()
    stack = collector_stack(mosquitto.url, influxdb, influx_db, tmp_path / "a")
    try:
        stack.start_collector(period="1h", api_port=port)
        stack.wait_for_api()
        await publish(mosquitto.url, make_batches(time.time_ns()))
        collector = stack.components[0].proc
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(30) == 0, stack.logs()
        again = collector_stack(mosquitto.url, influxdb, influx_db, tmp_path / "b")
        try:
            again.start_collector(period="1h", api_port=port)
            values = await wait_stored(influxdb, influx_db, BATCHES * PER_BATCH, again)
        finally:
            again.stop_all()
    finally:
        stack.stop_all()
    assert sorted(values) == [float(i) for i in range(BATCHES * PER_BATCH)]


async def test_a_backlog_waits_in_the_broker_not_in_the_collector(
    private_mosquitto: MosquittoServer, private_influxdb: InfluxServer, tmp_path: Path
) -> None:
    """With InfluxDB down nothing is acknowledged, so the broker sends no more than the
    Receive Maximum; once it is back, the rest follows and everything is stored once.
    (A broker of its own: retained edge states of other tests would take the slots.)"""
    database = "backlog"
    private_influxdb.create_database(database)
    mosquitto = private_mosquitto
    stack = collector_stack(mosquitto.url, private_influxdb, database, tmp_path)
    try:
        stack.start_collector(period="1h", extra_env={"COLLECTOR_RECEIVE_MAXIMUM": "3"})
        stack.wait_for_api()
        await private_influxdb.stop_async()
        await publish(mosquitto.url, make_batches(time.time_ns()))
        async with httpx.AsyncClient() as http:
            await wait_batches(http, stack, 3)
            await asyncio.sleep(2)  # time for more to arrive, were the broker to send them
            stats = (await http.get(f"{stack.api_url}/api/v1/stats")).json()
        assert stats["batches"] == 3, stats
        assert stats["consumer"]["acked"] == 0
        await private_influxdb.start_async()
        values = await wait_stored(private_influxdb, database, BATCHES * PER_BATCH, stack)
    finally:
        stack.stop_all()
    assert sorted(values) == [float(i) for i in range(BATCHES * PER_BATCH)]


async def test_a_broker_sending_more_than_the_receive_maximum_cannot_stall_ingestion(
    private_mosquitto: MosquittoServer, private_influxdb: InfluxServer, tmp_path: Path
) -> None:
    """mosquitto 2.0.11 stops keeping to the Receive Maximum once acknowledgements flow and
    sends the whole backlog. The collector stops reading the socket while it holds that many
    messages unhandled, so nothing is dropped in the process: before, a dropped batch stayed
    unacknowledged and ingestion stalled for good on that connection (1,389 of 3,000
    batches stored). A dead letter's PUBACK comes behind what the broker sent before it:
    reading goes on for that reply, or the consumer would wait for it for good."""
    database = "flood"
    batches, every = 3000, 100
    private_influxdb.create_database(database)
    broker = parse_broker_url(private_mosquitto.url)
    stack = collector_stack(private_mosquitto.url, private_influxdb, database, tmp_path)
    payloads = make_batches(time.time_ns(), batches)
    for at in range(len(payloads) - 1, 0, -every):
        payloads.insert(at, b"not an uplink batch")
    letters = 0
    try:
        stack.start_collector(
            period="1h",
            extra_env={"COLLECTOR_RECEIVE_MAXIMUM": "8", "COLLECTOR_WRITE_BATCH_LINES": "50"},
        )
        stack.wait_for_api()
        async with aiomqtt.Client(broker.host, broker.port) as watcher:
            await watcher.subscribe("plantkpi/deadletter/v1/#", qos=1)
            await private_influxdb.stop_async()
            await publish(private_mosquitto.url, payloads)
            async with httpx.AsyncClient() as http:
                await wait_batches(http, stack, 2)  # the queue's two writes' worth
                await private_influxdb.start_async()
                values = await wait_stored(private_influxdb, database, batches * PER_BATCH, stack)
                consumer = (await http.get(f"{stack.api_url}/api/v1/stats")).json()["consumer"]
            async for message in watcher.messages:  # bounded by pytest's timeout
                letter = json.loads(_bytes(message.payload))
                assert base64.b64decode(letter["excerpt_base64"]) == b"not an uplink batch"
                letters += 1
                if letters == batches // every:
                    break
    finally:
        stack.stop_all()
    assert sorted(values) == [float(i) for i in range(batches * PER_BATCH)]
    assert consumer["connects"] == 1, consumer  # caught up without a reconnect
    assert consumer["read_pauses"] >= 1, consumer


def _bytes(payload: object) -> bytes:
    assert isinstance(payload, bytes | bytearray)
    return bytes(payload)
