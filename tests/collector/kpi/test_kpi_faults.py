"""The KPI under everyday faults (docs/kpi.md, "Faults"), on hand-built series.

Window [0 s, 100 s) after ``T0``; process ``p1`` has an on-change state and a periodic 1 s
key parameter ``speed`` on OPC UA source ``opc`` of plant ``pl`` (``tests.registers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from collector.kpi import (
    EDGE_SOURCE,
    Evaluation,
    Reason,
    SignalSamples,
    SourceEvent,
    Status,
    Thresholds,
    aggregate,
    evaluate,
)
from collector.kpi.edge_liveness import edge_downs
from collector.kpi.reconfirm import with_reconfirmations
from common.quality import GOOD
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
from tests.registers import process, register

Key = tuple[str, str]
BOOT = at(-3600)
NEW_BOOT = at(70)

HOLD = 43_200 * 1_000_000_000
"""The on-change hold limit: these receipts are all inside it."""


def will(seconds: float, link: int = 1, boot: int = BOOT) -> SourceEvent:
    return SourceEvent(at(seconds), False, f"uplink link {link} lost (Last Will)", boot, link)


def birth(seconds: float, link: int = 1, boot: int = BOOT) -> SourceEvent:
    return SourceEvent(at(seconds), True, f"birth (link {link})", boot, link)


def run(
    edge: Sequence[SourceEvent] = (),
    samples: Mapping[Key, SignalSamples] | None = None,
    watermark: float | None = None,
    thresholds: Thresholds = DEFAULTS,
    source_events: Sequence[SourceEvent] = (),
) -> Evaluation:
    """The default process with its state set before the window and ``speed`` all along,
    only the edge agent's events (and the plant's watermark) varied."""
    data = samples or {("p1", "state"): on_change_state(), ("p1", "speed"): series(-1, 100)}
    liveness = {("pl", EDGE_SOURCE): list(edge), ("pl", "opc"): list(source_events)}
    marks = {} if watermark is None else {"pl": at(watermark)}
    return evaluate(register([process()]), window(), data, liveness, thresholds, marks)


# --- the edge agent's births and Last Wills ------------------------------------------------


def test_an_uplink_gap_is_not_a_down_and_the_on_change_state_stays_known() -> None:
    # Central broker stopped at 40 s: the Will; the same agent back on link 2 at 72 s.
    result = run([birth(-3600), will(40), birth(72, link=2)]).process("p1")
    assert result.status is Status.DIGITALIZED
    state = next(s for s in result.signals if s.signal_id == "state")
    assert state.good == 1.0
    assert result.outages == ()


def test_a_will_delivered_after_the_next_birth_is_not_applied_out_of_order() -> None:
    # The broker re-delivered link 1's Will from its queue 5 s after link 2's birth.
    result = run([birth(-3600), birth(72, link=2), will(77, link=1)]).process("p1")
    assert result.status is Status.DIGITALIZED


def test_a_will_followed_by_a_new_boot_ends_the_values_at_the_will() -> None:
    # SIGKILLed at 40 s; a new process (new boot) at 70 s: the old one died.
    edge = [birth(-3600), will(40), birth(72, link=1, boot=NEW_BOOT)]
    downs = edge_downs(edge)
    assert [(d.ts, d.resolved) for d in downs] == [(at(40), True)]
    result = run(edge).process("p1")
    state = next(s for s in result.signals if s.signal_id == "state")
    assert state.unknown == 0.6 and Reason.LOW_COVERAGE in result.reasons
    assert Reason.STALE_DATA in result.reasons  # nothing re-sent the state after 40 s
    assert [(o.source, o.down_ns, o.up_ns) for o in result.outages] == [
        (EDGE_SOURCE, at(40), at(72))
    ]
    assert result.outages[0].detail == "uplink link 1 lost (Last Will)"


def test_samples_backfilled_into_an_edge_outage_are_known_from_their_source_time() -> None:
    # SIGKILLed at 40 s, back (new boot) at 72 s; its backfill read 40..71 s of speed from
    # the server's history, and the state's change to IDLE at 50 s (docs/kpi.md,
    # "Backfilled values").
    edge = [birth(-3600), will(40), birth(72, link=1, boot=NEW_BOOT)]
    state = concat(on_change_state(), points((50, GOOD, "IDLE")))
    result = run(edge, {("p1", "state"): state, ("p1", "speed"): series(-1, 100)}).process("p1")
    signals = {s.signal_id: s for s in result.signals}
    assert signals["speed"].unknown == 0.0  # periodic: known through the outage
    assert signals["state"].unknown == 0.1  # on-change: from its first change in it
    # The outage stays on record: the edge was down, the samples came later.
    assert [(o.source, o.down_ns, o.up_ns) for o in result.outages] == [
        (EDGE_SOURCE, at(40), at(72))
    ]
    without = run(
        edge, {("p1", "state"): state, ("p1", "speed"): concat(series(-1, 40), series(72, 100))}
    )
    assert {s.signal_id: s.unknown for s in without.process("p1").signals}["speed"] == 0.32


def test_an_unresolved_will_is_a_down_until_something_follows() -> None:
    downs = edge_downs([birth(-3600), will(40)])
    assert [(d.ts, d.resolved) for d in downs] == [(at(40), False)]
    assert run([birth(-3600), will(40)]).process("p1").status is Status.NOT_DIGITALIZED


def test_a_goodbye_and_a_legacy_death_are_downs() -> None:
    goodbye = SourceEvent(at(40), False, "stopped", BOOT, 1, shutdown=True)
    assert [d.ts for d in edge_downs([birth(-3600), goodbye, birth(72, link=2)])] == [at(40)]
    legacy = [SourceEvent(at(-3600), True), SourceEvent(at(40), False), SourceEvent(at(72), True)]
    assert [d.ts for d in edge_downs(legacy)] == [at(40)]


def test_a_new_boot_without_any_stored_death_ends_the_old_values_at_its_birth() -> None:
    # The Will was lost with a broker killed at the same time as the edge.
    downs = edge_downs([birth(-3600), birth(72, link=1, boot=NEW_BOOT)])
    assert [d.ts for d in downs] == [at(72)]


def test_a_newer_boot_before_the_late_will_bounds_the_down() -> None:
    downs = edge_downs([birth(-3600), birth(60, boot=NEW_BOOT), will(65)])
    assert [d.ts for d in downs] == [at(60)]


# --- provisional while data is on its way --------------------------------------------------


def test_a_window_past_the_watermark_is_provisional_not_failed() -> None:
    # Central broker down since 40 s, the edge buffering: delivered up to 40 s only.
    evaluation = run([birth(-3600), will(40)], watermark=40)
    result = evaluation.process("p1")
    assert result.status is Status.PROVISIONAL
    assert result.reasons == (Reason.EDGE_BUFFERING,)
    assert not result.complete and evaluation.incomplete_plants == {"pl": at(40)}
    # The evidence is still there for whoever looks: the state is cut by the open Will.
    assert next(s for s in result.signals if s.signal_id == "state").unknown == 0.6
    rate = next(r for r in aggregate([evaluation]) if r.scope == "plant" and r.industry == "all")
    assert (rate.numerator, rate.denominator, rate.provisional, rate.rate) == (0, 0, 1, None)
    assert rate.reasons == {"EDGE_BUFFERING": 1}


def test_long_past_the_watermark_the_window_is_judged_but_still_incomplete() -> None:
    thresholds = Thresholds(provisional_max=30.0)
    result = run([birth(-3600), will(40)], watermark=40, thresholds=thresholds).process("p1")
    assert result.status is Status.NOT_DIGITALIZED and not result.complete
    assert Reason.EDGE_BUFFERING not in result.reasons


def test_a_watermark_at_or_past_the_end_is_complete() -> None:
    evaluation = run([birth(-3600), will(40), birth(72, link=2)], watermark=100)
    assert evaluation.process("p1").complete and evaluation.incomplete_plants == {}
    assert run(watermark=None).process("p1").complete  # no watermark stored: legacy edge


def test_not_scheduled_stays_not_scheduled_while_provisional() -> None:
    reg = register([process()], downtime=[{"start": iso(-10), "end": iso(200)}])
    data = {("p1", "state"): on_change_state()}
    ev = evaluate(reg, window(), data, {}, DEFAULTS, {"pl": at(40)})
    assert ev.process("p1").status is Status.NOT_SCHEDULED


# --- a barely scheduled window ----------------------------------------------------------


def test_a_window_scheduled_for_less_than_the_minimum_share_is_not_scheduled() -> None:
    # Planned downtime until 99 s of a 100 s window: 1 s of running time is no verdict.
    reg = register([process()], downtime=[{"start": iso(-10), "end": iso(99)}])
    samples = {("p1", "state"): on_change_state(), ("p1", "speed"): series(-1, 100)}
    result = evaluate(reg, window(), samples, {}, DEFAULTS).process("p1")
    assert result.status is Status.NOT_SCHEDULED and result.scheduled_s == 1.0
    # With the threshold at 0 the same second is judged (as before the rule existed).
    judged = evaluate(reg, window(), samples, {}, Thresholds(scheduled_min_share=0.0))
    assert judged.process("p1").status is Status.DIGITALIZED
    # Exactly at the minimum share (5 s of 100 s) the window is judged.
    reg5 = register([process()], downtime=[{"start": iso(-10), "end": iso(95)}])
    assert evaluate(reg5, window(), samples, {}, DEFAULTS).process("p1").status is (
        Status.DIGITALIZED
    )


# --- every re-send is evidence ------------------------------------------------------------


def test_each_re_send_counts_even_when_a_later_one_overwrote_the_receive_time() -> None:
    # State set at -10 s; source lost at 20 s and 60 s; re-sent at 30 s and 70 s. The stored
    # sample keeps only the last receipt (70 s); the reconfirm points keep both.
    data = SignalSamples(
        ts=[at(-10)],
        status=[GOOD],
        value=["RUNNING"],
        recv=[at(70)],
        reconfirmed=[(at(30), at(-10)), (at(70), at(-10))],
    )
    out = with_reconfirmations(data, downs=[at(20), at(60)], hold=HOLD)
    assert out.ts == [at(-10), at(30), at(70)]
    only_last = SignalSamples(ts=[at(-10)], status=[GOOD], value=["RUNNING"], recv=[at(70)])
    assert with_reconfirmations(only_last, downs=[at(20), at(60)], hold=HOLD).ts == [
        at(-10),
        at(70),
    ]


def test_a_receipt_of_an_older_value_does_not_reconfirm_the_newer_one() -> None:
    data = SignalSamples(
        ts=[at(-10), at(10)],
        status=[GOOD, GOOD],
        value=["IDLE", "RUNNING"],
        recv=[at(-10), at(10)],
        reconfirmed=[(at(30), at(-10))],  # the old value re-sent (of_ns names it)
    )
    assert with_reconfirmations(data, downs=[at(20)], hold=HOLD).ts == [at(-10), at(10)]


# --- the process's own evidence ---------------------------------------------------------


def test_a_failing_process_shows_its_source_outage_with_the_reason() -> None:
    lost = SourceEvent(at(35.2), False, "connection lost: transport lost")
    back = SourceEvent(at(58.8), True, "connected, subscribed")
    data = {
        ("p1", "state"): on_change_state(),
        ("p1", "speed"): concat(series(-1, 35.2), series(58.8, 100)),
    }
    result = run(samples=data, source_events=[lost, back]).process("p1")
    assert result.status is Status.NOT_DIGITALIZED
    assert [o.to_dict() for o in result.outages] == [
        {
            "source": "opc",
            "down_ns": at(35.2),
            "up_ns": at(58.8),
            "detail": "connection lost: transport lost",
        }
    ]


def test_outages_outside_the_window_are_not_listed_and_the_list_is_bounded() -> None:
    events = [SourceEvent(at(-50), False, "old"), SourceEvent(at(-40), True)]
    for i in range(30):
        events += [SourceEvent(at(i * 3), False, f"flap {i}"), SourceEvent(at(i * 3 + 1), True)]
    result = run(source_events=events).process("p1")
    assert len(result.outages) == 20 and result.outages_more == 10
    assert result.outages[0].detail == "flap 0"
