"""The demo register under synthetic telemetry that follows examples/demo/scenario.yaml.

Samples are generated at each signal's register interval for each machine's behaviour;
the statuses, reasons and rates asserted are read from the scenario's ``expected`` block.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.kpi import (
    EDGE_SOURCE,
    Evaluation,
    SignalSamples,
    SourceEvent,
    Status,
    Thresholds,
    Window,
    aggregate,
    evaluate,
)
from common.durations import parse_duration
from common.quality import BAD, GOOD, GOOD_LOCAL_OVERRIDE, UNCERTAIN
from common.register import Process, Signal, SignalRole, UpdateKind
from common.register_loader import LoadedRegister, load_register

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
S = 1_000_000_000
SIM_START = 1_795_852_800 * S  # 2026-11-28T08:00:00Z, inside b3's planned downtime
WARM_UP_S = 120
WINDOW_S = 900

Key = tuple[str, str]


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEMO / "scenario.yaml").read_text())
    return data


@pytest.fixture(scope="module")
def demo_register(scenario: dict[str, Any]) -> LoadedRegister:
    return load_register(DEMO / scenario["register"])


@pytest.fixture(scope="module")
def window() -> Window:
    start = SIM_START + WARM_UP_S * S
    return Window(start, start + WINDOW_S * S)


def first_key_parameter(process: Process) -> str | None:
    """The signal a quality behaviour (bad_quality, uncertain, override) applies to."""
    params = [s.id for s in process.signals if s.role is SignalRole.PARAMETER and s.key]
    return params[0] if params else None


def publishes(behaviour: dict[str, Any], t_s: float) -> bool:
    """Whether the machine sends anything at simulator time ``t_s``."""
    kind = behaviour.get("behaviour", "healthy")
    if kind == "offline":
        return False
    if kind == "stops_updating":
        return t_s < parse_duration(behaviour["after"])
    if kind == "intermittent":
        period = parse_duration(behaviour["period"])
        return (t_s % period) < period * float(behaviour["duty"])
    return True


def status_of(behaviour: dict[str, Any], process: Process, signal: Signal) -> int:
    kind = behaviour.get("behaviour", "healthy")
    affected = signal.id == first_key_parameter(process)
    if affected and kind == "bad_quality":
        return BAD
    if affected and kind == "uncertain":
        return UNCERTAIN
    if affected and kind == "override":
        return GOOD_LOCAL_OVERRIDE
    return GOOD


def value_of(behaviour: dict[str, Any], signal: Signal, t_s: float) -> Any:
    if signal.role is SignalRole.MODE:
        return "MANUAL" if behaviour.get("behaviour") == "manual_mode" else "AUTO"
    if signal.role is SignalRole.STATE:
        return "RUNNING"
    return 100.0 + (t_s % 7)


def synthesize(
    register: LoadedRegister, machines: dict[str, dict[str, Any]], end_s: float
) -> dict[Key, SignalSamples]:
    """Samples from simulator start to ``end_s``, as the edge would have uplinked them."""
    samples: dict[Key, SignalSamples] = {}
    for ref in register.signals():
        process, signal = ref.process, ref.signal
        if not signal.is_automated:
            continue  # manual and unbound signals have no telemetry
        behaviour = machines.get(process.id, {})
        status = status_of(behaviour, process, signal)
        ts: list[int] = []
        values: list[Any] = []
        step = signal.interval
        steps = int(end_s / step)
        was_sending = False
        for k in range(steps):
            t_s = k * step
            sending = publishes(behaviour, t_s)
            # An on-change signal reports when it (re)connects and then only on change;
            # the values here are steady, so one report per stretch of sending.
            if sending and (signal.update is UpdateKind.PERIODIC or not was_sending):
                ts.append(SIM_START + round(t_s * S))
                values.append(value_of(behaviour, signal, t_s))
            was_sending = sending
        samples[(process.id, signal.id)] = SignalSamples(ts, [status] * len(ts), values)
    return samples


def liveness(register: LoadedRegister) -> dict[Key, list[SourceEvent]]:
    events: dict[Key, list[SourceEvent]] = {}
    for plant in register.model.plants:
        events[(plant.id, EDGE_SOURCE)] = [SourceEvent(SIM_START, up=True)]
        for source in plant.sources:
            events[(plant.id, source.id)] = [SourceEvent(SIM_START, up=True)]
    return events


@pytest.fixture(scope="module")
def evaluation(
    scenario: dict[str, Any], demo_register: LoadedRegister, window: Window
) -> Evaluation:
    end_s = WARM_UP_S + WINDOW_S + 5  # a few samples after the window end too
    samples = synthesize(demo_register, scenario["machines"], end_s)
    return evaluate(demo_register, window, samples, liveness(demo_register), Thresholds())


def test_every_key_process_has_its_expected_status_and_reasons(
    scenario: dict[str, Any], evaluation: Evaluation
) -> None:
    expected: dict[str, dict[str, Any]] = scenario["expected"]["processes"]
    assert sorted(p.process_id for p in evaluation.processes) == sorted(expected)
    for process_id, want in expected.items():
        got = evaluation.process(process_id)
        assert got.status == Status(want["status"]), process_id
        reported = {str(r) for r in got.reasons}
        must = set(want.get("reasons", []))
        may = set(want.get("may_also", []))
        assert must <= reported, f"{process_id}: {sorted(reported)} lacks {sorted(must)}"
        assert reported <= must | may, f"{process_id}: unexpected {sorted(reported - must)}"


def test_rates_match_the_scenario(scenario: dict[str, Any], evaluation: Evaluation) -> None:
    rates: dict[tuple[str, str], float | None] = {
        (r.scope, r.scope_id): r.rate for r in aggregate([evaluation]) if r.industry == "all"
    }
    expected: dict[str, dict[str, float | None]] = scenario["expected"]["rates"]
    assert expected, "scenario has no expected rates"
    for scope, per_id in expected.items():
        for scope_id, want in per_id.items():
            got = rates[(scope, scope_id)]
            if want is None:
                assert got is None, (scope, scope_id)
            else:
                assert got is not None and round(got, 4) == pytest.approx(want), (scope, scope_id)
    region = evaluation.region
    enterprise_rate = rates[("enterprise", evaluation.enterprise_id)]
    assert rates[("region_official", region)] == enterprise_rate
    assert rates[("region_pooled", region)] == enterprise_rate


def test_recomputation_from_a_lookback_query_gives_the_same_result(
    scenario: dict[str, Any], demo_register: LoadedRegister, window: Window, evaluation: Evaluation
) -> None:
    """Storage returns the window's samples plus the last one before it: same answer."""
    full = synthesize(demo_register, scenario["machines"], WARM_UP_S + WINDOW_S + 5)
    trimmed: dict[Key, SignalSamples] = {}
    for key, data in full.items():
        lo = max(bisect_right(data.ts, window.start_ns) - 1, 0)
        hi = bisect_left(data.ts, window.end_ns)
        trimmed[key] = SignalSamples(data.ts[lo:hi], data.status[lo:hi], data.value[lo:hi])
    again = evaluate(demo_register, window, trimmed, liveness(demo_register), Thresholds())
    assert again == evaluation
