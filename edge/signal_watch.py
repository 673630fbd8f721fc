"""Which register signals the agent is not delivering although their source is up: nothing
silent.

A source can be connected and the agent healthy while one signal never gets through: a
payload path that does not match the device's JSON (every message rejected), a node the
server answers only with Bad, a topic nobody publishes to. The KPI then shows the process
as LOW_COVERAGE with nothing pointing at the cause. The watch names such a signal in the
health report, with the reason and its address, and the agent is ``degraded``:

- **rejected:** readings for it were rejected (the source said which signal a rejection
  was for) and no valid sample came since: at once if it never had one, after three
  rejections otherwise (one malformed message among good ones is counted, not a problem);
- **silent:** no valid sample (a value, and a status that is not Bad) for its hold limit
  (``interval`` × the KPI's periodic hold factor, or the on-change hold) while its source
  was up: nothing arrives, or only Bad samples.

Per sample the watch only counts (a dict update on the path every sample takes); the
comparisons happen when a report is asked for, so the time a signal is found silent is
that of a report, never earlier than its hold limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from common.register import ON_CHANGE_MAX_HOLD, PERIODIC_HOLD_FACTOR, Signal
from common.wire import Sample
from edge.sources import SignalKey

REJECTIONS_AFTER_VALID = 3
"""Rejections in a row (no valid sample between) that make a signal that had valid samples
a problem."""
PROBLEMS_LISTED = 50
"""Signal problems the health report lists; ``problem_signals`` counts them all."""
BAD_SEVERITY = 0x80000000


def address_of(signal: Signal) -> str:
    """Where a signal is read, in its protocol's words (``node ns=3;i=1001``, ``topic
    plant/m1/temp, path value``, ``address DB1.DBD4``)."""
    if signal.binding is None:
        return ""
    fields = signal.binding.model_dump(exclude_defaults=True, exclude={"kind"})
    return ", ".join(f"{name} {value}" for name, value in fields.items())


@dataclass(slots=True)
class _Watched:
    source: str
    address: str
    hold_s: float
    valid: int = 0
    bad: int = 0
    rejected: int = 0
    culprit: str = ""
    reason: str = ""
    # At the last check:
    seen_valid: int = 0
    seen_rejected: int = 0
    valid_at: float | None = None
    """When a check last found new valid samples."""
    rejected_since_valid: int = 0
    bad_at_valid: int = 0
    """``bad`` when a check last found new valid samples: Bad ones since are the rest."""


@dataclass
class SignalWatch:
    periodic_hold_factor: float = PERIODIC_HOLD_FACTOR
    on_change_max_hold: float = ON_CHANGE_MAX_HOLD
    clock: Callable[[], float] = time.monotonic
    _signals: dict[SignalKey, _Watched] = field(default_factory=dict)
    _up_since: dict[str, float] = field(default_factory=dict)
    """Source id → when it was last reported up (absent: down, or never up)."""

    def watch(self, signals: Iterable[tuple[str, Signal]]) -> None:
        """The (process id, signal) pairs the agent reads."""
        for process, signal in signals:
            if signal.source is None or not signal.is_automated:
                continue
            hold = signal.hold(self.periodic_hold_factor, self.on_change_max_hold)
            self._signals[(process, signal.id)] = _Watched(signal.source, address_of(signal), hold)

    def sample(self, sample: Sample) -> None:
        # On every sample's path: one lookup and one count (slots), nothing else.
        watched = self._signals.get((sample.process, sample.signal))
        if watched is None:
            return
        if sample.status < BAD_SEVERITY and sample.value is not None:
            watched.valid += 1
        else:
            watched.bad += 1

    def liveness(self, source: str, up: bool) -> None:
        if up:
            self._up_since.setdefault(source, self.clock())
        else:
            self._up_since.pop(source, None)

    def rejected(
        self, source: str, culprit: str, reason: str, signals: Collection[SignalKey]
    ) -> None:
        for key in signals:
            watched = self._signals.get(key)
            if watched is not None:
                watched.rejected += 1
                watched.culprit, watched.reason = culprit, reason

    def report(self) -> dict[str, Any]:
        """The check: every signal whose source is up, judged now."""
        now = self.clock()
        problems: list[dict[str, Any]] = []
        for (process, signal), w in self._signals.items():
            if w.valid != w.seen_valid:
                w.valid_at, w.rejected_since_valid, w.bad_at_valid = now, 0, w.bad
            else:
                w.rejected_since_valid += w.rejected - w.seen_rejected
            w.seen_valid, w.seen_rejected = w.valid, w.rejected
            up_since = self._up_since.get(w.source)
            if up_since is None:
                continue  # the source's own problem says it
            problem = self._judge(w, now, up_since)
            if problem is not None:
                problems.append(
                    {
                        "process": process,
                        "signal": signal,
                        "source": w.source,
                        "address": w.address,
                        **problem,
                    }
                )
        return {
            "watched": len(self._signals),
            "problem_signals": len(problems),
            "problems": problems[:PROBLEMS_LISTED],
        }

    def _judge(self, w: _Watched, now: float, up_since: float) -> dict[str, Any] | None:
        rejected = w.rejected_since_valid
        if rejected and (w.valid == 0 or rejected >= REJECTIONS_AFTER_VALID):
            return {
                "problem": "rejected",
                "reason": f"{rejected} readings rejected, none valid since: {w.reason} "
                f"({w.culprit})",
            }
        since = max(up_since, w.valid_at if w.valid_at is not None else up_since)
        silent_s = now - since
        if silent_s <= w.hold_s:
            return None
        bad = w.bad - w.bad_at_valid
        got = f"only Bad samples ({bad})" if bad else "nothing arrived"
        return {
            "problem": "silent",
            "reason": f"no valid sample for {silent_s:.0f} s (hold {w.hold_s:g} s): {got}",
        }


def problem_lines(report: dict[str, Any], limit: int = 5) -> list[str]:
    """The health verdict's lines for the watch's part of a report."""
    problems = report.get("problems") or []
    lines = [
        f"signal {p['process']}.{p['signal']} (source {p['source']}"
        + (f", {p['address']}" if p.get("address") else "")
        + f"): {p['reason']}"
        for p in problems[:limit]
    ]
    more = int(report.get("problem_signals") or 0) - len(lines)
    if more > 0:
        lines.append(f"{more} more signals not delivered (see signals.problems)")
    return lines
