"""Each rule and reason code of KPI.md on small hand-built series.

Unless a test says otherwise the window is [0 s, 100 s) after ``T0`` and process ``p1``
has an on-change state signal and a periodic 1 s key parameter ``speed``, both on OPC UA
source ``opc`` of plant ``pl``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from collector.kpi import (
    EDGE_SOURCE,
    ProcessResult,
    Reason,
    SignalEvidence,
    SignalSamples,
    SourceEvent,
    Status,
    Thresholds,
    Window,
    evaluate,
)
from common.quality import BAD, BAD_NO_COMMUNICATION, GOOD, GOOD_LOCAL_OVERRIDE, UNCERTAIN
from common.register_loader import LoadedRegister
from tests.collector.kpi.kpi_testkit import (
    DEFAULTS,
    at,
    concat,
    iso,
    on_change_state,
    points,
    series,
    window,
)
from tests.registers import process, register, sig

Key = tuple[str, str]


def run(
    reg: LoadedRegister,
    samples: Mapping[Key, SignalSamples],
    liveness: Mapping[Key, Sequence[SourceEvent]] | None = None,
    win: Window | None = None,
    thresholds: Thresholds = DEFAULTS,
    process_id: str = "p1",
) -> ProcessResult:
    evaluation = evaluate(reg, win or window(), samples, liveness or {}, thresholds)
    return evaluation.process(process_id)


def healthy(**overrides: SignalSamples) -> dict[Key, SignalSamples]:
    """Samples of the default process that make it digitalized, with some replaced."""
    samples = {("p1", "state"): on_change_state(), ("p1", "speed"): series(-1, 100)}
    samples.update({("p1", name): data for name, data in overrides.items()})
    return samples


def evidence(result: ProcessResult, signal_id: str) -> SignalEvidence:
    return next(s for s in result.signals if s.signal_id == signal_id)


def down(seconds: float) -> SourceEvent:
    return SourceEvent(at(seconds), up=False)


def up(seconds: float) -> SourceEvent:
    return SourceEvent(at(seconds), up=True)


# --- healthy baseline -------------------------------------------------------------------


def test_healthy_process_is_digitalized_with_full_evidence() -> None:
    result = run(register(), healthy())
    assert result.status is Status.DIGITALIZED
    assert result.reasons == ()
    assert result.scheduled_s == 100.0
    assert result.manual_share is None  # no mode signal
    speed = evidence(result, "speed")
    assert (speed.good, speed.bad, speed.uncertain, speed.overridden, speed.unknown) == (
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
    )
    assert speed.samples == 100  # the lookback sample at -1 s is not in the window
    assert speed.longest_gap_s == 0.0
    assert speed.known_valid_at_end and speed.quality_at_end == "good"
    assert speed.role == "parameter" and speed.update == "periodic" and speed.source == "opc"
    state = evidence(result, "state")
    assert state.good == 1.0 and state.samples == 0  # held from before the window
    assert [s.signal_id for s in result.signals] == ["state", "speed"]


# --- R1, R2: bindings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        None,
        sig("state", role="state", source="manual", update="on_change"),
        sig("state", role="state", source=None, update="on_change"),
    ],
    ids=["missing", "manual", "unbound"],
)
def test_r1_no_automated_state_signal(state: dict[str, object] | None) -> None:
    signals = [sig("speed")] + ([state] if state else [])
    result = run(register([process(signals=signals)]), healthy())
    assert result.status is Status.NOT_DIGITALIZED
    assert result.reasons == (Reason.NO_STATE_SIGNAL,)
    assert [s.signal_id for s in result.signals] == ["speed"]  # only automated ones required


def test_r1_one_automated_state_signal_is_enough() -> None:
    signals = [
        sig("state", role="state", update="on_change"),
        sig("state_board", role="state", source="manual", update="on_change"),
        sig("speed"),
    ]
    result = run(register([process(signals=signals)]), healthy())
    assert result.status is Status.DIGITALIZED
    assert result.manual_signals == ("state_board",)


def test_r2_unbound_and_manual_key_parameters() -> None:
    signals = [
        *[sig("state", role="state", update="on_change"), sig("speed")],
        sig("torque", source=None),
        sig("pressure", source="manual"),
        sig("colour", source="manual", key=False),  # not a key parameter: ignored
    ]
    result = run(register([process(signals=signals)]), healthy())
    assert result.status is Status.NOT_DIGITALIZED
    assert result.reasons == (Reason.MANUAL_SOURCE, Reason.PARAM_UNBOUND)
    assert result.unbound_signals == ("torque",)
    assert result.manual_signals == ("pressure",)
    assert [s.signal_id for s in result.signals] == ["state", "speed"]


def test_r2_only_manual_parameter() -> None:
    signals = [sig("state", role="state", update="on_change"), sig("pressure", source="manual")]
    result = run(register([process(signals=signals)]), {("p1", "state"): on_change_state()})
    assert result.reasons == (Reason.MANUAL_SOURCE,)


def test_mode_signal_is_not_required() -> None:
    signals = [*process()["signals"], sig("mode", role="mode", update="on_change")]
    result = run(register([process(signals=signals)]), healthy())
    assert result.status is Status.DIGITALIZED
    assert result.manual_share == 0.0  # never known, so never known to be manual
    assert [s.signal_id for s in result.signals] == ["state", "speed"]


# --- R3 coverage and hold limits ------------------------------------------------------------


def test_r3_low_coverage_when_samples_stop() -> None:
    # Last sample at 49 s is held for 3 × 1 s: known until 52 s.
    result = run(register(), healthy(speed=series(-1, 50)))
    assert result.reasons == (Reason.LOW_COVERAGE, Reason.STALE_DATA)
    speed = evidence(result, "speed")
    assert speed.good == pytest.approx(0.52) and speed.unknown == pytest.approx(0.48)
    assert speed.longest_gap_s == 48.0
    assert speed.samples == 50
    assert not speed.known_valid_at_end and speed.quality_at_end is None
    assert speed.reasons == (Reason.LOW_COVERAGE, Reason.STALE_DATA)
    assert evidence(result, "state").reasons == ()


def test_r3_signal_without_any_sample() -> None:
    samples = healthy()
    del samples[("p1", "speed")]
    result = run(register(), samples)
    speed = evidence(result, "speed")
    assert speed.unknown == 1.0 and speed.samples == 0 and speed.longest_gap_s == 100.0
    assert result.reasons == (Reason.LOW_COVERAGE, Reason.STALE_DATA)


def test_periodic_hold_is_factor_times_interval() -> None:
    reg = register([process(signals=[sig("state", role="state", update="on_change"),
                                     sig("speed", interval="10s")])])  # fmt: skip
    # Samples 30 s apart with a 3 × 10 s hold: exactly continuous.
    assert run(reg, healthy(speed=series(0, 100, every_s=30))).status is Status.DIGITALIZED
    # 40 s apart: known 0-30, 40-70, 80-100.
    result = run(reg, healthy(speed=series(0, 100, every_s=40)))
    speed = evidence(result, "speed")
    assert speed.good == pytest.approx(0.8) and speed.longest_gap_s == 10.0
    assert result.reasons == (Reason.LOW_COVERAGE,)
    # A larger factor bridges the gaps.
    wide = Thresholds(periodic_hold_factor=4)
    assert run(reg, healthy(speed=series(0, 100, every_s=40)), thresholds=wide).reasons == ()


def test_on_change_value_is_held_up_to_the_configured_maximum() -> None:
    old_state = on_change_state(start_s=-1000)
    # Default maximum (12 h): a state reported 1000 s ago is still known.
    assert run(register(), healthy(state=old_state)).status is Status.DIGITALIZED
    # Maximum 500 s: expired before the window.
    result = run(
        register(), healthy(state=old_state), thresholds=Thresholds(on_change_max_hold=500)
    )
    assert evidence(result, "state").unknown == 1.0
    assert result.reasons == (Reason.LOW_COVERAGE, Reason.STALE_DATA)
    # Maximum 1050 s: known until 50 s into the window.
    result = run(
        register(), healthy(state=old_state), thresholds=Thresholds(on_change_max_hold=1050)
    )
    assert evidence(result, "state").good == pytest.approx(0.5)


def test_periodic_signal_is_not_held_like_an_on_change_one() -> None:
    # One sample long ago: held for an on-change signal, not for a periodic one.
    result = run(register(), healthy(speed=points((-1000, GOOD))))
    assert evidence(result, "speed").unknown == 1.0
    assert evidence(result, "state").good == 1.0


# --- liveness ---------------------------------------------------------------------------


def test_source_down_ends_knowledge_and_up_alone_restores_nothing() -> None:
    samples = healthy(
        state=concat(on_change_state(), points((60, GOOD, "RUNNING"))),
        speed=concat(series(-1, 40), series(60, 100)),
    )
    liveness = {("pl", "opc"): [down(40), up(45)]}
    result = run(register(), samples, liveness)
    state, speed = evidence(result, "state"), evidence(result, "speed")
    # State: known until the down at 40 s, again from its next sample at 60 s.
    assert state.good == pytest.approx(0.8) and state.longest_gap_s == 20.0
    # Speed: without the down event its last sample would be held until 42 s.
    assert speed.good == pytest.approx(0.8)
    assert result.reasons == (Reason.LOW_COVERAGE,)
    without_events = run(register(), samples)
    assert evidence(without_events, "speed").good == pytest.approx(0.82)
    assert evidence(without_events, "state").good == 1.0


def test_source_down_without_later_sample_is_stale_at_end() -> None:
    result = run(register(), healthy(speed=series(-1, 70)), {("pl", "opc"): [down(70), up(71)]})
    assert evidence(result, "state").good == pytest.approx(0.7)
    assert result.reasons == (Reason.LOW_COVERAGE, Reason.STALE_DATA)


def test_edge_down_ends_knowledge_of_every_source_of_the_plant() -> None:
    signals = [sig("state", role="state", source="dev", update="on_change"), sig("speed")]
    reg = register([process(signals=signals)])
    samples = healthy(speed=series(-1, 90))
    result = run(reg, samples, {("pl", EDGE_SOURCE): [up(-100), down(90)]})
    assert evidence(result, "state").good == pytest.approx(0.9)
    assert evidence(result, "speed").good == pytest.approx(0.9)
    assert result.reasons == (Reason.LOW_COVERAGE, Reason.STALE_DATA)


def test_down_events_of_other_sources_or_plants_do_not_matter() -> None:
    liveness = {
        ("pl", "opc2"): [down(10)],
        ("other-plant", "opc"): [down(10)],
        ("other-plant", EDGE_SOURCE): [down(10)],
        ("pl", "opc"): [up(10)],
    }
    assert run(register(), healthy(), liveness).status is Status.DIGITALIZED


def test_down_before_a_sample_does_not_affect_it() -> None:
    # Down at 30 s, reconnect and a fresh sample at exactly 30 s: known from 30 s on.
    samples = healthy(state=points((-10, GOOD, "RUNNING"), (30, GOOD, "RUNNING")))
    result = run(register(), samples, {("pl", "opc"): [down(30)]})
    assert evidence(result, "state").good == 1.0


def test_liveness_events_may_come_unsorted() -> None:
    events = [up(45), down(40), down(-50), up(-40)]
    samples = healthy(speed=concat(series(-1, 40), series(60, 100)))
    result = run(register(), samples, {("pl", "opc"): events})
    assert evidence(result, "state").good == pytest.approx(0.4)


def test_bad_no_communication_sample_is_bad_not_unknown() -> None:
    # An OPC UA client reports a lost connection as a sample with a Bad status.
    samples = healthy(speed=concat(series(-1, 90), points((90, BAD_NO_COMMUNICATION, None))))
    result = run(register(), samples)
    speed = evidence(result, "speed")
    assert speed.good == pytest.approx(0.9) and speed.bad == pytest.approx(0.03)
    assert speed.unknown == pytest.approx(0.07)
    assert speed.quality_at_end is None  # the Bad value's hold ended at 93 s
    assert speed.reasons == (Reason.BAD_QUALITY, Reason.LOW_COVERAGE, Reason.STALE_DATA)


# --- R5 quality -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "share"),
    [
        (BAD, Reason.BAD_QUALITY, "bad"),
        (UNCERTAIN, Reason.UNCERTAIN, "uncertain"),
        (GOOD_LOCAL_OVERRIDE, Reason.OVERRIDDEN, "overridden"),
        (0x40920000, Reason.UNCERTAIN, "uncertain"),  # any Uncertain code, by severity bits
        (0x80350000, Reason.BAD_QUALITY, "bad"),
    ],
)
def test_r5_quality_classes(status: int, reason: Reason, share: str) -> None:
    result = run(register(), healthy(speed=series(-1, 100, status=status)))
    speed = evidence(result, "speed")
    assert getattr(speed, share) == 1.0 and speed.good == 0.0
    assert speed.quality_at_end == share and not speed.known_valid_at_end
    assert result.reasons == (reason,)


def test_r5_only_categories_above_the_minimum_share_are_reported() -> None:
    win = window(0, 1000)
    speed = concat(
        series(-1, 5, status=UNCERTAIN),  # 5 s: 0.5 %, below the 1 % minimum
        series(5, 60, status=BAD),  # 55 s: 5.5 %
        series(60, 1000),  # good 94 %
    )
    result = run(register(), healthy(speed=speed), win=win)
    ev = evidence(result, "speed")
    assert ev.uncertain == pytest.approx(0.005) and ev.bad == pytest.approx(0.055)
    assert result.reasons == (Reason.BAD_QUALITY,)


def test_r5_largest_category_when_none_reaches_the_minimum_share() -> None:
    loose = Thresholds(reason_min_share=0.05)
    # Bad 0-4 s (two samples, the last held 3 s), unknown 4-6 s, good from 6 s: 94 % good.
    speed = concat(points((0, BAD), (1, BAD)), series(6, 100))
    result = run(register(), healthy(speed=speed), thresholds=loose)
    ev = evidence(result, "speed")
    assert (ev.bad, ev.unknown) == pytest.approx((0.04, 0.02))
    assert result.reasons == (Reason.BAD_QUALITY,)
    # A tie resolves in the fixed order unknown, bad, uncertain, overridden.
    speed = concat(points((0, BAD)), series(6, 100))
    assert run(register(), healthy(speed=speed), thresholds=loose).reasons == (Reason.LOW_COVERAGE,)


def test_r5_small_non_good_share_above_coverage_passes() -> None:
    speed = concat(series(-1, 3, status=BAD), series(3, 100))
    result = run(register(), healthy(speed=speed))
    assert evidence(result, "speed").bad == pytest.approx(0.03)
    assert result.status is Status.DIGITALIZED


def test_r5_mixed_qualities_sum_to_one() -> None:
    speed = concat(
        series(-1, 10, status=BAD),
        series(10, 20, status=UNCERTAIN),
        series(20, 30, status=GOOD_LOCAL_OVERRIDE),
        series(40, 100),
    )
    ev = evidence(run(register(), healthy(speed=speed)), "speed")
    shares = (ev.good, ev.bad, ev.uncertain, ev.overridden, ev.unknown)
    assert shares == pytest.approx((0.6, 0.1, 0.1, 0.12, 0.08))  # override held to 32 s
    assert sum(shares) == pytest.approx(1.0)
    assert ev.longest_gap_s == 40.0
    assert ev.reasons == (
        Reason.BAD_QUALITY,
        Reason.LOW_COVERAGE,
        Reason.OVERRIDDEN,
        Reason.UNCERTAIN,
    )


# --- R4 freshness at the end ----------------------------------------------------------------


def test_r4_stale_at_end_despite_good_coverage() -> None:
    # Last sample at 95 s, held until 98 s: 98 % good but unknown at the end.
    result = run(register(), healthy(speed=series(-1, 96)))
    assert evidence(result, "speed").good == pytest.approx(0.98)
    assert result.reasons == (Reason.STALE_DATA,)


def test_r4_value_held_exactly_to_the_end_is_fresh() -> None:
    # Last sample at 97 s, held until 100 s = the window end: known at its last instant.
    result = run(register(), healthy(speed=series(-1, 98)))
    assert evidence(result, "speed").known_valid_at_end
    assert result.status is Status.DIGITALIZED


def test_r4_known_but_not_good_at_end() -> None:
    speed = concat(series(-1, 98), series(98, 100, status=UNCERTAIN))
    result = run(register(), healthy(speed=speed))
    ev = evidence(result, "speed")
    assert ev.good == pytest.approx(0.98) and ev.quality_at_end == "uncertain"
    assert result.reasons == (Reason.UNCERTAIN,)


def test_samples_outside_the_window() -> None:
    # A bad sample at the window end belongs to the next window.
    speed = concat(series(-1, 100), points((100, BAD), (101, BAD)))
    result = run(register(), healthy(speed=speed))
    assert result.status is Status.DIGITALIZED
    assert evidence(result, "speed").samples == 100
    # Older lookback samples are superseded by the last one before the start.
    speed = concat(points((-50, BAD), (-1, BAD)), series(0, 100))
    assert run(register(), healthy(speed=speed)).status is Status.DIGITALIZED
    # The last sample before the start tells the value at the start.
    speed = concat(points((-50, GOOD), (-1, BAD)), series(1, 100))
    assert evidence(run(register(), healthy(speed=speed)), "speed").bad == pytest.approx(0.01)


def test_duplicate_timestamps_last_sample_wins() -> None:
    speed = concat(series(-1, 50), points((50, BAD), (50, GOOD)), series(51, 100))
    assert evidence(run(register(), healthy(speed=speed)), "speed").good == 1.0


# --- planned downtime ---------------------------------------------------------------------


def test_partial_downtime_shrinks_the_denominator_and_moves_the_end() -> None:
    reg = register([process()], downtime=[{"start": iso(50), "end": iso(200)}])
    result = run(reg, healthy(speed=series(-1, 50)))
    assert result.scheduled_s == 50.0
    assert result.status is Status.DIGITALIZED  # last sample at 49 s is fresh at 50 s
    assert evidence(result, "speed").good == 1.0


def test_downtime_boundaries_keep_sub_second_precision() -> None:
    reg = register([process()], downtime=[{"start": iso(50.5), "end": iso(200)}])
    result = run(reg, healthy())
    assert result.scheduled_s == 50.5


def test_downtime_in_the_middle_is_not_a_gap() -> None:
    reg = register([process()], downtime=[{"start": iso(30), "end": iso(60)}])
    result = run(reg, healthy(speed=concat(series(-1, 30), series(60, 100))))
    assert result.status is Status.DIGITALIZED and result.scheduled_s == 70.0
    assert evidence(result, "speed").longest_gap_s == 0.0


def test_downtime_splits_a_gap() -> None:
    reg = register([process()], downtime=[{"start": iso(40), "end": iso(50)}])
    # Known until 22 s, unknown 22-40 s and 50-70 s (downtime 40-50 s in between).
    result = run(reg, healthy(speed=concat(series(-1, 20), series(70, 100))))
    ev = evidence(result, "speed")
    assert ev.longest_gap_s == 20.0
    assert ev.good == pytest.approx(52 / 90)


@pytest.mark.parametrize(
    ("start", "end"), [(0, 100), (-3600, 3600)], ids=["exact", "wider"]
)  # fmt: skip
def test_full_downtime_is_not_scheduled(start: float, end: float) -> None:
    no_state = process(signals=[sig("speed", source="manual")])
    reg = register([no_state], downtime=[{"start": iso(start), "end": iso(end)}])
    result = run(reg, {})
    assert result.status is Status.NOT_SCHEDULED
    assert result.reasons == () and result.signals == () and result.scheduled_s == 0.0


def test_overlapping_downtimes_covering_the_window() -> None:
    downtime = [{"start": iso(-10), "end": iso(60)}, {"start": iso(50), "end": iso(120)}]
    assert run(register([process()], downtime=downtime), {}).status is Status.NOT_SCHEDULED


# --- R6 manual mode -------------------------------------------------------------------------


def mode_register(**mode: Any) -> LoadedRegister:
    signals = [*process()["signals"], sig("mode", role="mode", update="on_change", **mode)]
    return register([process(signals=signals)])


def with_mode(*items: tuple[float, int, object]) -> dict[Key, SignalSamples]:
    samples = healthy()
    samples[("p1", "mode")] = points(*items)
    return samples


def test_r6_manual_share_at_the_limit_passes_above_fails() -> None:
    at_limit = with_mode((-5, GOOD, "manual"), (10, GOOD, "AUTO"))  # case-insensitive
    result = run(mode_register(), at_limit)
    assert result.manual_share == pytest.approx(0.10)
    assert result.status is Status.DIGITALIZED
    above = with_mode((-5, GOOD, "MANUAL"), (11, GOOD, "AUTO"))
    result = run(mode_register(), above)
    assert result.manual_share == pytest.approx(0.11)
    assert result.reasons == (Reason.MANUAL_MODE,)


def test_r6_declared_manual_values_of_other_types() -> None:
    numeric = mode_register(manual_values=[0, "HAND"])
    assert run(numeric, with_mode((0, GOOD, 0.0))).manual_share == 1.0  # JSON float 0.0
    assert run(numeric, with_mode((0, GOOD, " hand "))).manual_share == 1.0
    assert run(numeric, with_mode((0, GOOD, 1))).manual_share == 0.0
    boolean = mode_register(manual_values=[True])
    assert run(boolean, with_mode((0, GOOD, True))).manual_share == 1.0
    assert run(boolean, with_mode((0, GOOD, "TRUE"))).manual_share == 1.0
    assert run(boolean, with_mode((0, GOOD, False))).manual_share == 0.0


def test_r6_odd_values_are_simply_not_manual() -> None:
    reg = mode_register()
    assert run(reg, with_mode((0, GOOD, {"mode": "MANUAL"}))).manual_share == 0.0
    assert run(reg, with_mode((0, GOOD, ["MANUAL"]), (50, GOOD, "MANUAL"))).manual_share == 0.5


def test_r6_counts_only_known_not_bad_values() -> None:
    reg = mode_register()
    # A Bad mode reading is no evidence of manual control; null values neither.
    assert run(reg, with_mode((0, BAD, "MANUAL"))).manual_share == 0.0
    assert run(reg, with_mode((0, GOOD, None))).manual_share == 0.0
    # Overridden and uncertain readings still say what the mode is.
    assert run(reg, with_mode((0, UNCERTAIN, "MANUAL"))).manual_share == 1.0
    # Knowledge of the mode ends when its source goes down.
    result = run(reg, with_mode((0, GOOD, "MANUAL")), {("pl", "opc"): [down(5)]})
    assert result.manual_share == pytest.approx(0.05)


def test_r6_several_mode_signals_are_united() -> None:
    signals = [
        *process()["signals"],
        sig("mode", role="mode", update="on_change"),
        sig("mode2", role="mode", update="on_change"),
    ]
    samples = with_mode((0, GOOD, "MANUAL"), (10, GOOD, "AUTO"))
    samples[("p1", "mode2")] = points((5, GOOD, "MANUAL"), (20, GOOD, "AUTO"))
    result = run(register([process(signals=signals)]), samples)
    assert result.manual_share == pytest.approx(0.20)
    assert result.reasons == (Reason.MANUAL_MODE,)


def test_r6_share_of_the_scheduled_part_only() -> None:
    signals = [*process()["signals"], sig("mode", role="mode", update="on_change")]
    reg = register([process(signals=signals)], downtime=[{"start": iso(0), "end": iso(50)}])
    result = run(reg, with_mode((0, GOOD, "MANUAL"), (55, GOOD, "AUTO")))
    assert result.manual_share == pytest.approx(0.10)


def test_r6_mode_samples_need_values() -> None:
    samples = healthy()
    samples[("p1", "mode")] = SignalSamples([at(0)], [GOOD])
    with pytest.raises(ValueError, match="process p1 signal mode: a mode signal needs"):
        run(mode_register(), samples)


# --- R7, scope, errors, serialization ------------------------------------------------------


def test_r7_every_result_carries_register_thresholds_and_window() -> None:
    reg = register()
    thresholds = Thresholds(coverage_min=0.9)
    win = window(0, 100)
    evaluation = evaluate(reg, win, healthy(), {}, thresholds)
    assert evaluation.register_version == "v1" and evaluation.register_digest == reg.digest
    result = evaluation.process("p1")
    assert result.register_version == "v1"
    assert result.register_digest == reg.digest and len(reg.digest) == 64
    assert result.thresholds == thresholds.fingerprint()
    assert result.window == win
    unversioned = register(version=None)
    assert run(unversioned, healthy()).register_version == f"sha256:{unversioned.digest[:12]}"


def test_only_key_processes_are_evaluated_and_identity_is_kept() -> None:
    reg = register([process("p1"), process("p2", key=False), process("p3", industry="process")])
    evaluation = evaluate(reg, window(), {}, {}, DEFAULTS)
    assert [p.process_id for p in evaluation.processes] == ["p1", "p3"]
    p3 = evaluation.process("p3")
    assert (p3.enterprise_id, p3.region, p3.plant_id, p3.line_id, p3.industry) == (
        "ent",
        "Shanxi",
        "pl",
        "l1",
        "process",
    )
    assert evaluation.lines == (("pl", "l1"),) and evaluation.plants == ("pl",)
    with pytest.raises(KeyError, match="p2"):
        evaluation.process("p2")


def test_samples_of_unknown_signals_are_ignored() -> None:
    samples = healthy()
    samples[("p1", "nonexistent")] = points((0, BAD))
    samples[("ghost", "state")] = points((0, BAD))
    assert run(register(), samples).status is Status.DIGITALIZED


def test_unsorted_samples_are_rejected_naming_the_signal() -> None:
    samples = healthy(speed=SignalSamples([at(1), at(3), at(2)], [GOOD] * 3))
    with pytest.raises(ValueError, match=r"process p1 signal speed: .*ts\[2\]"):
        run(register(), samples)


def test_to_dict_is_plain_json() -> None:
    evaluation = evaluate(register(), window(), healthy(speed=series(-1, 50)), {}, DEFAULTS)
    data = json.loads(json.dumps(evaluation.to_dict()))
    process_data = data["processes"][0]
    assert process_data["status"] == "NOT_DIGITALIZED"
    assert process_data["reasons"] == ["LOW_COVERAGE", "STALE_DATA"]
    assert process_data["window"] == {"start_ns": at(0), "end_ns": at(100)}
    assert process_data["signals"][1]["signal_id"] == "speed"
    assert set(process_data["signals"][1]) == {
        "signal_id",
        "role",
        "update",
        "source",
        "good",
        "bad",
        "uncertain",
        "overridden",
        "unknown",
        "longest_gap_s",
        "samples",
        "known_valid_at_end",
        "quality_at_end",
        "reasons",
    }


def test_determinism_same_inputs_same_result_in_any_order() -> None:
    reg = register([process("p1"), process("p2")])
    samples = {
        ("p1", "state"): on_change_state(),
        ("p1", "speed"): concat(series(-1, 30, status=UNCERTAIN), series(30, 80)),
        ("p2", "state"): on_change_state(),
        ("p2", "speed"): series(-1, 100),
    }
    liveness = {("pl", "opc"): [down(85), up(86)], ("pl", EDGE_SOURCE): [up(-100)]}
    first = evaluate(reg, window(), samples, liveness, DEFAULTS)
    again = evaluate(reg, window(), dict(reversed(samples.items())), liveness, DEFAULTS)
    assert first == again
    assert json.dumps(first.to_dict()) == json.dumps(again.to_dict())
