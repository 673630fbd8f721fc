"""The slice grid, and the partials of one plant's slices with the windows they make. Pure.

Windows end on the period grid and last ``window``; cut time into slices of
``gcd(window, period)`` on the epoch grid and every window is a whole number of slices.
A slice's partials (``collector/kpi/partials.py``) are computed once; a window's partials
are the combination of its slices'.

Combining ``n`` slices per window per period would cost ``n`` combinations per process.
Instead the van Herk / Gil-Werman scheme for sliding-window folds: slices are grouped in
blocks of ``n`` aligned on the grid; per block, the running combination from its start
(prefix) and towards its end (suffix) is kept. A window of ``n`` slices covers the tail of
one block and the head of the next, so it is one suffix combined with one prefix: three
combinations per process per period however long the window, and exactly the same result
as folding the slices in order (combination is associative).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd

from collector.kpi.inputs import Window
from collector.kpi.partials import Combiner, ProcessPartial

__all__ = ["PlantSlices", "SliceGrid", "Slot"]

Slot = tuple[ProcessPartial, ...]
"""The partials of a plant's key processes over one slice (or a run of slices), in
register order."""

MAX_SLICES_PER_WINDOW = 100_000
MEMO_MAX = 200_000
"""Distinct partials remembered for sharing; beyond, the tables start again (correct
either way: they only save memory and time)."""


@dataclass(frozen=True)
class SliceGrid:
    slice_ns: int
    per_window: int

    @classmethod
    def for_loop(cls, window_ns: int, period_ns: int) -> SliceGrid:
        """The grid of a live loop evaluating ``window`` every ``period``. Raises
        ValueError when that needs an unreasonable number of slices per window."""
        step = gcd(window_ns, period_ns)
        per_window = window_ns // step
        if per_window > MAX_SLICES_PER_WINDOW:
            raise ValueError(
                f"KPI window {window_ns / 1e9:g}s and period {period_ns / 1e9:g}s need "
                f"slices of {step / 1e9:g}s, {per_window} per window: make the window a "
                "multiple of the period"
            )
        return cls(step, per_window)

    def starts(self, window: Window) -> list[int]:
        """Slice starts of ``window``, oldest first. Raises ValueError when the window is
        not on the grid."""
        if window.start_ns % self.slice_ns or window.end_ns % self.slice_ns:
            raise ValueError(
                f"window {window.start_ns}..{window.end_ns} is not on the slice grid "
                f"of {self.slice_ns} ns"
            )
        return list(range(window.start_ns, window.end_ns, self.slice_ns))


@dataclass
class _Block:
    prefix: list[Slot] = field(default_factory=list)
    """``prefix[k]``: the block's slices 0..k combined."""
    suffix: list[Slot] | None = None
    """``suffix[i]``: its slices from offset ``n - 1 - i`` to the end combined."""


@dataclass
class PlantSlices:
    """The stored slices of one plant of one enterprise."""

    grid: SliceGrid
    processes: tuple[str, ...]
    """The plant's key processes, in register order (the order of every ``Slot``)."""
    slots: dict[int, Slot] = field(default_factory=dict)
    """Slice start → partials."""
    complete: dict[int, bool] = field(default_factory=dict)
    """Slice start → whether everything the plant's edge acquired before the slice's end
    was stored when it was computed (else it is computed again, see ``stale``)."""
    hours_stored: set[int] = field(default_factory=set)
    """Hours whose partials have been stored (``collector/kpi/stored_partials.py``)."""
    _blocks: dict[int, _Block] = field(default_factory=dict)
    _combiner: Combiner = field(default_factory=lambda: Combiner(MEMO_MAX))

    def put(self, start: int, slot: Slot, complete: bool) -> None:
        if len(slot) != len(self.processes):
            raise ValueError(f"slice of {len(slot)} processes for {len(self.processes)}")
        self.slots[start] = tuple(map(self._combiner.share, slot))
        self.complete[start] = complete
        index = start // self.grid.slice_ns
        block = self._blocks.get(index // self.grid.per_window)
        if block is not None:  # recomputed: what was combined from the old slot goes
            del block.prefix[index % self.grid.per_window :]
            block.suffix = None

    def stale(self, start: int) -> bool:
        """The slice must be computed (again): never was, or was while data was missing."""
        return not self.complete.get(start, False)

    def window(self, window: Window) -> dict[str, ProcessPartial]:
        """The partials of every key process of the plant over ``window``; every slice of
        it must have been put."""
        n = self.grid.per_window
        first = window.start_ns // self.grid.slice_ns
        last = first + n - 1
        if first % n == 0:
            slot = self._prefix(first // n, n - 1)
        else:
            slot = self._combine(
                self._suffix(first // n, first % n), self._prefix(last // n, last % n)
            )
        return dict(zip(self.processes, slot, strict=True))

    def final_spans(self, span_ns: int) -> list[tuple[int, dict[str, ProcessPartial]]]:
        """Spans of ``span_ns`` (on the epoch grid, a multiple of the slice) whose every
        slice is kept and final and that were not handed out before, with the partials
        of their processes; each is handed out once."""
        step = self.grid.slice_ns
        if span_ns % step:
            return []
        out = []
        for span in sorted({s // span_ns * span_ns for s in self.slots} - self.hours_stored):
            starts = range(span, span + span_ns, step)
            if all(not self.stale(s) for s in starts):
                combined = [
                    self._combiner.all(parts)
                    for parts in zip(*(self.slots[s] for s in starts), strict=True)
                ]
                out.append((span, dict(zip(self.processes, combined, strict=True))))
                self.hours_stored.add(span)
        return out

    def forget_before(self, start: int) -> None:
        """Drop the slices (and blocks) no window from ``start`` on needs."""
        for old in [s for s in self.slots if s < start]:
            del self.slots[old]
            del self.complete[old]
        self.hours_stored = {h for h in self.hours_stored if h >= start - 86_400_000_000_000}
        n = self.grid.per_window
        keep_from = start // self.grid.slice_ns // n
        for block in [b for b in self._blocks if b < keep_from]:
            del self._blocks[block]

    def _slot(self, index: int) -> Slot:
        start = index * self.grid.slice_ns
        try:
            return self.slots[start]
        except KeyError:
            raise KeyError(f"slice starting {start} not computed") from None

    def _prefix(self, block_id: int, upto: int) -> Slot:
        block = self._blocks.setdefault(block_id, _Block())
        base = block_id * self.grid.per_window
        while len(block.prefix) <= upto:
            k = len(block.prefix)
            slot = self._slot(base + k)
            block.prefix.append(slot if k == 0 else self._combine(block.prefix[-1], slot))
        return block.prefix[upto]

    def _suffix(self, block_id: int, start: int) -> Slot:
        """The combination of the block's slices from offset ``start`` to its end (built
        from the end down, only as far as asked: older slices may be forgotten)."""
        block = self._blocks.setdefault(block_id, _Block())
        n = self.grid.per_window
        base = block_id * n
        if block.suffix is None:
            block.suffix = [self._slot(base + n - 1)]  # suffix[i]: from offset n - 1 - i
        suffix = block.suffix
        while len(suffix) < n - start:
            offset = n - 1 - len(suffix)
            suffix.append(self._combine(self._slot(base + offset), suffix[-1]))
        return suffix[n - 1 - start]

    def _combine(self, a: Slot, b: Slot) -> Slot:
        return tuple(map(self._combiner.combine, a, b))
