"""Loading scenario files: the demo, and errors that name file, line, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.machine import Behaviour
from simulators.scenario import ProcessOutcome, ScenarioError, load_scenario

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"
REGISTER = DEMO / "register.yaml"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"seed: 1\nregister: {REGISTER}\n{body}")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


def test_demo_scenario_loads() -> None:
    loaded = load_scenario(DEMO / "scenario.yaml")
    assert loaded.seed == 20261128
    assert loaded.register.path == DEMO / "register.yaml"
    coating = loaded.plan("b2-coating")
    assert coating.behaviour is Behaviour.INTERMITTENT
    assert (coating.period, coating.duty) == (12.0, 0.5)
    assert loaded.plan("b1-tempering").after == 10.0
    assert loaded.plan("a1-turning").behaviour is Behaviour.HEALTHY  # not listed
    expected = loaded.model.expected
    assert expected.processes["b3-packing"].status is ProcessOutcome.NOT_SCHEDULED
    assert expected.processes["b2-coating"].may_also == ("STALE_DATA",)
    assert expected.rates.line["b3"] is None
    assert expected.rates.enterprise == {"jinhua-machinery": 0.4706}


def test_register_override(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("seed: 3\nmachines:\n  a1-turning: {behaviour: offline}\n")
    with pytest.raises(ScenarioError, match=r"s\.yaml: register: missing"):
        load_scenario(path)
    assert load_scenario(path, register=REGISTER).plan("a1-turning").behaviour is Behaviour.OFFLINE


def test_unknown_process_in_machines_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "machines:\n  a1-turning: {behaviour: offline}\n  a9-milling: {}\n")
    message = error_of(path)
    assert f"{path}:5: machines.a9-milling: no process 'a9-milling' in register.yaml" in message


def test_unknown_process_in_expected_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "expected:\n  processes:\n    a1-turnin: {status: DIGITALIZED}\n"
        "  rates:\n    line: {a7: 0.5}\n",
    )
    message = error_of(path)
    assert f"{path}:5: expected.processes.a1-turnin: no process 'a1-turnin'" in message
    assert f"{path}:7: expected.rates.line.a7: no line 'a7'" in message


def test_unknown_key_names_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "machines:\n  a1-turning:\n    behavior: offline\n")
    message = error_of(path)
    assert f"{path}:5: machines.a1-turning.behavior: unknown key" in message


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            "machines:\n  b1-quench: {behaviour: broken}\n",
            "machines.b1-quench.behaviour",
            "healthy",
        ),
        (
            "machines:\n  b1-quench: {behaviour: stops_updating}\n",
            "machines.b1-quench",
            "needs 'after'",
        ),
        (
            "machines:\n  b2-coating: {behaviour: intermittent, period: 10s}\n",
            "machines.b2-coating",
            "needs 'period' and 'duty'",
        ),
        (
            "machines:\n  b2-coating: {behaviour: intermittent, period: 10s, duty: 1.5}\n",
            "machines.b2-coating.duty",
            "less than 1",
        ),
        (
            "machines:\n  b1-quench: {behaviour: stops_updating, after: 10 sec}\n",
            "machines.b1-quench.after",
            "is not a duration",
        ),
        (
            "machines:\n  b1-quench: {behaviour: offline, duty: 0.5}\n",
            "machines.b1-quench",
            "only apply to intermittent",
        ),
        (
            "expected:\n  processes:\n    a1-turning: {status: DIGITALIZED, reasons: [UNCERTAIN]}\n",
            "expected.processes.a1-turning",
            "has no reasons",
        ),
        (
            "expected:\n  processes:\n    a1-turning: {status: NOT_DIGITALIZED, reasons: [SLOW]}\n",
            "expected.processes.a1-turning.reasons[0]",
            "BAD_QUALITY",
        ),
        ("expected:\n  rates:\n    plant: {plant-a: 1.5}\n", "expected.rates", "outside 0..1"),
    ],
)
def test_field_errors(tmp_path: Path, body: str, field: str, reason: str) -> None:
    path = write(tmp_path, body)
    message = error_of(path)
    assert f"{path}:" in message
    assert f": {field}: " in message
    assert reason in message


def test_behaviours_that_cannot_take_effect(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "machines:\n"
        "  a2-pressfit: {behaviour: manual_mode}\n"  # no mode signal
        "  a1-washing: {behaviour: offline}\n"  # only a manual signal
        "  b1-quench: {behaviour: bad_quality, signals: [temperature, viscosity]}\n"
        "expected:\n  processes:\n    a1-washing: {status: DIGITALIZED}\n",  # not key
    )
    message = error_of(path)
    assert (
        "machines.a2-pressfit: manual_mode: process 'a2-pressfit' has no automated mode" in message
    )
    assert (
        "machines.a1-washing: process 'a1-washing' has no signal bound to OPC UA or MQTT" in message
    )
    assert "machines.b1-quench.signals: process 'b1-quench' has no signal 'viscosity'" in message
    assert "expected.processes.a1-washing: process 'a1-washing' is not a key process" in message


def test_invalid_yaml_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("seed: 1\nmachines: [\n")
    assert "invalid YAML" in error_of(path)
    assert "cannot read scenario" in error_of(tmp_path / "missing.yaml")
    path.write_text("seed: 1\nregister: nowhere.yaml\n")
    message = error_of(path)
    assert message.startswith(f"{path}:2: register: {tmp_path / 'nowhere.yaml'}: cannot read")
    path.write_text("- a list\n")
    assert "must be a mapping" in error_of(path)
