"""Interval arithmetic, checked by hand and against a brute-force set of instants."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from collector.kpi import intervals as iv


def instants(intervals: iv.Intervals) -> set[int]:
    return {x for start, end in intervals for x in range(start, end)}


def random_set(rng: random.Random, span: int = 60, count: int = 6) -> iv.Intervals:
    out = []
    for _ in range(rng.randrange(count + 1)):
        start = rng.randrange(span)
        out.append((start, start + rng.randrange(-2, 12)))  # some empty or inverted
    return out


def test_normalize_sorts_merges_touching_and_drops_empty() -> None:
    assert iv.normalize([(5, 7), (0, 2), (2, 3), (6, 9), (10, 10), (12, 11)]) == [
        (0, 3),
        (5, 9),
    ]
    assert iv.normalize([]) == []


def test_union_of_several_sets() -> None:
    assert iv.union([(0, 2)], [(1, 4), (8, 9)], []) == [(0, 4), (8, 9)]


def test_intersect() -> None:
    assert iv.intersect([(0, 5), (7, 12)], [(3, 8), (10, 20)]) == [(3, 5), (7, 8), (10, 12)]
    assert iv.intersect([(0, 5)], [(5, 9)]) == []
    assert iv.intersect([], [(0, 1)]) == []


def test_subtract() -> None:
    assert iv.subtract([(0, 10)], [(2, 3), (5, 7)]) == [(0, 2), (3, 5), (7, 10)]
    assert iv.subtract([(0, 10)], [(-5, 20)]) == []
    assert iv.subtract([(0, 4), (6, 10)], [(3, 7)]) == [(0, 3), (7, 10)]
    assert iv.subtract([(0, 10)], []) == [(0, 10)]
    # One subtrahend interval reaching across several minuend intervals.
    assert iv.subtract([(0, 2), (3, 5), (6, 9)], [(1, 7)]) == [(0, 1), (7, 9)]


def test_clip_length_longest() -> None:
    assert iv.clip([(0, 5), (8, 12)], 3, 10) == [(3, 5), (8, 10)]
    assert iv.clip([(0, 5)], 5, 5) == []
    assert iv.length([(0, 5), (8, 12)]) == 9
    assert iv.longest([(0, 5), (8, 14)]) == 6
    assert iv.longest([]) == 0


@pytest.mark.parametrize("seed", range(200))
def test_operations_match_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    raw_a, raw_b = random_set(rng), random_set(rng)
    a, b = iv.normalize(raw_a), iv.normalize(raw_b)
    for result in (a, b, iv.union(raw_a, raw_b), iv.intersect(a, b), iv.subtract(a, b)):
        # Every result is normalized: sorted, non-empty, neither overlapping nor touching.
        assert all(start < end for start, end in result)
        assert all(x[1] < y[0] for x, y in pairwise(result))
    assert instants(a) == instants(raw_a)
    assert instants(iv.union(raw_a, raw_b)) == instants(a) | instants(b)
    assert instants(iv.intersect(a, b)) == instants(a) & instants(b)
    assert instants(iv.subtract(a, b)) == instants(a) - instants(b)
    assert iv.length(a) == len(instants(a))
    lo, hi = sorted(rng.randrange(70) for _ in range(2))
    assert instants(iv.clip(a, lo, hi)) == {x for x in instants(a) if lo <= x < hi}
