"""The "known value" computation agrees with a brute-force, instant-by-instant reading of
KPI.md's definition on random series: regular and irregular sampling, duplicate
timestamps, mixed quality classes, down events, planned downtime."""

from __future__ import annotations

import random

import pytest

from collector.kpi import intervals as iv
from collector.kpi.evaluator import _known_runs
from common.quality import BAD, GOOD, GOOD_LOCAL_OVERRIDE, UNCERTAIN, classify

CLASS_INDEX = {"good": 0, "overridden": 1, "uncertain": 2, "bad": 3}
CODES = [GOOD, GOOD | 0x00A0, GOOD_LOCAL_OVERRIDE, UNCERTAIN, BAD]


def reference_class(x: int, ts: list[int], status: list[int], hold: int, downs: list[int]) -> int:
    """Class known at instant x, or -1: the definition read literally."""
    last = max((i for i, t in enumerate(ts) if t <= x), default=None)
    if last is None:
        return -1
    t = ts[last]
    if x >= t + hold:
        return -1  # hold limit reached
    if any(t < d <= x for d in downs):
        return -1  # source lost after the sample
    return CLASS_INDEX[classify(status[last]).value]


def random_case(
    rng: random.Random,
) -> tuple[list[int], list[int], int, list[int], iv.Intervals]:
    hold = rng.randrange(1, 15)
    if rng.random() < 0.5:
        # Healthy-looking: regular samples within the hold limit, one status, no downs.
        step = rng.randrange(0, hold + 1)
        start = rng.randrange(-20, 10)
        count = rng.randrange(1, 30)
        ts = [start + i * step for i in range(count)]
        status = [rng.choice(CODES)] * count
        downs = [] if rng.random() < 0.7 else [rng.randrange(-30, 80)]
    else:
        count = rng.randrange(0, 25)
        ts = sorted(rng.randrange(-30, 70) for _ in range(count))
        status = [rng.choice(CODES) for _ in range(count)]
        downs = sorted(rng.randrange(-30, 70) for _ in range(rng.randrange(0, 4)))
    # The scheduled part of a window [0, we): whole, or with planned downtime cut out.
    we = rng.randrange(20, 60)
    downtime = iv.normalize(
        (a, a + rng.randrange(1, 30)) for a in (rng.randrange(-5, 60) for _ in range(2))
    )
    scheduled = iv.subtract([(0, we)], downtime if rng.random() < 0.5 else [])
    return ts, status, hold, downs, scheduled or [(0, we)]


@pytest.mark.parametrize("seed", range(400))
def test_known_runs_match_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    ts, status, hold, downs, scheduled = random_case(rng)
    runs, end_class = _known_runs(ts, status, hold, downs, scheduled)
    expected: list[set[int]] = [set(), set(), set(), set()]
    for x in sorted({x for a, b in scheduled for x in range(a, b)}):
        c = reference_class(x, ts, status, hold, downs)
        if c >= 0:
            expected[c].add(x)
    for c in range(4):
        assert runs[c] == iv.normalize(runs[c])
        assert {x for a, b in runs[c] for x in range(a, b)} == expected[c], f"class {c}"
    assert end_class == reference_class(scheduled[-1][1] - 1, ts, status, hold, downs)
