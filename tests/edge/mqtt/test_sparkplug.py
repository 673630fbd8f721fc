"""Sparkplug B on the MQTT device source: a real mosquitto, a Sparkplug edge node from the
simulators, and the edge's source reporting to a recording sink.

The last tests are pure (the reader's state rules and the register's checks) and need no
broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pysparkplug as spb
import pytest

from common.quality import BAD_NO_COMMUNICATION, GOOD
from common.register_loader import RegisterError, load_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources.mqtt import sparkplug as sparkplug_module
from edge.sources.mqtt.source import MqttDeviceSource
from edge.sources.mqtt.sparkplug import PrimaryHostState, SparkplugUnavailable
from harness.servers import MosquittoServer
from simulators.sparkplug_devices import MetricSpec, SparkplugEdgeNode
from tests.edge.mqtt.helpers import RecordingSink, write_register
from tests.edge.source_kit import eventually

NODE = "n1"
DEVICE = "d1"
NODE_METRICS = {"Temperature": spb.DataType.DOUBLE, "Unbound": spb.DataType.INT32}
DEVICE_METRICS = {"Status/State": spb.DataType.STRING, "Spindle/Speed": spb.DataType.INT32}
SIGNALS: list[dict[str, Any]] = [
    {"id": "temp", "role": "parameter", "source": "devices",
     "sparkplug": {"node": NODE, "metric": "Temperature"}},
    {"id": "state", "role": "state", "source": "devices", "update": "on_change",
     "sparkplug": {"node": NODE, "device": DEVICE, "metric": "Status/State"}},
    {"id": "speed", "role": "parameter", "source": "devices",
     "sparkplug": {"node": NODE, "device": DEVICE, "metric": "Spindle/Speed"}},
]  # fmt: skip


def build(
    folder: Path,
    broker: str,
    group: str,
    *,
    rebirth: bool = False,
    signals: list[dict[str, Any]] = SIGNALS,
) -> MqttDeviceSource:
    sparkplug = {"group_id": group, "request_rebirth": rebirth}
    register = write_register(folder, {"broker": broker, "sparkplug": sparkplug}, signals)
    settings = EdgeSettings(
        register_file=register,
        plant="plant-t",
        edge_id=f"t-{uuid.uuid4().hex[:8]}",
        reconnect_max_delay=0.2,
    )
    [built] = build_sources(load_register(register), settings)
    assert isinstance(built, MqttDeviceSource)
    return built


def edge_node(broker: MosquittoServer, group: str) -> SparkplugEdgeNode:
    return SparkplugEdgeNode(broker.url, group, NODE, NODE_METRICS, {DEVICE: DEVICE_METRICS})


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


def values(sink: RecordingSink, signal: str) -> list[Any]:
    return [s[3] for s in sink.samples if s[1] == signal]


def statuses(sink: RecordingSink, signal: str) -> list[int]:
    return [s[4] for s in sink.samples if s[1] == signal]


def group_id() -> str:
    return f"g{uuid.uuid4().hex[:8]}"


@pytest.mark.integration
async def test_births_define_metrics_and_data_by_alias_reaches_the_bound_signals(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    group = group_id()
    signals = [
        *SIGNALS,
        {"id": "missing", "role": "parameter", "source": "devices",
         "sparkplug": {"node": NODE, "device": DEVICE, "metric": "Not/There"}},
    ]  # fmt: skip
    source = build(tmp_path, mosquitto.url, group, signals=signals)
    assert source.filters == [f"spBv1.0/{group}/+/{NODE}/#"]
    sink = RecordingSink()
    async with running(source, sink), edge_node(mosquitto, group) as node:
        await eventually(lambda: len(sink.samples) == 3, what="the births' three bound values")
        await node.publish(DEVICE, {"Spindle/Speed": 1200}, ts_ms=1_764_320_000_123)
        await node.publish(None, {"Temperature": 21.5, "Unbound": 7})
        await eventually(lambda: len(sink.samples) == 5, what="the data's two bound values")

    assert {s[1]: s[3] for s in sink.samples[:3]} == {"temp": 0.0, "state": "", "speed": 0}
    assert sink.samples[3][:5] == ("p1", "speed", 1_764_320_000_123_000_000, 1200, GOOD)
    assert sink.samples[4][1] == "temp" and sink.samples[4][3] == 21.5
    # A bound metric the device's birth does not define is reported by name.
    [(_, culprit, reason)] = sink.rejections
    assert culprit == f"topic spBv1.0/{group}/DBIRTH/{NODE}/{DEVICE}"
    assert "'Not/There' bound to signal(s) p1.missing is not in the birth of n1/d1" in reason
    health = source.health()["sparkplug"]
    assert isinstance(health, dict) and health["births"] == 2 and health["seq_gaps"] == 0


@pytest.mark.integration
async def test_device_death_marks_only_its_metrics_stale_until_it_is_born_again(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    group = group_id()
    source = build(tmp_path, mosquitto.url, group)
    sink = RecordingSink()
    async with running(source, sink), edge_node(mosquitto, group) as node:
        await eventually(lambda: len(sink.samples) == 3, what="births")
        await node.device_death(DEVICE)
        await eventually(lambda: len(sink.samples) == 5, what="two stale samples")
        stale = sink.samples[3:]
        assert {s[1] for s in stale} == {"state", "speed"}
        assert all(s[3] is None and s[4] == BAD_NO_COMMUNICATION for s in stale)
        # Data of the dead device is data before its birth: rejected, not mapped.
        await node.publish(DEVICE, {"Spindle/Speed": 5})
        await eventually(lambda: len(sink.rejections) == 1, what="rejected DDATA")
        assert "before the DBIRTH of device d1" in sink.rejections[0][2]
        await node.device_birth(DEVICE)
        await node.publish(DEVICE, {"Spindle/Speed": 900})
        await eventually(lambda: values(sink, "speed")[-1:] == [900], what="speed again")
        assert statuses(sink, "temp") == [GOOD]  # the node itself stayed alive


@pytest.mark.integration
async def test_node_death_by_lost_connection_marks_node_and_devices_stale(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    group = group_id()
    source = build(tmp_path, mosquitto.url, group)
    sink = RecordingSink()
    node = edge_node(mosquitto, group)
    async with running(source, sink):
        await node.start()
        await eventually(lambda: len(sink.samples) == 3, what="births")
        await node.kill()  # no DISCONNECT: mosquitto publishes the NDEATH will
        await eventually(lambda: len(sink.samples) == 6, what="three stale samples")
        assert all(s[3] is None and s[4] == BAD_NO_COMMUNICATION for s in sink.samples[3:])
        assert {s[1] for s in sink.samples[3:]} == {"temp", "state", "speed"}

        await node.start()  # a new session (next bdSeq): values again
        await node.publish(None, {"Temperature": 30.0})
        await eventually(lambda: values(sink, "temp")[-1:] == [30.0], what="temp again")
        alive = source.health()["sparkplug"]
        await node.stop()  # a clean shutdown publishes NDEATH itself
        await eventually(lambda: statuses(sink, "temp")[-1] == BAD_NO_COMMUNICATION)
    health = source.health()["sparkplug"]
    assert isinstance(health, dict) and health["deaths"] == 2
    # The health verdict's input: a bound node that cannot be read now.
    assert isinstance(alive, dict) and alive["nodes_without_birth"] == []
    assert health["nodes_without_birth"] == [NODE]


@pytest.mark.integration
async def test_a_seq_gap_makes_the_edge_request_a_rebirth(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    group = group_id()
    source = build(tmp_path, mosquitto.url, group, rebirth=True)
    sink = RecordingSink()
    async with running(source, sink), edge_node(mosquitto, group) as node:
        await eventually(lambda: len(sink.samples) == 3, what="births")
        node.skip_seq(3)  # three messages lost on the way
        await node.publish(DEVICE, {"Spindle/Speed": 10})
        await eventually(lambda: node.rebirths == 1, what="the node asked to rebirth")
        await eventually(lambda: values(sink, "speed")[-1:] == [10], what="rebirth values")
        await node.publish(DEVICE, {"Spindle/Speed": 11})
        await eventually(lambda: values(sink, "speed")[-1:] == [11], what="data after rebirth")
    health = source.health()["sparkplug"]
    assert isinstance(health, dict)
    assert health["seq_gaps"] == 1 and health["rebirth_requests"] == 1
    assert health["births"] == 4  # NBIRTH + DBIRTH, twice


@pytest.mark.integration
@pytest.mark.parametrize("rebirth", [True, False])
async def test_data_before_birth_is_rejected_and_a_rebirth_asked_only_when_allowed(
    tmp_path: Path, mosquitto: MosquittoServer, rebirth: bool
) -> None:
    group = group_id()
    source = build(tmp_path, mosquitto.url, group, rebirth=rebirth)
    sink = RecordingSink()
    async with edge_node(mosquitto, group) as node:  # born before the edge listens
        await node.flush()
        async with running(source, sink):
            await node.publish(DEVICE, {"Spindle/Speed": 42})
            await eventually(lambda: len(sink.rejections) >= 1, what="rejected DDATA")
            assert "DDATA before the node's NBIRTH" in sink.rejections[0][2]
            if rebirth:
                await eventually(lambda: node.rebirths == 1, what="rebirth request")
                await node.publish(DEVICE, {"Spindle/Speed": 43})
                await eventually(lambda: values(sink, "speed")[-1:] == [43], what="data")
            else:
                # The edge only counts it; the node is read again from its next birth.
                await node.publish(DEVICE, {"Spindle/Speed": 44})
                await eventually(lambda: len(sink.rejections) == 2, what="second rejection")
                await node.birth()
                await eventually(lambda: values(sink, "speed") == [44], what="birth values")
        health = source.health()["sparkplug"]
        assert isinstance(health, dict)
        assert health["rebirth_requests"] == (1 if rebirth else 0)
        assert health["rebirths_needed"] == (0 if rebirth else 2)
        assert node.rebirths == (1 if rebirth else 0)


# --- pure: the reader's state rules --------------------------------------------------------


def _payloads(group: str) -> tuple[SparkplugEdgeNode, list[tuple[str, bytes]]]:
    """A node whose publications are captured instead of sent."""
    node = SparkplugEdgeNode("mqtt://127.0.0.1:1", group, NODE, NODE_METRICS, {})
    sent: list[tuple[str, bytes]] = []

    async def capture(topic: str, payload: bytes, qos: int = 0) -> None:
        sent.append((topic, payload))

    node._publish = capture  # type: ignore[method-assign]
    return node, sent


async def test_an_old_sessions_late_will_does_not_kill_the_new_session(tmp_path: Path) -> None:
    group = group_id()
    source = build(tmp_path, "mqtt://127.0.0.1:1", group)
    node, sent = _payloads(group)
    sink = RecordingSink()
    old_will = spb.NDeath(
        timestamp=1,
        bd_seq_metric=spb.Metric(timestamp=1, name="bdSeq", datatype=spb.DataType.INT64, value=4),
    )
    node.bd_seq = 5
    await node.birth()
    for topic, payload in sent:
        source.handle(topic, payload, sink)
    source.handle(f"spBv1.0/{group}/NDEATH/{NODE}", old_will.encode(), sink)
    assert statuses(sink, "temp") == [GOOD]
    assert source.sparkplug is not None and source.sparkplug.stats.ignored_deaths == 1


async def test_seq_wraps_from_255_to_0_without_a_gap(tmp_path: Path) -> None:
    group = group_id()
    source = build(tmp_path, "mqtt://127.0.0.1:1", group)
    node, sent = _payloads(group)
    sink = RecordingSink()
    await node.birth()
    node.seq = 254
    for value in (1.0, 2.0, 3.0):  # seq 255, 0, 1
        await node.publish(None, {"Temperature": value})
    for topic, payload in sent:
        source.handle(topic, payload, sink)
    assert values(sink, "temp") == [0.0, 1.0, 2.0, 3.0]
    assert source.sparkplug is not None and source.sparkplug.stats.seq_gaps == 1  # 0 → 255
    assert sink.rejections == []


async def test_an_alias_the_birth_did_not_define_is_rejected_and_asks_for_a_rebirth(
    tmp_path: Path,
) -> None:
    group = group_id()
    source = build(tmp_path, "mqtt://127.0.0.1:1", group, rebirth=True)
    node, sent = _payloads(group)
    sink = RecordingSink()
    await node.birth()
    node.specs[None]["Temperature"] = MetricSpec("Temperature", spb.DataType.DOUBLE, alias=99)
    await node.publish(None, {"Temperature": 5.0})
    for topic, payload in sent:
        source.handle(topic, payload, sink)
    assert values(sink, "temp") == [0.0]
    [(_, culprit, reason)] = sink.rejections
    assert culprit == f"topic spBv1.0/{group}/NDATA/{NODE}" and "KeyError(99)" in reason
    assert source.sparkplug is not None
    [(topic, payload)] = source.sparkplug.take_commands()
    assert topic == f"spBv1.0/{group}/NCMD/{NODE}"
    [metric] = spb.NCmd.decode(payload).metrics
    assert (metric.name, metric.value) == ("Node Control/Rebirth", True)


async def test_garbage_payload_is_rejected_by_topic(tmp_path: Path) -> None:
    group = group_id()
    source = build(tmp_path, "mqtt://127.0.0.1:1", group)
    sink = RecordingSink()
    source.handle(f"spBv1.0/{group}/NBIRTH/{NODE}", b"\xff\x00not protobuf", sink)
    [(_, culprit, reason)] = sink.rejections
    assert culprit == f"topic spBv1.0/{group}/NBIRTH/{NODE}"
    assert "undecodable NBIRTH payload" in reason
    assert sink.samples == []


def test_a_missing_library_is_a_clear_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sparkplug_module, "spb", None)
    with pytest.raises(
        SparkplugUnavailable,
        match=r"MQTT source devices reads Sparkplug B .*"
        r"pip install --no-deps pysparkplug==0.6.1",
    ):
        build(tmp_path, "mqtt://127.0.0.1:1", group_id())


# --- pure: the register's checks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "signal", "expected"),
    [
        (
            {"broker": "mqtt://h:1"},
            {"sparkplug": {"node": "n1", "metric": "m"}},
            "'sparkplug' given but source 'devices' is not an MQTT source with 'sparkplug",
        ),
        (
            {"broker": "mqtt://h:1", "sparkplug": {"group_id": "g/1"}},
            {"sparkplug": {"node": "n1", "metric": "m"}},
            "'g/1' is not a Sparkplug id",
        ),
        (
            {"broker": "mqtt://h:1", "sparkplug": {"group_id": "g1"}},
            {"sparkplug": {"node": "n+", "metric": "m"}},
            "'n+' is not a Sparkplug id",
        ),
        (
            {"broker": "mqtt://h:1", "sparkplug": {"group_id": "g1"}},
            {"topic": "t/1", "sparkplug": {"node": "n1", "metric": "m"}},
            "sparkplug given with a topic",
        ),
        (
            {
                "broker": "mqtt://h:1",
                "sparkplug": {"group_id": "g1"},
                "subscriptions": [{"pattern": "spBv1.0/+/{signal}", "process": "p1"}],
            },
            {"sparkplug": {"node": "n1", "metric": "m"}},
            "overlaps the Sparkplug group's topics 'spBv1.0/g1/#'",
        ),
        (
            {"broker": "mqtt://h:1", "sparkplug": {"group_id": "g1"}},
            {"topic": "spBv1.0/g1/NDATA/n1"},
            "is in the source's Sparkplug group",
        ),
    ],
)
def test_register_sparkplug_mistakes_fail_at_load_with_file_and_line(
    tmp_path: Path, source: dict[str, Any], signal: dict[str, Any], expected: str
) -> None:
    signals = [{"id": "s", "role": "parameter", "source": "devices", **signal}]
    path = write_register(tmp_path, source, signals)
    with pytest.raises(RegisterError) as error:
        load_register(path)
    assert expected in str(error.value)
    assert f"{path}:" in str(error.value) or f"{path.name}:" in str(error.value)


# --- the edge as Sparkplug 3.0 primary host application ------------------------------------


def build_host(folder: Path, broker: str, group: str, host: str) -> MqttDeviceSource:
    sparkplug = {"group_id": group, "primary_host_id": host}
    register = write_register(folder, {"broker": broker, "sparkplug": sparkplug}, SIGNALS)
    settings = EdgeSettings(
        register_file=register,
        plant="plant-t",
        edge_id=f"t-{uuid.uuid4().hex[:8]}",
        reconnect_max_delay=0.2,
    )
    [built] = build_sources(load_register(register), settings)
    assert isinstance(built, MqttDeviceSource)
    return built


async def retained(broker: MosquittoServer, topic: str) -> dict[str, Any]:
    """The retained message on ``topic``, as a new subscriber gets it."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(client.messages))
    assert message.retain, f"{topic} is not retained"
    assert message.qos == 1
    assert isinstance(message.payload, bytes)
    state = json.loads(message.payload)
    assert isinstance(state, dict) and set(state) == {"online", "timestamp"}
    return state


async def retained_becomes(broker: MosquittoServer, topic: str, expected: dict[str, Any]) -> None:
    """Wait until the retained message on ``topic`` is ``expected``."""
    state: dict[str, Any] = {}
    for _ in range(100):
        state = await retained(broker, topic)
        if state == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"retained {topic} stayed {state}, expected {expected}")


@pytest.mark.integration
async def test_the_primary_host_state_lets_waiting_nodes_birth_and_follows_the_edge(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    group, host = group_id(), f"h{uuid.uuid4().hex[:8]}"
    state_topic = f"spBv1.0/STATE/{host}"
    source = build_host(tmp_path, mosquitto.url, group, host)
    assert source.filters[-1] == state_topic  # subscribed before the STATE birth
    sink = RecordingSink()
    node = SparkplugEdgeNode(
        mosquitto.url, group, NODE, NODE_METRICS, {DEVICE: DEVICE_METRICS}, primary_host_id=host
    )
    await node.start()  # no STATE yet: the node waits and publishes nothing
    await node.flush()
    assert not node.born
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(lambda: len(sink.samples) == 3, what="births after the STATE birth")
        assert node.born and node.host_online
        assert source.host is not None
        first = source.host.connect_ms
        # Retained online, with the timestamp of the will registered at connect.
        assert await retained(mosquitto, state_topic) == {"online": True, "timestamp": first}
        await node.publish(DEVICE, {"Spindle/Speed": 7})
        await eventually(lambda: values(sink, "speed")[-1:] == [7], what="data")

        # Someone else's (or a late will's) offline STATE: the edge publishes online again;
        # the node ignores the older timestamp.
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as other:
            stale = json.dumps({"online": False, "timestamp": first - 1000})
            await other.publish(state_topic, stale, qos=1, retain=True)
        await retained_becomes(mosquitto, state_topic, {"online": True, "timestamp": first})
        assert source.host.republished == 1
        assert node.host_offline_deaths == 0 and node.born

        # The edge's connection dies without DISCONNECT: mosquitto publishes the will, the
        # node ends its session; the edge reconnects with a new STATE birth, the node is
        # born again and read.
        connection = source._connection
        assert connection is not None
        sock = connection._client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        await eventually(lambda: node.host_offline_deaths == 1, what="node death on offline")
        await eventually(lambda: source.host is not None and source.host.connect_ms > first)
        await eventually(lambda: node.born, what="the node born again")
        await node.publish(DEVICE, {"Spindle/Speed": 8})
        await eventually(lambda: values(sink, "speed")[-1:] == [8], what="data again")
        second = source.host.connect_ms
        await retained_becomes(mosquitto, state_topic, {"online": True, "timestamp": second})
    finally:
        task.cancel()  # a clean stop: offline STATE, then DISCONNECT
        with contextlib.suppress(asyncio.CancelledError):
            await task
    state = await retained(mosquitto, state_topic)
    assert state["online"] is False and state["timestamp"] >= second
    await eventually(lambda: node.host_offline_deaths == 2, what="node death at edge stop")
    await node.stop()
    assert source.health()["primary_host"] == {
        "id": host,
        "state_topic": state_topic,
        "births": 3,
        "republished": 1,
    }


@pytest.mark.integration
async def test_the_will_is_the_offline_state_with_the_connect_timestamp(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    group, host = group_id(), f"h{uuid.uuid4().hex[:8]}"
    state_topic = f"spBv1.0/STATE/{host}"
    source = build_host(tmp_path, mosquitto.url, group, host)
    sink = RecordingSink()
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as watcher:
        await watcher.subscribe(state_topic, qos=1)
        async with running(source, sink):
            assert source.host is not None and source._connection is not None
            connect_ms = source.host.connect_ms
            # Stay away while the will is looked at.
            source.backoff.next_delay = lambda: 60.0  # type: ignore[method-assign]
            sock = source._connection._client.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(10):
                async for message in watcher.messages:
                    assert isinstance(message.payload, bytes)
                    seen.append(json.loads(message.payload))
                    if seen[-1]["online"] is False:
                        break
            assert seen == [
                {"online": True, "timestamp": connect_ms},
                {"online": False, "timestamp": connect_ms},
            ]
        assert await retained(mosquitto, state_topic) == {
            "online": False,
            "timestamp": connect_ms,
        }


async def test_the_primary_host_answers_an_offline_state_only_after_its_own_birth() -> None:
    host = PrimaryHostState("scada")
    will = json.loads(host.will_payload(1_000))
    birth = host.birth_payload()
    assert will == {"online": False, "timestamp": 1_000}
    assert json.loads(birth) == {"online": True, "timestamp": 1_000}
    # The retained offline of our last session arrives before our birth comes back.
    host.handle(json.dumps({"online": False, "timestamp": 500}).encode())
    assert not host.take_republish()
    host.handle(birth)
    host.handle(b"not json")  # whatever replaced our online state
    assert host.take_republish() and not host.take_republish()
    assert json.loads(host.death_payload(2_000)) == {"online": False, "timestamp": 2_000}


async def test_the_own_state_topic_is_neither_data_nor_rejected(tmp_path: Path) -> None:
    source = build_host(tmp_path, "mqtt://127.0.0.1:1", group_id(), "scada")
    sink = RecordingSink()
    source.handle("spBv1.0/STATE/scada", b'{"online": true, "timestamp": 1}', sink)
    assert sink.samples == [] and sink.rejections == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"broker": "mqtt://h:1", "sparkplug": {"group_id": "g1", "primary_host_id": "a/b"}},
            "'a/b' is not a Sparkplug id",
        ),
        (
            {"broker": "mqtt://h:1", "sparkplug": {"group_id": "g1", "primary_host_id": ""}},
            "'' is not a Sparkplug id",
        ),
        (
            {
                "broker": "mqtt://h:1",
                "persistent_session": True,
                "sparkplug": {"group_id": "g1", "primary_host_id": "scada"},
            },
            "primary_host_id needs persistent_session off",
        ),
    ],
)
def test_register_primary_host_mistakes_fail_at_load_with_file_and_line(
    tmp_path: Path, source: dict[str, Any], expected: str
) -> None:
    signals = [{"id": "s", "role": "parameter", "source": "devices",
                "sparkplug": {"node": "n1", "metric": "m"}}]  # fmt: skip
    path = write_register(tmp_path, source, signals)
    with pytest.raises(RegisterError) as error:
        load_register(path)
    assert expected in str(error.value)
    assert f"{path}:" in str(error.value) or f"{path.name}:" in str(error.value)
