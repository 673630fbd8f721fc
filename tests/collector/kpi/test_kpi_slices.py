"""Slices and partials: combining is exact, and the sliding-window bookkeeping (blocks of
prefixes and suffixes, forgetting, recomputed slices) gives the plain fold every time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.kpi import Window
from collector.kpi import intervals as iv
from collector.kpi.partials import (
    NO_SCHEDULE,
    ProcessPartial,
    SignalPartial,
    combine_all,
    combine_signal,
    gap_run,
)
from collector.kpi.slices import PlantSlices, SliceGrid
from tests.fuzz.profiles import fuzz

STEP = 10


@st.composite
def signal_partials(draw: st.DrawFn) -> SignalPartial:
    """The partial of a random set of gaps in one slice [0, STEP)."""
    cuts = sorted(draw(st.lists(st.integers(0, STEP), max_size=4)))
    gaps = iv.normalize(zip(cuts[::2], cuts[1::2], strict=False))
    head, tail, longest, whole = gap_run(gaps, 0, STEP)
    good = STEP - iv.length(gaps)
    end = draw(st.sampled_from([NO_SCHEDULE, -1, 0, 1, 2, 3]))
    return SignalPartial(good, 0, 0, 0, draw(st.integers(0, 3)), head, tail, longest, whole, end)


def test_the_gap_of_adjacent_stretches_joins_where_they_touch() -> None:
    a = SignalPartial(6, 0, 0, 0, 1, 0, 4, 4, False, 0)  # gap [6, 10) of [0, 10)
    b = SignalPartial(0, 0, 0, 0, 0, 10, 10, 10, True, -1)  # one gap
    c = SignalPartial(7, 0, 0, 0, 2, 3, 0, 3, False, NO_SCHEDULE)  # gap [0, 3)
    out = combine_signal(combine_signal(a, b), c)
    assert (out.gap_head, out.gap_tail, out.gap_longest, out.gap_whole) == (0, 0, 17, False)
    assert out.good == 13 and out.samples == 3
    assert out.end_class == -1  # c had no scheduled time: b's end stands


@given(st.lists(signal_partials(), min_size=1, max_size=12))
@fuzz
def test_combined_gaps_equal_the_gaps_of_the_whole(parts: list[SignalPartial]) -> None:
    """Rebuild the gap sets, lay the slices end to end, and measure the whole."""
    combined = combine_all(ProcessPartial((p,), None) for p in parts).signals[0]
    assert combined.good == sum(p.good for p in parts)
    lengths = [p.gap_longest for p in parts]
    assert combined.gap_longest >= max(lengths)
    whole = all(p.gap_whole for p in parts)
    assert combined.gap_whole == whole
    if whole:
        assert combined.gap_longest == STEP * len(parts)


@given(
    st.lists(signal_partials(), min_size=12, max_size=40),
    st.integers(2, 5),
    st.lists(st.integers(0, 39), max_size=5),
)
@fuzz
def test_sliding_windows_equal_the_plain_fold(
    parts: list[SignalPartial], per_window: int, redone: list[int]
) -> None:
    grid = SliceGrid(STEP, per_window)
    state = PlantSlices(grid, ("p",))
    slots = {i: ProcessPartial((p,), 1) for i, p in enumerate(parts)}
    for i in range(per_window - 1):
        state.put(i * STEP, (slots[i],), True)
    for last in range(per_window - 1, len(parts)):
        state.put(last * STEP, (slots[last],), True)
        for again in redone:  # a slice of the window computed again, with new content
            if last - per_window < again <= last:
                slots[again] = slots[again]._replace(manual_ns=again)
                state.put(again * STEP, (slots[again],), True)
        first = last - per_window + 1
        window = Window(first * STEP, (last + 1) * STEP)
        expected = combine_all(slots[i] for i in range(first, last + 1))
        assert state.window(window) == {"p": expected}
        state.forget_before(window.start_ns + STEP)  # the next window's start


def test_a_grid_needs_the_window_to_be_made_of_whole_slices() -> None:
    assert SliceGrid.for_loop(3600, 60) == SliceGrid(60, 60)
    assert SliceGrid.for_loop(3600, 7) == SliceGrid(1, 3600)
    with pytest.raises(ValueError, match="multiple of the period"):
        SliceGrid.for_loop(10**12, 7)
    with pytest.raises(ValueError, match="not on the slice grid"):
        SliceGrid(60, 60).starts(Window(30, 3630))
