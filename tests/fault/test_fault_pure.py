"""The pure parts of the fault-injection suite: the seeded schedule and the comparison."""

from __future__ import annotations

import itertools

import pytest

from tests.fault.compare import (
    FaultTimes,
    Row,
    attribute,
    compare,
    offsets_ms,
    window_starts,
)
from tests.fault.rig import register_yaml, scenario_yaml
from tests.fault.schedule import (
    MIN_PAUSE_S,
    RESTART_ALLOWANCE_S,
    TAIL_S,
    TARGETS,
    WARMUP_S,
    Fault,
    make_schedule,
)


@pytest.mark.parametrize("seed", range(20))
def test_schedule_faults_do_not_overlap_and_stay_inside_the_stream(seed: int) -> None:
    stream = 120.0
    faults = make_schedule(seed, stream, 12)
    assert len(faults) == 12
    for fault in faults:
        assert fault.pause_s >= MIN_PAUSE_S
        assert fault.at_s >= WARMUP_S
        assert fault.at_s + fault.pause_s + RESTART_ALLOWANCE_S <= stream - TAIL_S + 1e-6
    for before, after in itertools.pairwise(faults):
        assert before.at_s + before.pause_s + RESTART_ALLOWANCE_S <= after.at_s + 1e-6
    # Rounds: each target once per four faults.
    for start in range(0, 12, 4):
        assert {f.target for f in faults[start : start + 4]} == set(TARGETS)


def test_schedule_is_seeded() -> None:
    assert make_schedule(7, 60.0, 4) == make_schedule(7, 60.0, 4)
    assert make_schedule(7, 60.0, 4) != make_schedule(8, 60.0, 4)


def test_schedule_refuses_a_stream_too_short_for_its_faults() -> None:
    with pytest.raises(ValueError, match="no room for 8 faults"):
        make_schedule(1, 30.0, 8)
    with pytest.raises(ValueError, match="at least 1"):
        make_schedule(1, 30.0, 0)


def test_compare_finds_missing_duplicated_unexpected_and_changed_samples() -> None:
    produced: list[Row] = [
        ("m0", "torque", 1, 1.5, 0),
        ("m0", "torque", 2, 2.5, 0),
        ("m0", "state", 1, "RUNNING", 0),
        ("m0", "count", 1, 3, 0),  # integers are stored as float
        ("m0", "x0", 1, 4.0, 0),
    ]
    stored: list[Row] = [
        ("m0", "torque", 1, 1.5, 0),
        ("m0", "torque", 1, 1.5, 0),  # the same identity twice (another series)
        ("m0", "state", 1, "RUNNING", 0),
        ("m0", "count", 1, 3.0, 0),
        ("m0", "x0", 1, 4.0, 2147483648),  # status changed on the way
        ("m0", "x9", 5, 0.0, 0),  # never produced
    ]
    result = compare(produced, stored)
    assert result.produced == 5
    assert result.stored_rows == 6 and result.stored_distinct == 5
    assert result.missing == [("m0", "torque", 2)]
    assert result.duplicated == [("m0", "torque", 1)]
    assert result.unexpected == [("m0", "x9", 5)]
    assert result.mismatched == [(("m0", "x0", 1), 4.0, 0, 4.0, 2147483648)]
    assert not result.exact


def test_compare_exact_when_everything_is_there_once() -> None:
    rows: list[Row] = [("m0", "on", 1, True, 0), ("m0", "t", 1, 0.1, 0)]
    assert compare(rows, list(reversed(rows))).exact
    # A bool is not the number 1.
    assert not compare([("m0", "on", 1, True, 0)], [("m0", "on", 1, 1.0, 0)]).exact


def test_missing_samples_are_attributed_to_the_fault_around_them() -> None:
    edge = FaultTimes(Fault("edge", 10.0, 1.0), killed_ns=10_000, restarted_ns=11_000)
    broker = FaultTimes(
        Fault("central_mosquitto", 20.0, 1.0), killed_ns=20_000, restarted_ns=21_000
    )
    missing = [("m", "s", 10_500), ("m", "s", 9_950), ("m", "s", 20_100), ("m", "s", 15_000)]
    assert attribute(missing, [edge, broker], margin_ns=100) == {
        "edge": 2,
        "central_mosquitto": 1,
        "no fault nearby": 1,
    }


def test_offsets_say_how_long_before_the_kill_a_missing_sample_was_produced() -> None:
    edge = FaultTimes(Fault("edge", 10.0, 1.0), killed_ns=10_000_000_000, restarted_ns=11 * 10**9)
    missing = [("m", "a", 9_945_000_000), ("m", "b", 9_945_000_000), ("m", "c", 9_845_000_000)]
    assert offsets_ms(missing, [edge], margin_ns=10**9) == ["edge -155ms", "edge -55ms"]


def test_window_starts_at_the_value_each_signal_held_at_the_cut() -> None:
    produced: list[Row] = [
        ("m0", "state", 100, "RUNNING", 0),  # on change: still the value at the cut
        ("m0", "t", 100, 1.0, 0),
        ("m0", "t", 200, 2.0, 0),
        ("m0", "t", 300, 3.0, 0),  # exactly at the cut: the value then
        ("m0", "t", 400, 4.0, 0),
        ("m1", "t", 500, 5.0, 0),  # nothing before the cut: every record expected
    ]
    assert window_starts(produced, 300) == {("m0", "state"): 100, ("m0", "t"): 300}


def test_compare_from_the_window_start_still_checks_earlier_stored_records() -> None:
    produced: list[Row] = [
        ("m0", "t", 100, 1.0, 0),
        ("m0", "t", 200, 2.0, 0),
        ("m0", "t", 300, 3.0, 0),
        ("m0", "t", 400, 4.0, 0),
    ]
    since = {("m0", "t"): 300}
    stored: list[Row] = [("m0", "t", 200, 2.0, 0), ("m0", "t", 300, 3.0, 0)]
    result = compare(produced, stored, since)
    assert result.produced == 2 and result.before_start == 2
    assert result.stored_before_start == 1
    assert result.missing == [("m0", "t", 400)]  # not 100: before the window
    # Earlier records that were stored are held to the same standard.
    changed = compare(
        produced, [*stored, ("m0", "t", 200, 9.0, 0), ("m0", "t", 400, 4.0, 0)], since
    )
    assert changed.missing == [] and changed.duplicated == [("m0", "t", 200)]
    assert compare(produced, [("m0", "t", 100, 7.0, 0)], since).mismatched


def test_the_opcua_plant_is_one_subscribed_source_and_freezes_after_the_stream() -> None:
    register = register_yaml(4, "opcua")
    assert "kind: opcua" in register and "mode: subscribe" in register
    assert register.count("node: nsu=urn:plantkpi:fault;s=m") == 36
    assert "backfill" not in register  # the default: auto
    scenario = scenario_yaml(7, 4, "opcua", 30.0)
    assert scenario.count("behaviour: stops_updating, after: 30000ms") == 4
    assert scenario_yaml(7, 4, "mqtt", 30.0).endswith("machines: {}\n")
