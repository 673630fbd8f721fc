"""Arithmetic on sets of half-open time intervals ``[start, end)`` in int nanoseconds.

A set is a list of ``(start, end)`` tuples. Functions taking a *normalized* set expect it
sorted, without empty intervals, and with no two intervals overlapping or touching;
``normalize`` makes one from anything, and every function returns a normalized set.
Integer arithmetic keeps results exact, so recomputation gives identical numbers.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

Interval = tuple[int, int]
Intervals = list[Interval]


def normalize(intervals: Iterable[Interval]) -> Intervals:
    """Sort, drop empty intervals and merge overlapping or touching ones."""
    out: Intervals = []
    for start, end in sorted(iv for iv in intervals if iv[1] > iv[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def union(*sets: Iterable[Interval]) -> Intervals:
    """Everything covered by any of the sets (inputs need not be normalized)."""
    return normalize(iv for s in sets for iv in s)


def intersect(a: Intervals, b: Intervals) -> Intervals:
    """What both normalized sets cover.

    Cost is O(m log n + output) with m the smaller set: clipping a long set (the known
    time of a signal) to a short one (the scheduled time) copies slices in C.
    """
    if len(a) < len(b):
        a, b = b, a
    out: Intervals = []
    for start, end in b:
        out += _clip_one(a, start, end)
    return out


def _clip_one(a: Intervals, start: int, end: int) -> Intervals:
    # First interval ending after start, first one starting at or after end.
    lo = bisect_right(a, start, key=_end_of)
    hi = bisect_left(a, end, lo, key=_start_of)
    if lo >= hi:
        return []
    part = a[lo:hi]
    if part[0][0] < start:
        part[0] = (start, part[0][1])
    if part[-1][1] > end:
        part[-1] = (part[-1][0], end)
    return part


def _start_of(interval: Interval) -> int:
    return interval[0]


def _end_of(interval: Interval) -> int:
    return interval[1]


def subtract(a: Intervals, b: Intervals) -> Intervals:
    """What normalized set ``a`` covers and normalized set ``b`` does not."""
    out: Intervals = []
    j = 0
    for start, end in a:
        cursor = start
        while j < len(b) and b[j][1] <= cursor:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def clip(a: Intervals, start: int, end: int) -> Intervals:
    """The part of normalized set ``a`` inside ``[start, end)``."""
    return intersect(a, [(start, end)]) if end > start else []


def length(a: Iterable[Interval]) -> int:
    """Total length of a set of disjoint intervals."""
    return sum(end - start for start, end in a)


def longest(a: Iterable[Interval]) -> int:
    """Length of the longest interval, 0 for an empty set."""
    return max((end - start for start, end in a), default=0)
