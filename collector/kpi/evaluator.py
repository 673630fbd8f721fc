"""The KPI evaluator: register + samples + liveness + window + thresholds → process statuses.

A pure function (no I/O, no clock): the live loop and a recomputation from storage call it
with the same inputs and get the same result. Only key processes are evaluated.

Rules of KPI.md and the reason codes they report:

* Planned downtime: the window minus the line's declared downtime is the *scheduled*
  part; every share below is a share of it. A window wholly inside planned downtime gives
  ``NOT_SCHEDULED`` (no rule is evaluated; the process leaves the denominator).
* R1 ``NO_STATE_SIGNAL``: no ``state`` signal bound to an automated source (OPC UA/MQTT).
* R2 ``PARAM_UNBOUND`` / ``MANUAL_SOURCE``: a key parameter without a source / with
  source ``manual``.
* *Required signals* (R3–R5) are the automated state signals and automated key parameters.
  A sample at ``t`` makes its value known from ``t`` until the first of: the next sample
  of the signal; a down event (after ``t``) of its source or of the plant's edge agent
  (``_edge``); the hold limit (``periodic_hold_factor`` × interval for periodic signals,
  ``on_change_max_hold`` for on-change ones). A known stretch has the quality class of
  its sample (``common.quality.classify``). An up event alone makes nothing known.
* R3 + R5 (per required signal): when the good share is below ``coverage_min`` the
  signal fails with every non-good category whose share is at least
  ``reason_min_share`` — unknown → ``LOW_COVERAGE``, bad → ``BAD_QUALITY``,
  uncertain → ``UNCERTAIN``, overridden → ``OVERRIDDEN`` — or, if none reaches it, the
  largest non-good category.
* R4 (per required signal), at the last instant of the scheduled part: unknown →
  ``STALE_DATA``; known but not good → that class's code (``BAD_QUALITY``, ...).
* R6 ``MANUAL_MODE``: the share of the scheduled window where a ``mode`` signal's value
  is known (not Bad) and one of its ``manual_values`` (compared as case-insensitive text)
  exceeds ``manual_mode_max``.
* R7: every result carries the register version and digest, the thresholds fingerprint
  and the window.
* ``NOT_SCHEDULED`` also when the scheduled part is less than ``scheduled_min_share`` of
  the window: a second of running time after a planned downtime is no verdict.
* ``PROVISIONAL`` (reason ``EDGE_BUFFERING``): the window ends after the plant's watermark
  (what its edge has delivered) by at most ``provisional_max``: data for it is still on its
  way (an uplink gap the edge buffered), so no verdict yet. The evidence is computed as
  usual; the service re-evaluates the window once the backlog has arrived.
* The edge agent's own downs come from its births and Last Wills as
  ``collector/kpi/edge_liveness.py`` reads them: an uplink gap is not a down.

Intervals are half-open ``[start, end)`` in int nanoseconds; durations are summed as
integers so results are exact and reproducible.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import compress, count
from typing import Any, NamedTuple

from collector.kpi import intervals as iv
from collector.kpi.edge_liveness import EdgeDown, edge_downs
from collector.kpi.inputs import Liveness, Samples, SignalSamples, SourceEvent, Window
from collector.kpi.partials import NO_SCHEDULE, UNKNOWN, ProcessPartial, SignalPartial, gap_run
from collector.kpi.reconfirm import with_reconfirmations
from collector.kpi.thresholds import Thresholds
from common.quality import BAD, GOOD, Quality, classify
from common.register import Line, Plant, Process, Signal, SignalRole
from common.register_loader import LoadedRegister
from common.timestamps import datetime_to_ns
from common.wire import EDGE_SOURCE

__all__ = [
    "Evaluation",
    "Outage",
    "ProcessResult",
    "Reason",
    "SignalEvidence",
    "Status",
    "evaluate",
    "finalize",
    "required_signals",
    "span_partials",
]


class Reason(StrEnum):
    NO_STATE_SIGNAL = "NO_STATE_SIGNAL"
    PARAM_UNBOUND = "PARAM_UNBOUND"
    MANUAL_SOURCE = "MANUAL_SOURCE"
    LOW_COVERAGE = "LOW_COVERAGE"
    STALE_DATA = "STALE_DATA"
    BAD_QUALITY = "BAD_QUALITY"
    UNCERTAIN = "UNCERTAIN"
    OVERRIDDEN = "OVERRIDDEN"
    MANUAL_MODE = "MANUAL_MODE"
    EDGE_BUFFERING = "EDGE_BUFFERING"


class Status(StrEnum):
    DIGITALIZED = "DIGITALIZED"
    NOT_DIGITALIZED = "NOT_DIGITALIZED"
    NOT_SCHEDULED = "NOT_SCHEDULED"
    PROVISIONAL = "PROVISIONAL"
    """Data for the window is still on its way from the plant's edge: no verdict yet."""


MAX_OUTAGES = 20
"""Outages listed per process result (the count of the others is kept)."""


@dataclass(frozen=True)
class Outage:
    """A source (or the plant's edge agent, ``_edge``) lost during the window: why the
    values it carried were unknown."""

    source: str
    down_ns: int
    up_ns: int | None
    """When it came back (its next up event); None if not before the window's end."""
    detail: str
    """The reason the edge gave (``connection lost: …``), or the collector's for ``_edge``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "down_ns": self.down_ns,
            "up_ns": self.up_ns,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class SignalEvidence:
    """How one required signal fared over the scheduled part of the window."""

    signal_id: str
    role: str
    update: str
    source: str
    good: float
    bad: float
    uncertain: float
    overridden: float
    unknown: float
    """Shares of the scheduled time; the five sum to 1."""
    longest_gap_s: float
    """Longest stretch of scheduled time without a good value (planned downtime splits it)."""
    samples: int
    """Samples with a timestamp inside the window."""
    known_valid_at_end: bool
    quality_at_end: str | None
    """Quality class of the value at the scheduled part's last instant; None when unknown."""
    reasons: tuple[Reason, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal_id": self.signal_id,
            "role": self.role,
            "update": self.update,
            "source": self.source,
            "good": self.good,
            "bad": self.bad,
            "uncertain": self.uncertain,
            "overridden": self.overridden,
            "unknown": self.unknown,
            "longest_gap_s": self.longest_gap_s,
            "samples": self.samples,
            "known_valid_at_end": self.known_valid_at_end,
            "quality_at_end": self.quality_at_end,
            "reasons": [str(r) for r in self.reasons],
        }


@dataclass(frozen=True)
class ProcessResult:
    """The status of one key process in one window, with the evidence behind it."""

    enterprise_id: str
    region: str
    plant_id: str
    line_id: str
    process_id: str
    industry: str
    status: Status
    reasons: tuple[Reason, ...]
    """Sorted, unique; empty when digitalized or not scheduled."""
    signals: tuple[SignalEvidence, ...]
    """Evidence for each required signal, in register order."""
    manual_share: float | None
    """R6: share of the scheduled window in manual mode; None without a mode signal."""
    scheduled_s: float
    unbound_signals: tuple[str, ...]
    """State signals and key parameters without a source."""
    manual_signals: tuple[str, ...]
    """State signals and key parameters with source ``manual``."""
    register_version: str
    register_digest: str
    thresholds: str
    """``Thresholds.fingerprint()`` of the thresholds in force."""
    window: Window
    outages: tuple[Outage, ...] = ()
    """Losses of this process's sources and of its plant's edge agent that overlap the
    window, oldest first (at most ``MAX_OUTAGES``)."""
    outages_more: int = 0
    """Further outages not listed."""
    complete: bool = True
    """The plant's edge had delivered everything up to the window's end when this was
    evaluated (False: a later evaluation may differ, see ``PROVISIONAL``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "region": self.region,
            "plant_id": self.plant_id,
            "line_id": self.line_id,
            "process_id": self.process_id,
            "industry": self.industry,
            "status": str(self.status),
            "reasons": [str(r) for r in self.reasons],
            "signals": [s.to_dict() for s in self.signals],
            "manual_share": self.manual_share,
            "scheduled_s": self.scheduled_s,
            "unbound_signals": list(self.unbound_signals),
            "manual_signals": list(self.manual_signals),
            "register_version": self.register_version,
            "register_digest": self.register_digest,
            "thresholds": self.thresholds,
            "window": self.window.to_dict(),
            "outages": [o.to_dict() for o in self.outages],
            "outages_more": self.outages_more,
            "complete": self.complete,
        }


@dataclass(frozen=True)
class Evaluation:
    """All key processes of one enterprise's register in one window."""

    enterprise_id: str
    region: str
    above_designated_size: bool
    register_version: str
    register_digest: str
    thresholds: str
    window: Window
    plants: tuple[str, ...]
    """Every plant of the register, in register order (so empty scopes still get a rate)."""
    lines: tuple[tuple[str, str], ...]
    """Every ``(plant_id, line_id)`` of the register, in register order."""
    processes: tuple[ProcessResult, ...]
    incomplete_plants: dict[str, int] = field(default_factory=dict)
    """Plants whose edge had not delivered everything up to the window's end, with the
    watermark each had then (0: none stored)."""

    def process(self, process_id: str) -> ProcessResult:
        for result in self.processes:
            if result.process_id == process_id:
                return result
        raise KeyError(f"no key process {process_id!r} in the evaluation of {self.enterprise_id}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "region": self.region,
            "above_designated_size": self.above_designated_size,
            "register_version": self.register_version,
            "register_digest": self.register_digest,
            "thresholds": self.thresholds,
            "window": self.window.to_dict(),
            "plants": list(self.plants),
            "lines": [list(pair) for pair in self.lines],
            "processes": [p.to_dict() for p in self.processes],
            "incomplete_plants": dict(self.incomplete_plants),
        }


class _Outcome(NamedTuple):
    status: Status
    reasons: tuple[Reason, ...]
    signals: tuple[SignalEvidence, ...]
    manual_share: float | None
    scheduled_s: float
    unbound_signals: tuple[str, ...]
    manual_signals: tuple[str, ...]


# Quality classes as small ints so the hot loop indexes lists instead of hashing enums.
_GOOD, _OVERRIDDEN, _UNCERTAIN, _BAD = 0, 1, 2, 3
_CLASSES = (Quality.GOOD, Quality.OVERRIDDEN, Quality.UNCERTAIN, Quality.BAD)
_INDEX = {q: i for i, q in enumerate(_CLASSES)}
_CLASS_REASON = {
    _OVERRIDDEN: Reason.OVERRIDDEN,
    _UNCERTAIN: Reason.UNCERTAIN,
    _BAD: Reason.BAD_QUALITY,
}
_NO_NEXT = 1 << 126
"""Sentinel 'next sample' time after the last sample: later than any real timestamp."""


def evaluate(
    register: LoadedRegister,
    window: Window,
    samples: Samples,
    liveness: Liveness,
    thresholds: Thresholds,
    watermarks: Mapping[str, int] | None = None,
) -> Evaluation:
    """Evaluate every key process of ``register`` in ``window``.

    ``samples`` maps ``(process_id, signal_id)`` to that signal's samples (include the last
    sample before the window start); ``liveness`` maps ``(plant_id, source_id)`` to its
    up/down events (``source_id`` ``EDGE_SOURCE`` for the edge agent), covering at least
    the span from the oldest sample given to the window end, and for the edge agent also
    what came after it. ``watermarks`` maps a plant to its latest watermark (its edge's
    "everything acquired before this is stored"); a plant without one counts as complete.
    Keys the register does not know are ignored. Raises ValueError naming the signal when
    its samples are unsorted, or a mode signal's samples lack values.

    The same as ``finalize`` of the window's ``span_partials``: this is the reference the
    incremental live loop (partials per slice, combined) is held to.
    """
    partials = span_partials(register, window, samples, liveness, thresholds)
    return finalize(register, window, partials, liveness, thresholds, watermarks)


def span_partials(
    register: LoadedRegister,
    span: Window,
    samples: Samples,
    liveness: Liveness,
    thresholds: Thresholds,
    plant_id: str | None = None,
    processes: Collection[str] | None = None,
) -> dict[str, ProcessPartial]:
    """The partial of every key process over ``span`` (a window or one slice of it), from
    the same inputs ``evaluate`` takes for that span; of one plant's with ``plant_id``, of
    only the ``processes`` named (ids) with that."""
    downs = _DownIndex(liveness)
    out: dict[str, ProcessPartial] = {}
    for plant in register.model.plants:
        if plant_id is not None and plant.id != plant_id:
            continue
        for line in plant.lines:
            scheduled = iv.subtract([(span.start_ns, span.end_ns)], _downtime(line))
            for process in line.processes:
                if process.key and (processes is None or process.id in processes):
                    out[process.id] = _process_partial(
                        plant, process, span, scheduled, samples, downs, thresholds
                    )
    return out


def finalize(
    register: LoadedRegister,
    window: Window,
    partials: Mapping[str, ProcessPartial],
    liveness: Liveness,
    thresholds: Thresholds,
    watermarks: Mapping[str, int] | None = None,
) -> Evaluation:
    """The evaluation of ``window`` from the partials of its key processes over it.

    ``liveness`` and ``watermarks`` as for ``evaluate``: they give each result its outages
    and say whether the plant's data had all arrived."""
    model = register.model
    enterprise = model.enterprise
    fingerprint = thresholds.fingerprint()
    downs = _DownIndex(liveness)
    marks = watermarks or {}
    provisional_ns = round(thresholds.provisional_max * 1e9)
    results: list[ProcessResult] = []
    lines: list[tuple[str, str]] = []
    incomplete: dict[str, int] = {}
    for plant in model.plants:
        mark = marks.get(plant.id)
        complete = mark is None or mark >= window.end_ns
        provisional = not complete and window.end_ns - (mark or 0) <= provisional_ns
        if not complete:
            incomplete[plant.id] = mark or 0
        for line in plant.lines:
            lines.append((plant.id, line.id))
            scheduled_ns = iv.length(
                iv.subtract([(window.start_ns, window.end_ns)], _downtime(line))
            )
            for process in line.processes:
                if not process.key:
                    continue
                partial = partials.get(process.id)
                if partial is None:
                    raise ValueError(f"no partial result for key process {process.id}")
                out = _process_outcome(process, partial, window, scheduled_ns, thresholds)
                if provisional and out.status is not Status.NOT_SCHEDULED:
                    out = out._replace(status=Status.PROVISIONAL, reasons=(Reason.EDGE_BUFFERING,))
                outages, more = downs.outages(plant.id, _sources_of(process), window)
                results.append(
                    ProcessResult(
                        enterprise_id=enterprise.id,
                        region=enterprise.region,
                        plant_id=plant.id,
                        line_id=line.id,
                        process_id=process.id,
                        industry=process.industry.value,
                        status=out.status,
                        reasons=out.reasons,
                        signals=out.signals,
                        manual_share=out.manual_share,
                        scheduled_s=out.scheduled_s,
                        unbound_signals=out.unbound_signals,
                        manual_signals=out.manual_signals,
                        register_version=register.version,
                        register_digest=register.digest,
                        thresholds=fingerprint,
                        window=window,
                        outages=outages,
                        outages_more=more,
                        complete=complete,
                    )
                )
    return Evaluation(
        enterprise_id=enterprise.id,
        region=enterprise.region,
        above_designated_size=enterprise.above_designated_size,
        register_version=register.version,
        register_digest=register.digest,
        thresholds=fingerprint,
        window=window,
        plants=tuple(p.id for p in model.plants),
        lines=tuple(lines),
        processes=tuple(results),
        incomplete_plants=incomplete,
    )


def required_signals(process: Process) -> tuple[Signal, ...]:
    """The signals R3–R5 judge, in register order: automated state signals and automated
    key parameters (``ProcessPartial.signals`` follows this order)."""
    return tuple(s for s in _checked(process) if s.is_automated)


def _checked(process: Process) -> tuple[Signal, ...]:
    """State signals and key parameters: what R1, R2 and R3–R5 look at."""
    states = process.signals_with_role(SignalRole.STATE)
    key_params = tuple(s for s in process.signals_with_role(SignalRole.PARAMETER) if s.key)
    return states + key_params


def _process_partial(
    plant: Plant,
    process: Process,
    span: Window,
    scheduled: iv.Intervals,
    samples: Samples,
    downs: _DownIndex,
    thresholds: Thresholds,
) -> ProcessPartial:
    """What one key process's signals did inside ``span``'s scheduled part."""
    signals = tuple(
        _signal_partial(
            _samples_of(samples, process, signal),
            downs.of(plant.id, signal.source),
            _hold_ns(signal, thresholds),
            span,
            scheduled,
        )
        for signal in required_signals(process)
    )
    manual_ns: int | None = None
    modes = process.signals_with_role(SignalRole.MODE)
    if modes:
        manual_time: iv.Intervals = []
        for mode in modes:
            manual_time = iv.union(
                manual_time,
                _manual_intervals(
                    mode,
                    _samples_of(samples, process, mode),
                    downs.of(plant.id, mode.source),
                    _hold_ns(mode, thresholds),
                    scheduled,
                    process.id,
                ),
            )
        manual_ns = iv.length(manual_time)
    return ProcessPartial(signals, manual_ns)


def _process_outcome(
    process: Process,
    partial: ProcessPartial,
    window: Window,
    scheduled_ns: int,
    thresholds: Thresholds,
) -> _Outcome:
    """The status of one key process (everything but its identity and the R7 stamp)."""
    if not scheduled_ns or scheduled_ns < thresholds.scheduled_min_share * window.duration_ns:
        return _Outcome(Status.NOT_SCHEDULED, (), (), None, scheduled_ns / 1e9, (), ())
    reasons: set[Reason] = set()
    states = process.signals_with_role(SignalRole.STATE)
    key_params = tuple(s for s in process.signals_with_role(SignalRole.PARAMETER) if s.key)
    if not any(s.is_automated for s in states):
        reasons.add(Reason.NO_STATE_SIGNAL)
    for param in key_params:
        if param.source is None:
            reasons.add(Reason.PARAM_UNBOUND)
        elif not param.is_automated:
            reasons.add(Reason.MANUAL_SOURCE)
    checked = _checked(process)
    unbound = tuple(s.id for s in checked if s.source is None)
    manual = tuple(s.id for s in checked if s.source is not None and not s.is_automated)

    required = required_signals(process)
    if len(required) != len(partial.signals):
        raise ValueError(
            f"partial result of process {process.id} has {len(partial.signals)} signals, "
            f"the register {len(required)}"
        )
    evidence = []
    for signal, signal_partial in zip(required, partial.signals, strict=True):
        ev = _signal_evidence(signal, signal_partial, scheduled_ns, thresholds)
        reasons.update(ev.reasons)
        evidence.append(ev)

    manual_share: float | None = None
    if partial.manual_ns is not None:
        manual_share = partial.manual_ns / scheduled_ns
        if manual_share > thresholds.manual_mode_max:
            reasons.add(Reason.MANUAL_MODE)

    return _Outcome(
        status=Status.NOT_DIGITALIZED if reasons else Status.DIGITALIZED,
        reasons=tuple(sorted(reasons)),
        signals=tuple(evidence),
        manual_share=manual_share,
        scheduled_s=scheduled_ns / 1e9,
        unbound_signals=unbound,
        manual_signals=manual,
    )


def _signal_partial(
    data: SignalSamples | None,
    downs: list[int],
    hold: int,
    span: Window,
    scheduled: iv.Intervals,
) -> SignalPartial:
    """Known time per class, samples and gaps of one signal inside ``span``."""
    runs: list[iv.Intervals] = [[], [], [], []]
    end_class = UNKNOWN if scheduled else NO_SCHEDULE
    samples_in_span = 0
    if data is not None and data.ts:
        samples_in_span = bisect_left(data.ts, span.end_ns) - bisect_left(data.ts, span.start_ns)
        if scheduled:
            data = with_reconfirmations(data, downs, hold)
            runs, end_class = _known_runs(data.ts, data.status, hold, downs, scheduled)
    good_ns, overridden_ns, uncertain_ns, bad_ns = (iv.length(r) for r in runs)
    head, tail, longest, whole = gap_run(
        iv.subtract(scheduled, runs[_GOOD]), span.start_ns, span.end_ns
    )
    return SignalPartial(
        good_ns,
        overridden_ns,
        uncertain_ns,
        bad_ns,
        samples_in_span,
        head,
        tail,
        longest,
        whole,
        end_class,
    )


def _signal_evidence(
    signal: Signal,
    partial: SignalPartial,
    scheduled_ns: int,
    thresholds: Thresholds,
) -> SignalEvidence:
    good_ns, overridden_ns = partial.good, partial.overridden
    uncertain_ns, bad_ns = partial.uncertain, partial.bad
    unknown_ns = scheduled_ns - partial.known
    end_class = partial.end_class if partial.end_class >= 0 else UNKNOWN

    reasons: set[Reason] = set()
    good_share = good_ns / scheduled_ns
    if good_share < thresholds.coverage_min:
        # Fixed order: ties for "largest" resolve the same way every time.
        shares = [
            (Reason.LOW_COVERAGE, unknown_ns),
            (Reason.BAD_QUALITY, bad_ns),
            (Reason.UNCERTAIN, uncertain_ns),
            (Reason.OVERRIDDEN, overridden_ns),
        ]
        notable = {
            code
            for code, ns in shares
            if ns > 0 and ns / scheduled_ns >= thresholds.reason_min_share
        }
        if not notable:
            notable = {max(shares, key=lambda item: item[1])[0]}
        reasons |= notable
    if end_class < 0:
        reasons.add(Reason.STALE_DATA)
    elif end_class != _GOOD:
        reasons.add(_CLASS_REASON[end_class])

    return SignalEvidence(
        signal_id=signal.id,
        role=signal.role.value,
        update=signal.update.value,
        source=signal.source or "",
        good=good_share,
        bad=bad_ns / scheduled_ns,
        uncertain=uncertain_ns / scheduled_ns,
        overridden=overridden_ns / scheduled_ns,
        unknown=unknown_ns / scheduled_ns,
        longest_gap_s=partial.gap_longest / 1e9,
        samples=partial.samples,
        known_valid_at_end=end_class == _GOOD,
        quality_at_end=_CLASSES[end_class].value if end_class >= 0 else None,
        reasons=tuple(sorted(reasons)),
    )


def _known_runs(
    ts: list[int],
    status: list[int],
    hold: int,
    downs: list[int],
    scheduled: iv.Intervals,
) -> tuple[list[iv.Intervals], int]:
    """Known time inside ``scheduled`` per quality class, and the class known at its end.

    Returns four normalized interval sets indexed by class, and the class known at the
    last instant of ``scheduled`` (``-1`` when nothing is known there).

    Rather than walking the samples one by one in Python, the known time is built as one
    interval from the first sample to the last one's end, minus *holes* — where a value
    outlived its hold limit before the next sample, or where a down event cut it short
    until the next sample — and split by quality class where the class changes. Finding
    the holes and the class changes runs in C (``map``/``compress``), so a window of
    thousands of 1 s signals costs Python work only per gap, down event or class change.
    """
    runs: list[iv.Intervals] = [[], [], [], []]
    ws, at_end = scheduled[0][0], scheduled[-1][1]
    # The last sample at or before the start tells the value at the start; older ones
    # are superseded by it. Samples from the end on cannot reach into the schedule.
    i0 = max(bisect_right(ts, ws) - 1, 0)
    i1 = bisect_left(ts, at_end)
    if i1 <= i0:
        return runs, -1
    cur = ts[i0:i1]
    st = status[i0:i1]
    class_of = {code: _INDEX[classify(code)] for code in set(st)}
    end_class = _class_at(ts, status, hold, downs, i1, at_end - 1, class_of)

    # The last sample's value lasts until the next sample, its hold limit or a down event.
    first, last = cur[0], cur[-1]
    end = min(last + hold, ts[i1] if i1 < len(ts) else _NO_NEXT)
    k, k_last = bisect_right(downs, first), bisect_right(downs, last)
    if k_last < len(downs) and downs[k_last] < end:
        end = downs[k_last]
    diffs = list(map(operator.sub, cur[1:], cur[:-1]))
    holes: iv.Intervals = []
    if diffs and max(diffs) > hold:
        holes += [(cur[j] + hold, cur[j + 1]) for j in compress(count(), map(hold.__lt__, diffs))]
    # A down event between two samples: unknown from it until the next sample.
    holes += [(d, ts[bisect_left(ts, d, i0, i1)]) for d in downs[k:k_last]]
    known = iv.subtract([(first, end)], iv.normalize(holes))

    classes = set(class_of.values())
    if len(classes) == 1:
        runs[classes.pop()] = iv.intersect(known, scheduled)
        return runs, end_class
    # Each class holds from a sample where the class changes until the next change.
    per_sample = list(map(class_of.__getitem__, st))
    starts = [0, *compress(count(1), map(operator.ne, per_sample[1:], per_sample[:-1]))]
    segments: list[iv.Intervals] = [[], [], [], []]
    for r, j in enumerate(starts):
        seg_end = cur[starts[r + 1]] if r + 1 < len(starts) else _NO_NEXT
        if seg_end <= cur[j]:
            continue  # superseded by a sample with the same timestamp
        same = segments[per_sample[j]]
        if same and same[-1][1] == cur[j]:  # only a superseded sample was in between
            same[-1] = (same[-1][0], seg_end)
        else:
            same.append((cur[j], seg_end))
    known = iv.intersect(known, scheduled)
    for c in range(4):
        if segments[c]:
            runs[c] = iv.intersect(known, segments[c])
    return runs, end_class


def _class_at(
    ts: list[int],
    status: list[int],
    hold: int,
    downs: list[int],
    hi: int,
    instant: int,
    class_of: dict[int, int],
) -> int:
    """Class of the value known at ``instant`` from samples ``ts[:hi]``, or -1."""
    j = bisect_right(ts, instant, 0, hi) - 1
    if j < 0:
        return -1
    t = ts[j]  # the latest sample at or before the instant: the next one comes after it
    if instant >= t + hold or bisect_right(downs, t) != bisect_right(downs, instant):
        return -1  # held too long, or its source was lost in between
    return class_of[status[j]]


def _manual_intervals(
    mode: Signal,
    data: SignalSamples | None,
    downs: list[int],
    hold: int,
    scheduled: iv.Intervals,
    process_id: str,
) -> iv.Intervals:
    """Scheduled time where a mode signal's value is known, not Bad, and manual."""
    if data is None or not data.ts:
        return []
    if len(data.value) != len(data.ts):
        raise ValueError(
            f"samples of process {process_id} signal {mode.id}: a mode signal needs its "
            f"values (rule R6), got {len(data.value)} values for {len(data.ts)} samples"
        )
    if not scheduled:
        return []
    data = with_reconfirmations(data, downs, hold)
    manual = {_mode_text(v) for v in mode.manual_values}
    bad = {code: classify(code) is Quality.BAD for code in set(data.status)}
    # Mode values repeat: judge each distinct value once. The type is part of the key
    # because True == 1 == 1.0 as dict keys but they read differently ("true" vs "1").
    judged: dict[tuple[type, Any], bool] = {}
    # Recast each sample as good (manual) or bad (not manual) and reuse the one
    # definition of "known" — the same hold limits and liveness as every other signal.
    as_status = []
    for value, code in zip(data.value, data.status, strict=True):
        try:
            key = (type(value), value)
            is_manual = judged.get(key)
            if is_manual is None:
                is_manual = judged[key] = value is not None and _mode_text(value) in manual
        except TypeError:  # an unhashable value (a JSON object or list): judge it directly
            is_manual = _mode_text(value) in manual
        as_status.append(GOOD if is_manual and not bad[code] else BAD)
    runs, _ = _known_runs(data.ts, as_status, hold, downs, scheduled)
    return runs[_GOOD]


def _mode_text(value: object) -> str:
    """Compare mode values as case-insensitive text; 1.0 from JSON equals a declared 1."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().casefold()


def _samples_of(samples: Samples, process: Process, signal: Signal) -> SignalSamples | None:
    data = samples.get((process.id, signal.id))
    if data is None:
        return None
    ts = data.ts
    if not all(map(operator.le, ts[:-1], ts[1:])):
        bad = next(i for i in range(1, len(ts)) if ts[i] < ts[i - 1])
        raise ValueError(
            f"samples of process {process.id} signal {signal.id}: timestamps must be sorted "
            f"ascending, but ts[{bad}]={ts[bad]} < ts[{bad - 1}]={ts[bad - 1]}"
        )
    return data


def _hold_ns(signal: Signal, thresholds: Thresholds) -> int:
    seconds = signal.hold(thresholds.periodic_hold_factor, thresholds.on_change_max_hold)
    return round(seconds * 1e9)


def _downtime(line: Line) -> iv.Intervals:
    return iv.normalize((datetime_to_ns(d.start), datetime_to_ns(d.end)) for d in line.downtime)


def _sources_of(process: Process) -> list[str]:
    """The distinct automated sources of a process's signals, in register order."""
    out: list[str] = []
    for signal in process.signals:
        if signal.is_automated and signal.source is not None and signal.source not in out:
            out.append(signal.source)
    return out


class _DownIndex:
    """Sorted down-event times per (plant, source), the plant's edge agent's included.

    The edge agent's downs are those ``edge_downs`` derives from its births and Wills."""

    def __init__(self, liveness: Liveness) -> None:
        self._events = liveness
        self._cache: dict[tuple[str, str | None], list[int]] = {}
        self._edge: dict[str, list[EdgeDown]] = {}

    def edge(self, plant_id: str) -> list[EdgeDown]:
        found = self._edge.get(plant_id)
        if found is None:
            found = self._edge[plant_id] = edge_downs(self._events.get((plant_id, EDGE_SOURCE), ()))
        return found

    def of(self, plant_id: str, source_id: str | None) -> list[int]:
        key = (plant_id, source_id)
        cached = self._cache.get(key)
        if cached is None:
            own: Iterable[SourceEvent] = (
                self._events.get((plant_id, source_id), ()) if source_id is not None else ()
            )
            cached = sorted([e.ts for e in own if not e.up] + [d.ts for d in self.edge(plant_id)])
            self._cache[key] = cached
        return cached

    def outages(
        self, plant_id: str, sources: Sequence[str], window: Window
    ) -> tuple[tuple[Outage, ...], int]:
        """Outages of ``sources`` and of the edge agent overlapping ``window``."""
        found: list[Outage] = []
        edge_events = self._events.get((plant_id, EDGE_SOURCE), ())
        edge_ups = [e.ts for e in edge_events if e.up]
        for down in self.edge(plant_id):
            k = bisect_right(edge_ups, down.ts)
            found.append(
                Outage(
                    EDGE_SOURCE, down.ts, edge_ups[k] if k < len(edge_ups) else None, down.detail
                )
            )
        for source in sources:
            events = self._events.get((plant_id, source), ())
            for i, event in enumerate(events):
                if event.up or (i > 0 and not events[i - 1].up):
                    continue  # only the first down of a run of downs starts an outage
                back = next((e.ts for e in events[i + 1 :] if e.up), None)
                found.append(Outage(source, event.ts, back, event.detail))
        # A return after the window's end is not shown: what is stored after the window
        # must not change its evidence (recomputed = live).
        overlapping = sorted(
            (
                o
                if o.up_ns is None or o.up_ns < window.end_ns
                else Outage(o.source, o.down_ns, None, o.detail)
                for o in found
                if o.down_ns < window.end_ns and (o.up_ns is None or o.up_ns > window.start_ns)
            ),
            key=lambda o: (o.down_ns, o.source),
        )
        return tuple(overlapping[:MAX_OUTAGES]), max(0, len(overlapping) - MAX_OUTAGES)
