"""The register loader: valid files load; bad ones fail naming file, line, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.register import SignalRole
from common.register_loader import RegisterError, load_register, parse_register

DEMO = Path(__file__).parents[2] / "examples" / "demo" / "register.yaml"

MINIMAL = """\
enterprise: {id: e1, region: Shanxi, above_designated_size: true}
plants:
  - id: p1
    sources:
      - {id: plc, kind: opcua, endpoint: "opc.tcp://127.0.0.1:4840", security: {policy: None, mode: None}}
    lines:
      - id: l1
        processes:
          - id: cnc1
            name: Turning
            key: true
            industry: discrete
            signals:
              - {id: state, role: state, source: plc, node: "nsu=urn:x;s=cnc1.state", update: on_change}
              - {id: speed, role: parameter, source: plc, node: "ns=2;s=cnc1.speed", interval: 500ms}
"""


def load_text(text: str, name: str = "plant.yaml") -> object:
    return parse_register(text.encode(), Path(name))


def test_demo_register_loads_with_declared_version() -> None:
    register = load_register(DEMO)
    assert register.version == "demo-2026.11"
    assert len(register.digest) == 64
    ref = register.signal("a1-turning", "spindle_speed")
    assert ref is not None and ref.plant.id == "plant-a" and ref.line.id == "a1"
    key = [p for pl in register.model.plants for ln in pl.lines for p in ln.processes if p.key]
    assert len(key) >= 10


def test_minimal_register_durations_and_digest_version() -> None:
    register = parse_register(MINIMAL.encode(), Path("plant.yaml"))
    assert register.version.startswith("sha256:")
    process = register.model.plants[0].lines[0].processes[0]
    assert process.signals_with_role(SignalRole.PARAMETER)[0].interval == 0.5


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (("industry: discrete", "industry: discret"), ["plant.yaml:12", "industry", "discrete"]),
        (("interval: 500ms", "interval: 1 sec"), ["plant.yaml:15", "interval", "not a duration"]),
        (
            ("name: Turning", "name: Turning\n            colour: red"),
            ["plant.yaml:11", "colour", "unknown key"],
        ),
        (
            ('source: plc, node: "ns=2', 'source: plx, node: "ns=2'),
            ["source 'plx' is not declared", "signal speed"],
        ),
        (('node: "ns=2;s=cnc1.speed"', 'node: "cnc1.speed"'), ["not an OPC UA node id"]),
        (("id: p1", "id: p 1"), ["plant.yaml:3", "plants[0].id", "not a valid id"]),
    ],
)
def test_bad_register_names_file_line_field_and_reason(
    mutation: tuple[str, str], expected: list[str]
) -> None:
    old, new = mutation
    assert old in MINIMAL
    with pytest.raises(RegisterError) as excinfo:
        load_text(MINIMAL.replace(old, new, 1))
    message = str(excinfo.value)
    for part in expected:
        assert part in message, message


def test_duplicate_process_ids_are_rejected() -> None:
    doubled = MINIMAL + MINIMAL.split("lines:\n", 1)[1].replace("- id: l1", "- id: l2")
    text = MINIMAL.replace("      - id: l1", doubled.split("    lines:\n", 1)[1].rstrip("\n"), 1)
    with pytest.raises(RegisterError, match="duplicate"):
        load_text(text)


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(RegisterError, match=r"plant.yaml:\d+: invalid YAML"):
        load_text(MINIMAL.replace("key: true", "key: [true"))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegisterError, match="cannot read register"):
        load_register(tmp_path / "nope.yaml")
