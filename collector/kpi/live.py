"""The live loop's incremental evaluation: each slice of time read and evaluated once.

Per enterprise and plant, the partials of the slices of recent windows are kept
(``collector/kpi/slices.py``). Evaluating a window computes the slices it lacks — in the
steady state only the newest one, from the samples of that one slice and, per signal, the
last sample of the slice before (``reads.Carry``) — and combines the rest.

A slice is computed again while it is *incomplete*: computed before the plant's edge had
delivered everything it acquired up to the slice's end (its watermark was earlier), so
data for it may still arrive. The edge only moves its watermark once its buffer is
empty, so a slice computed with the watermark at or after its end is final: nothing
stored later can change it. Hence the live answer equals a recomputation from the raw
samples at every moment — slices that may have changed are read again, the others cannot
have — and a backlog an edge drains hours later corrects the slices (and windows) it
falls into.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from collector.kpi.evaluator import Evaluation, finalize, span_partials
from collector.kpi.inputs import Window
from collector.kpi.partials import ProcessPartial
from collector.kpi.reads import (
    Carry,
    liveness_view,
    read_liveness,
    read_samples,
    samples_view,
)
from collector.kpi.slices import PlantSlices, SliceGrid
from collector.kpi.thresholds import Thresholds
from collector.storage.reader import InfluxQLReader
from common.register import Process, UpdateKind
from common.register_loader import LoadedRegister

__all__ = ["SliceStore", "lookback_ns"]


def lookback_ns(register: LoadedRegister, thresholds: Thresholds) -> int:
    """How far before a stretch of time what is stored can still matter inside it: twice
    the longest hold limit. A sample makes its value known for one hold limit; a re-send
    of it (``collector/kpi/reconfirm.py``) up to one hold limit later makes it known for
    one more. Reading that far back for every window and every slice alike is what makes a
    slice's result the same whichever window it is part of."""
    longest = 0.0
    for ref in register.signals():
        hold = ref.signal.hold(thresholds.periodic_hold_factor, thresholds.on_change_max_hold)
        longest = max(longest, hold)
    return 2 * int(longest * 1e9)


SAMPLES_PER_READ = 200_000
"""About how many samples one read may bring (each costs a few hundred bytes until its
slice is evaluated): consecutive slices are read together up to it, and a plant whose one
slice holds more is read in groups of processes."""


class SliceStore:
    """The slices of every plant of the registers, computed on demand from storage."""

    def __init__(
        self,
        reader: InfluxQLReader,
        thresholds: Thresholds,
        grid: SliceGrid,
        samples_per_read: int = SAMPLES_PER_READ,
    ) -> None:
        self.reader = reader
        self.thresholds = thresholds
        self.grid = grid
        self.samples_per_read = samples_per_read
        self._plants: dict[tuple[str, str], PlantSlices] = {}
        self._plans: dict[tuple[str, str], _ReadPlan] = {}
        self._carry: dict[tuple[str, str], Carry] = {}
        self._lookback: dict[str, int] = {}
        self.slices_computed = 0
        self.samples_read = 0
        self.reads = 0

    def fits(self, window: Window) -> bool:
        """Whether ``window`` is made of whole slices of the grid."""
        grid = self.grid
        return (
            window.duration_ns == grid.slice_ns * grid.per_window
            and window.start_ns % grid.slice_ns == 0
        )

    async def evaluate(
        self,
        register: LoadedRegister,
        window: Window,
        marks: Mapping[str, int],
        now_ns: int | None = None,
    ) -> Evaluation:
        """``register``'s evaluation of ``window`` (one that ``fits``), with ``marks`` the
        plants' watermarks as ``evaluate`` takes them."""
        now = time.time_ns() if now_ns is None else now_ns
        enterprise = register.enterprise_id
        lookback = self._lookback.get(register.digest)
        if lookback is None:
            lookback = self._lookback[register.digest] = lookback_ns(register, self.thresholds)
        partials: dict[str, ProcessPartial] = {}
        for plant in register.model.plants:
            state = self._state(register, plant.id)
            plan = self._plans[(enterprise, plant.id)]
            stale = [start for start in self.grid.starts(window) if state.stale(start)]
            for run in _runs(stale, self.grid.slice_ns, plan.slices_per_read):
                await self._compute(register, plant.id, state, plan, run, lookback, marks, now)
            partials.update(state.window(window))
        liveness = await read_liveness(
            self.reader, enterprise, window.start_ns - lookback, window.end_ns, now
        )
        return await asyncio.to_thread(
            finalize, register, window, partials, liveness, self.thresholds, marks
        )

    def forget_before(self, start_ns: int) -> None:
        """Drop slices no window starting at or after ``start_ns`` needs."""
        for state in self._plants.values():
            state.forget_before(start_ns)

    def final_spans(self, span_ns: int) -> list[tuple[str, str, int, dict[str, ProcessPartial]]]:
        """``(enterprise, plant, span start, partials)`` of every span of ``span_ns`` all of
        whose slices are final, each once (``PlantSlices.final_spans``)."""
        return [
            (enterprise, plant, start, partials)
            for (enterprise, plant), state in self._plants.items()
            for start, partials in state.final_spans(span_ns)
        ]

    @property
    def slices_kept(self) -> int:
        return sum(len(state.slots) for state in self._plants.values())

    def _state(self, register: LoadedRegister, plant_id: str) -> PlantSlices:
        key = (register.enterprise_id, plant_id)
        state = self._plants.get(key)
        if state is None:
            processes = [
                process
                for plant in register.model.plants
                if plant.id == plant_id
                for line in plant.lines
                for process in line.processes
                if process.key
            ]
            state = self._plants[key] = PlantSlices(self.grid, tuple(p.id for p in processes))
            self._plans[key] = _ReadPlan.of(processes, self.grid.slice_ns, self.samples_per_read)
        return state

    async def _compute(
        self,
        register: LoadedRegister,
        plant_id: str,
        state: PlantSlices,
        plan: _ReadPlan,
        starts: list[int],
        lookback: int,
        marks: Mapping[str, int],
        now: int,
    ) -> None:
        """Compute consecutive slices ``starts`` of one plant (one read per process group)."""
        step = self.grid.slice_ns
        first, end = starts[0], starts[-1] + step
        enterprise = register.enterprise_id
        key = (enterprise, plant_id)
        liveness = await read_liveness(
            self.reader, enterprise, first - lookback, end, now, plant_id
        )
        found: dict[int, dict[str, ProcessPartial]] = {start: {} for start in starts}
        carry_in = self._carry.get(key)
        carry_out = Carry(end)
        for group in plan.groups:
            samples, carry, read = await read_samples(
                self.reader, enterprise, first, end, lookback, plant_id, carry_in, group
            )
            self.reads += 1
            self.samples_read += read
            carry_out.last.update(carry.last)
            for start in starts:
                if len(starts) == 1:
                    view, events = samples, liveness
                else:
                    view = samples_view(samples, start, start + step, lookback)
                    events = liveness_view(liveness, start - lookback, start + step)
                found[start].update(
                    await asyncio.to_thread(
                        span_partials,
                        register,
                        Window(start, start + step),
                        view,
                        events,
                        self.thresholds,
                        plant_id,
                        None if group is None else set(group),
                    )
                )
            del samples
        mark = marks.get(plant_id)
        for start in starts:
            complete = mark is None or mark >= start + step
            state.put(start, tuple(found[start][p] for p in state.processes), complete)
        # What the next slice starts from — only from a slice nothing can change any more
        # (completeness only grows with time: the last slice's tells for all).
        if mark is None or mark >= end:
            self._carry[key] = carry_out
        else:
            self._carry.pop(key, None)
        self.slices_computed += len(starts)


def _runs(starts: list[int], step: int, longest: int) -> list[list[int]]:
    """``starts`` cut into runs of consecutive slices of at most ``longest``."""
    runs: list[list[int]] = []
    for start in starts:
        if runs and runs[-1][-1] + step == start and len(runs[-1]) < longest:
            runs[-1].append(start)
        else:
            runs.append([start])
    return runs


@dataclass(frozen=True)
class _ReadPlan:
    """How a plant's slices are read: how many at once, and in which process groups."""

    slices_per_read: int
    groups: tuple[tuple[str, ...] | None, ...]
    """Process ids per read; ``(None,)``: the whole plant in one read."""

    @classmethod
    def of(cls, processes: list[Process], slice_ns: int, budget: int) -> _ReadPlan:
        per_process = [_expected_samples(p, slice_ns) for p in processes]
        total = sum(per_process)
        if total <= budget:
            return cls(max(1, budget // max(1, total)), (None,))
        groups: list[tuple[str, ...]] = []
        current: list[str] = []
        size = 0
        for process, expected in zip(processes, per_process, strict=True):
            if current and size + expected > budget:
                groups.append(tuple(current))
                current, size = [], 0
            current.append(process.id)
            size += expected
        if current:
            groups.append(tuple(current))
        return cls(1, tuple(groups))


def _expected_samples(process: Process, slice_ns: int) -> int:
    """Samples a process's signals send in one slice, from their declared intervals (one
    per signal for on-change ones), plus the one each brings from before."""
    total = 0
    for signal in process.signals:
        if signal.update is UpdateKind.PERIODIC and signal.interval > 0:
            total += int(slice_ns / 1e9 / signal.interval)
        total += 1
    return total
