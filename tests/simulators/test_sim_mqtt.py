"""The MQTT devices against a real mosquitto: payloads, QoS 1 ledger, reconnecting."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from common.quality import BAD, GOOD, UNCERTAIN
from harness.servers import MosquittoServer
from simulators.ledger import Ledger, read_ledger
from simulators.machine import Sample
from simulators.mqtt_devices import MqttBinding, MqttDevices, build_payload
from simulators.runner import Simulator
from simulators.scenario import load_scenario
from tests.simulators.conftest import MQTT_REGISTER, MQTT_SCENARIO, write_scenario

pytestmark = pytest.mark.integration

T0 = 1_795_852_800_000_000_000


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll (the simulator offers no event for these); fail after ``timeout`` seconds."""
    for _ in range(round(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"condition not met within {timeout} s")


async def test_devices_publish_what_the_register_describes(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    scenario = load_scenario(write_scenario(tmp_path, MQTT_REGISTER, MQTT_SCENARIO))
    ledger_path = tmp_path / "ledger.jsonl"
    received: list[tuple[str, bytes]] = []

    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="sim-test-sub") as sub:
        await sub.subscribe("t/#", qos=1)

        async def collect() -> None:
            async for message in sub.messages:
                received.append((str(message.topic), bytes(message.payload)))

        collector = asyncio.create_task(collect())
        ledger = Ledger(ledger_path, keep=True, flush_interval=0.1)
        sim = Simulator(scenario, brokers={"dev": mosquitto.url}, tick=0.02, ledger=ledger)
        async with sim:
            await wait_until(lambda: ledger.count >= 30)
        # stop() drained the devices: every recorded sample was acknowledged by the broker
        await wait_until(lambda: len(received) >= ledger.count)
        await asyncio.sleep(0.1)
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector

    records = ledger.records
    assert len(received) == len(records)
    assert read_ledger(ledger_path) == records
    topics = {topic for topic, _ in received}
    assert "t/d3/state" not in topics  # offline
    assert {"t/d1/state", "t/d1/torque", "t/d2/viscosity", "t/d4/power", "t/d4/leak_rate"} <= topics

    by_topic = {
        "t/d1/state": ("d1", "state"),
        "t/d1/torque": ("d1", "torque"),
        "t/d2/viscosity": ("d2", "viscosity"),
        "t/d4/power": ("d4", "power"),
        "t/d4/leak_rate": ("d4", "leak_rate"),
    }
    expected_status = {"t/d2/viscosity": UNCERTAIN, "t/d4/power": BAD}
    seen: list[tuple[str, str, int | None, Any, int]] = []
    for topic, raw in received:
        payload = json.loads(raw)
        process, signal = by_topic[topic]
        status = expected_status.get(topic, GOOD)
        if topic == "t/d4/power":
            assert set(payload) == {"data", "q"} and set(payload["data"]) == {"v", "t"}
            value, ts_ms, quality = payload["data"]["v"], payload["data"]["t"], payload["q"]
        elif topic == "t/d4/leak_rate":
            assert isinstance(payload, float)  # path "." : the bare value
            value, ts_ms, quality = payload, None, "good"
        else:
            assert set(payload) == {"value", "ts", "quality"}
            value, ts_ms, quality = payload["value"], payload["ts"], payload["quality"]
        assert quality == {GOOD: "good", UNCERTAIN: "uncertain", BAD: "bad"}[status]
        if ts_ms is not None:
            assert isinstance(ts_ms, int)
        seen.append((process, signal, ts_ms, value, status))
    assert sorted(seen, key=repr) == sorted(
        (
            (
                r.process,
                r.signal,
                None if r.signal == "leak_rate" else r.ts // 1_000_000,
                r.value,
                r.status,
            )
            for r in records
        ),
        key=repr,
    )
    assert all(r.ts % 1_000_000 == 0 for r in records)


async def test_devices_wait_for_the_broker_and_then_publish_the_backlog(
    private_mosquitto: MosquittoServer,
) -> None:
    await private_mosquitto.stop_async()  # the broker is not up yet; its port stays reserved
    ledger = Ledger(keep=True)
    bindings = [MqttBinding("d1", "torque", "t/d1/torque")]
    devices = MqttDevices("dev", private_mosquitto.url, bindings, ledger=ledger, max_backoff=0.3)
    samples = [("d1", Sample("torque", 10.0 + i, GOOD, T0 + i * 100_000_000)) for i in range(20)]
    await devices.start()
    try:
        devices.submit(samples)
        await asyncio.sleep(0.5)  # several failed attempts
        assert not devices.connected.is_set()
        assert devices.backlog == 20 and ledger.count == 0

        await private_mosquitto.start_async()
        await wait_until(lambda: devices.backlog == 0)
        assert [r.value for r in ledger.records] == [10.0 + i for i in range(20)]
        assert devices.published == 20 and devices.dropped == 0
    finally:
        await devices.stop()


def test_backlog_is_bounded_and_counts_what_it_drops() -> None:
    devices = MqttDevices(
        "dev", "mqtt://127.0.0.1:1", [MqttBinding("d1", "x", "t/x")], max_backlog=5
    )
    devices.submit([("d1", Sample("x", float(i), GOOD, T0)) for i in range(8)])
    assert devices.backlog == 5 and devices.dropped == 3


def test_payload_paths() -> None:
    binding = MqttBinding("p", "s", "t", "a.b", "a.ts", "q")
    assert json.loads(build_payload(binding, 1.5, 123, "good")) == {
        "a": {"b": 1.5, "ts": 123},
        "q": "good",
    }
    with pytest.raises(ValueError, match="collides"):
        build_payload(MqttBinding("p", "s", "t", "a", "a.ts"), 1.0, 1, "good")
    with pytest.raises(ValueError, match="collides"):
        MqttDevices("dev", "mqtt://h:1", [MqttBinding("p", "s", "t", "v", "v")])


async def test_run_returns_after_duration_or_stop(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    scenario = load_scenario(write_scenario(tmp_path, MQTT_REGISTER, MQTT_SCENARIO))
    ledger = Ledger(keep=True)
    sim = Simulator(scenario, brokers={"dev": mosquitto.url}, tick=0.02, ledger=ledger)
    await sim.run(duration=0.5)
    assert ledger.count > 0 and not any(d.backlog for d in sim.mqtt.values())

    stop = asyncio.Event()
    sim = Simulator(scenario, brokers={"dev": mosquitto.url}, tick=0.02)
    runner = asyncio.create_task(sim.run(stop=stop))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(runner, 5)
