"""Topics that carry several signals: one message per reading naming its signal
(``select``), or one object with many readings (several signals on the topic, each with its
own ``path``) — decoded once, each signal validated and counted as on a topic of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.protocols.mqtt import MqttSignalBinding, MqttSource
from common.register import Signal
from common.register_loader import RegisterError, load_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources.mqtt.routing import TopicBinding
from edge.sources.mqtt.source import MqttDeviceSource
from harness.servers import MosquittoServer
from simulators.ledger import Ledger
from simulators.runner import Simulator
from simulators.scenario import load_scenario
from tests import registers
from tests.edge.mqtt.helpers import write_register
from tests.edge.source_kit import RecordingSink, eventually, running

CONFIG = MqttSource.model_validate({"id": "devices", "kind": "mqtt", "broker": "mqtt://h:1883"})


def bound(signal_id: str, topic: str, **fields: Any) -> TopicBinding:
    binding = MqttSignalBinding(topic=topic, **fields)
    signal = Signal(id=signal_id, role="parameter", source="devices", binding=binding)
    return TopicBinding(topic, "p1", signal)


def test_a_message_naming_its_signal_feeds_that_signal_only() -> None:
    bindings = [
        bound("spindle_speed", "m1/data", select={"signal": "spindle"}),
        bound("temperature", "m1/data", select={"signal": "temp"}),
    ]
    source = MqttDeviceSource(CONFIG, bindings, client_id="t")
    sink = RecordingSink()
    source.handle("m1/data", b'{"signal": "spindle", "value": 1200, "ts": 1795852800000}', sink)
    source.handle("m1/data", b'{"signal": "temp", "value": 81.2}', sink)
    source.handle("m1/data", b'{"signal": "pressure", "value": 3}', sink)
    source.handle("m1/data", b'{"signal": "temp"}', sink)
    assert [(s.signal, s.value) for s in sink.samples] == [
        ("spindle_speed", 1200),
        ("temperature", 81.2),
    ]
    assert sink.samples[0].ts == 1795852800000 * 1_000_000
    assert [reason for _, _, reason in sink.rejections] == [
        "no signal of the topic selects this message (signal='pressure'; signals select "
        "signal='spindle'; signal='temp')",
        "payload has no value at 'value'",
    ]
    assert source.stats.rejected_by_rule == {"select": 1, "no_value": 1}


def test_one_object_with_many_readings_feeds_every_signal_of_the_topic() -> None:
    bindings = [
        bound("temperature", "m1/all", path="temp"),
        bound("speed", "m1/all", path="speed"),
        bound("state", "m1/all", path="state", value_type="string"),
    ]
    source = MqttDeviceSource(CONFIG, bindings, client_id="t")
    sink = RecordingSink()
    payload = b'{"ts": 1795852800000, "temp": 81.2, "speed": 1200, "state": "RUN"}'
    source.handle("m1/all", payload, sink)
    assert {(s.signal, s.value) for s in sink.samples} == {
        ("temperature", 81.2),
        ("speed", 1200),
        ("state", "RUN"),
    }
    assert len({s.ts for s in sink.samples}) == 1
    # One reading missing: that signal is rejected, the others still taken.
    source.handle("m1/all", b'{"temp": 80.0, "state": 7}', sink)
    assert [s.signal for s in sink.samples[3:]] == ["temperature"]
    assert [(key, reason.split(":")[0]) for _, key, reason in sink.rejections] == [
        ("topic m1/all", "payload has no value at 'speed'"),
        ("topic m1/all", "value 7 at 'state'"),
    ]
    # Not JSON: one rejection for the message, naming every signal of the topic.
    source.handle("m1/all", b"RUN", sink)
    assert sink.rejections[-1][2].startswith("payload is not JSON")


def test_select_needs_a_topic_and_a_field(tmp_path: Path) -> None:
    path = write_register(
        tmp_path,
        {"broker": "mqtt://127.0.0.1:1883"},
        [registers.sig("speed", source="devices", topic="m/d", select={})],
    )
    with pytest.raises(RegisterError, match="select needs a topic and at least one payload field"):
        load_register(path)


@pytest.mark.integration
async def test_simulated_devices_sharing_a_topic_reach_the_edge_signal_by_signal(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    """The simulator publishes each signal's readings on one topic with its selector; the
    edge's reader, built from the register, gets every reading of both signals."""
    signals = [
        registers.sig(
            "state",
            "state",
            "devices",
            "on_change",
            topic="plant/m1/data",
            select={"signal": "state"},
        ),
        registers.sig(
            "power",
            source="devices",
            interval="200ms",
            topic="plant/m1/data",
            select={"signal": "power"},
        ),
    ]
    register = write_register(tmp_path, {"broker": mosquitto.url, "qos": 1}, signals)
    scenario_path = tmp_path / "scenario.yaml"
    scenario_path.write_text(f"seed: 3\nregister: {register.name}\n")
    loaded = load_register(register)
    settings = EdgeSettings(
        _env_file=None,
        register_file=register,
        plant="plant-t",
        buffer_dir=tmp_path / "buffer",
        health_enabled=False,
    )
    (source,) = build_sources(loaded, settings)
    ledger = Ledger(keep=True)
    sim = Simulator(load_scenario(scenario_path), tick=0.02, ledger=ledger)
    async with running(source) as sink:
        await eventually(lambda: bool(sink.ups()), what="the reader subscribed")
        async with sim:
            await eventually(
                lambda: sum(s.signal == "power" for s in sink.samples) >= 5, what="readings"
            )
        await eventually(lambda: len(sink.samples) >= ledger.count, what="every reading")
    produced = {(r.signal, r.ts_ns, r.value) for r in ledger.records}
    got = {(s.signal, s.ts, s.value) for s in sink.samples}
    assert produced == got and not sink.rejections
