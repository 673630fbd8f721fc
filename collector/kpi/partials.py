"""Partial results of the KPI over a stretch of time, and how adjacent ones combine. Pure.

Every quantity a verdict is made of is additive over time or a small monoid:

* the known time of a signal per quality class, and the samples it had, add up;
* the longest stretch without a good value combines from each stretch's gap at its start
  and at its end (a gap ending where the next stretch's gap begins is one gap: intervals
  are half-open, so ``[a, m)`` and ``[m, b)`` touch and merge), its longest gap, and
  whether it was one gap from start to end;
* the class known at the last scheduled instant is the later stretch's, unless the later
  stretch had no scheduled time at all (planned downtime);
* a process's manual-mode time adds up.

So the partial of a window equals the combination of the partials of any slices that
tile it (``collector/kpi/slices.py`` cuts the window on the period grid), exactly: every
term is an integer count of nanoseconds. The evaluator turns a window's partial into
shares, reasons and a status.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from typing import NamedTuple

from collector.kpi import intervals as iv

__all__ = [
    "NO_SCHEDULE",
    "UNKNOWN",
    "Combiner",
    "ProcessPartial",
    "SignalPartial",
    "combine_all",
    "combine_process",
    "combine_signal",
    "gap_run",
]

NO_SCHEDULE = -2
"""``end_class`` of a stretch without scheduled time: it says nothing about the end."""
UNKNOWN = -1
"""``end_class`` when no value was known at the last scheduled instant."""


class SignalPartial(NamedTuple):
    """One required signal over one stretch ``[start, end)`` of time."""

    good: int
    overridden: int
    uncertain: int
    bad: int
    """Scheduled ns with a known value of each quality class."""
    samples: int
    """Samples with a timestamp in the stretch."""
    gap_head: int
    """Length of the gap (scheduled time without a good value) starting at the start."""
    gap_tail: int
    """Length of the gap ending at the end."""
    gap_longest: int
    gap_whole: bool
    """The whole stretch is one gap (then head = tail = longest = its length)."""
    end_class: int
    """Quality class index known at the stretch's last scheduled instant, ``UNKNOWN``,
    or ``NO_SCHEDULE``."""

    @property
    def known(self) -> int:
        return self.good + self.overridden + self.uncertain + self.bad


class ProcessPartial(NamedTuple):
    """A key process over one stretch: its required signals in register order."""

    signals: tuple[SignalPartial, ...]
    manual_ns: int | None
    """Scheduled ns in manual mode (any mode signal); None without a mode signal."""


def gap_run(gaps: iv.Intervals, start: int, end: int) -> tuple[int, int, int, bool]:
    """``(head, tail, longest, whole)`` of normalized ``gaps`` inside ``[start, end)``."""
    if not gaps:
        return 0, 0, 0, False
    head = gaps[0][1] - gaps[0][0] if gaps[0][0] == start else 0
    tail = gaps[-1][1] - gaps[-1][0] if gaps[-1][1] == end else 0
    whole = len(gaps) == 1 and gaps[0] == (start, end)
    return head, tail, iv.longest(gaps), whole


def combine_signal(a: SignalPartial, b: SignalPartial) -> SignalPartial:
    """The partial of ``a``'s stretch followed directly by ``b``'s."""
    return SignalPartial(
        a.good + b.good,
        a.overridden + b.overridden,
        a.uncertain + b.uncertain,
        a.bad + b.bad,
        a.samples + b.samples,
        a.gap_head + b.gap_head if a.gap_whole else a.gap_head,
        b.gap_tail + a.gap_tail if b.gap_whole else b.gap_tail,
        max(a.gap_longest, b.gap_longest, a.gap_tail + b.gap_head),
        a.gap_whole and b.gap_whole,
        a.end_class if b.end_class == NO_SCHEDULE else b.end_class,
    )


def combine_process(a: ProcessPartial, b: ProcessPartial) -> ProcessPartial:
    if len(a.signals) != len(b.signals):
        raise ValueError(
            f"cannot combine partials of {len(a.signals)} and {len(b.signals)} signals: "
            "they come from different registers"
        )
    manual = None if a.manual_ns is None else a.manual_ns + (b.manual_ns or 0)
    return ProcessPartial(tuple(map(combine_signal, a.signals, b.signals)), manual)


def combine_all(partials: Iterable[ProcessPartial]) -> ProcessPartial:
    """Combine the partials of consecutive stretches, oldest first."""
    return reduce(combine_process, partials)


class Combiner:
    """``combine_process`` remembering what it combined: healthy processes have equal
    partials, so with equal inputs shared (``share``) each distinct pair is combined once.
    The memo holds both operands, so their ids stay theirs while it lives."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._memo: dict[
            tuple[int, int], tuple[ProcessPartial, ProcessPartial, ProcessPartial]
        ] = {}
        self._shared: dict[ProcessPartial, ProcessPartial] = {}

    def share(self, partial: ProcessPartial) -> ProcessPartial:
        """The one object equal to ``partial`` this combiner has seen (or ``partial``)."""
        if len(self._shared) > self.limit:
            self._shared.clear()
        return self._shared.setdefault(partial, partial)

    def combine(self, a: ProcessPartial, b: ProcessPartial) -> ProcessPartial:
        key = (id(a), id(b))
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) > self.limit:
                self._memo.clear()
            found = self._memo[key] = (a, b, combine_process(a, b))
        return found[2]

    def all(self, partials: Iterable[ProcessPartial]) -> ProcessPartial:
        return reduce(self.combine, partials)
