"""Small registers for the simulator tests: 100 ms intervals keep the tests to seconds."""

from __future__ import annotations

from pathlib import Path

OPCUA_REGISTER = """\
enterprise: {id: test-ent, region: Test, above_designated_size: true}
plants:
- id: p1
  sources:
  - {id: s1, kind: opcua, endpoint: "opc.tcp://127.0.0.1:4840", security: {policy: None, mode: None}}
  lines:
  - id: l1
    processes:
    - id: m1
      name: Turning
      key: true
      industry: discrete
      signals:
      - {id: state, role: state, source: s1, node: "nsu=urn:test:sim;s=m1.state", interval: 100ms, update: on_change}
      - {id: mode, role: mode, source: s1, node: "nsu=urn:test:sim;s=m1.mode", interval: 100ms, update: on_change}
      - {id: spindle_speed, role: parameter, source: s1, node: "nsu=urn:test:sim;s=m1.spindle_speed", interval: 100ms}
      - {id: part_count, role: parameter, source: s1, node: "nsu=urn:test:sim;s=m1.part_count", interval: 100ms, update: on_change}
    - id: m2
      name: Quench
      key: true
      industry: process
      signals:
      - {id: state, role: state, source: s1, node: "nsu=urn:test:sim;s=m2.state", interval: 100ms, update: on_change}
      - {id: temperature, role: parameter, source: s1, node: "nsu=urn:test:sim;s=m2.temperature", interval: 100ms}
    - id: m3
      name: Test bench
      key: true
      industry: discrete
      signals:
      - {id: state, role: state, source: s1, node: "nsu=urn:test:sim;s=m3.state", interval: 100ms, update: on_change}
    - id: m4
      name: Press-fit
      key: true
      industry: discrete
      signals:
      - {id: state, role: state, source: s1, node: "nsu=urn:test:other;s=m4.state", interval: 100ms}
      - {id: press_force, role: parameter, source: s1, node: "nsu=urn:test:other;s=m4.press_force", interval: 100ms}
"""

OPCUA_SCENARIO = """\
seed: 42
register: register.yaml
machines:
  m2: {behaviour: bad_quality}
  m3: {behaviour: offline}
  m4: {behaviour: override}
"""

MQTT_REGISTER = """\
enterprise: {id: test-ent, region: Test, above_designated_size: true}
plants:
- id: p1
  sources:
  - {id: dev, kind: mqtt, broker: "mqtt://127.0.0.1:1"}
  lines:
  - id: l1
    processes:
    - id: d1
      name: Screwing
      key: true
      industry: discrete
      signals:
      - {id: state, role: state, source: dev, topic: t/d1/state, interval: 100ms, update: on_change}
      - {id: torque, role: parameter, source: dev, topic: t/d1/torque, interval: 100ms}
    - id: d2
      name: Mixing
      key: true
      industry: process
      signals:
      - {id: viscosity, role: parameter, source: dev, topic: t/d2/viscosity, interval: 100ms}
    - id: d3
      name: Testing
      key: true
      industry: discrete
      signals:
      - {id: state, role: state, source: dev, topic: t/d3/state, interval: 100ms, update: on_change}
    - id: d4
      name: Marking
      key: true
      industry: discrete
      signals:
      - {id: power, role: parameter, source: dev, topic: t/d4/power, interval: 100ms,
         path: data.v, timestamp_path: data.t, quality_path: q}
      - {id: leak_rate, role: parameter, source: dev, topic: t/d4/leak_rate, interval: 100ms,
         path: ".", timestamp_path: null, quality_path: null}
"""

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
