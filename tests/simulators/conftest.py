"""Small registers for the simulator tests: 100 ms intervals keep the tests to seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import registers


def _signal(
    signal_id: str, source: str, *, update: str = "periodic", **address: Any
) -> dict[str, Any]:
    role = signal_id if signal_id in ("state", "mode") else "parameter"
    return registers.sig(signal_id, role, source, update, "100ms", **address)


def opcua_document() -> dict[str, Any]:
    """Four machines on OPC UA source s1; m4 in a second namespace."""

    def node(machine: str, signal_id: str, uri: str = "urn:test:sim") -> dict[str, str]:
        return {"node": f"nsu={uri};s={machine}.{signal_id}"}

    machines = [
        registers.process(
            "m1",
            [
                _signal("state", "s1", update="on_change", **node("m1", "state")),
                _signal("mode", "s1", update="on_change", **node("m1", "mode")),
                _signal("spindle_speed", "s1", **node("m1", "spindle_speed")),
                _signal("part_count", "s1", update="on_change", **node("m1", "part_count")),
            ],
            name="Turning",
        ),
        registers.process(
            "m2",
            [
                _signal("state", "s1", update="on_change", **node("m2", "state")),
                _signal("temperature", "s1", **node("m2", "temperature")),
            ],
            industry="process",
            name="Quench",
        ),
        registers.process(
            "m3",
            [_signal("state", "s1", update="on_change", **node("m3", "state"))],
            name="Test bench",
        ),
        registers.process(
            "m4",
            [
                _signal("state", "s1", **node("m4", "state", "urn:test:other")),
                _signal("press_force", "s1", **node("m4", "press_force", "urn:test:other")),
            ],
            name="Press-fit",
        ),
    ]
    plant = registers.plant("p1", [registers.opcua_source("s1")], [registers.line("l1", machines)])
    return registers.document([plant], enterprise="test-ent", region="Test", version=None)


OPCUA_REGISTER = registers.to_yaml(opcua_document())

OPCUA_SCENARIO = """\
seed: 42
register: register.yaml
machines:
  m2: {behaviour: bad_quality}
  m3: {behaviour: offline}
  m4: {behaviour: override}
"""


def mqtt_document() -> dict[str, Any]:
    """Four devices on the MQTT source dev; d4's payloads carry value, time and quality
    at paths of their own."""

    def topic(device: str, signal_id: str) -> dict[str, str]:
        return {"topic": f"t/{device}/{signal_id}"}

    devices = [
        registers.process(
            "d1",
            [
                _signal("state", "dev", update="on_change", **topic("d1", "state")),
                _signal("torque", "dev", **topic("d1", "torque")),
            ],
            name="Screwing",
        ),
        registers.process(
            "d2",
            [_signal("viscosity", "dev", **topic("d2", "viscosity"))],
            industry="process",
            name="Mixing",
        ),
        registers.process(
            "d3",
            [_signal("state", "dev", update="on_change", **topic("d3", "state"))],
            name="Testing",
        ),
        registers.process(
            "d4",
            [
                _signal(
                    "power",
                    "dev",
                    path="data.v",
                    timestamp_path="data.t",
                    quality_path="q",
                    **topic("d4", "power"),
                ),
                _signal(
                    "leak_rate",
                    "dev",
                    path=".",
                    timestamp_path=None,
                    quality_path=None,
                    **topic("d4", "leak_rate"),
                ),
            ],
            name="Marking",
        ),
    ]
    source = registers.mqtt_source("dev", "mqtt://127.0.0.1:1")
    plant = registers.plant("p1", [source], [registers.line("l1", devices)])
    return registers.document([plant], enterprise="test-ent", region="Test", version=None)


MQTT_REGISTER = registers.to_yaml(mqtt_document())

MQTT_SCENARIO = """\
seed: 5
register: register.yaml
machines:
  d2: {behaviour: uncertain}
  d3: {behaviour: offline}
  d4: {behaviour: bad_quality, signals: [power]}
"""


def write_scenario(folder: Path, register: str, scenario: str) -> Path:
    (folder / "register.yaml").write_text(register)
    path = folder / "scenario.yaml"
    path.write_text(scenario)
    return path
