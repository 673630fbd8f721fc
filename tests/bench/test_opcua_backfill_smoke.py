"""bench/opcua_backfill.py at a tiny size: a real server process with its history, the edge's
source backfilling 30 s of 20 signals in requests of 10 values per node (continuation
points). Asserted: what must hold, every backfilled value arrived once, in order per signal,
and not also live; no speed (machines are noisy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.opcua_backfill import BackfillSink, Timing, render_section, run_one
from common.wire import Sample

SIGNALS = 20
OUTAGE_S = 30


@pytest.mark.integration
async def test_tiny_backfill_benchmark_gets_every_value_once(tmp_path: Path) -> None:
    said: list[str] = []
    result = await run_one(
        SIGNALS,
        1000,
        OUTAGE_S,
        10,
        Timing(warmup=1.0, baseline=2.0, after=1.0),
        tmp_path,
        said.append,
    )

    assert result.problems == [] and result.problem_count == 0
    assert result.reconnects == 0 and result.repeats == 0 and result.also_live == 0
    assert result.complete and result.clean
    # Per signal: every tick between its mark and its first live sample (the outage, or
    # one more when a tick fell into the subscription's creation), each once, in order.
    assert len(result.expected_per_signal) == SIGNALS
    assert all(n >= OUTAGE_S for n in result.expected_per_signal.values())
    assert result.per_signal == result.expected_per_signal
    assert result.backfilled == result.fresh == result.expected
    assert result.edge_backfill_stats["samples"] == result.backfilled
    assert result.edge_backfill_stats["failures"] == 0
    # 30 values in requests of 10 per node: continuation points were followed.
    assert len(result.requests) >= 3
    assert all(q.nodes == SIGNALS and q.values <= SIGNALS * 10 for q in result.requests)
    # Live data in the windows around the backfill (how fast is the benchmark's job).
    assert result.before.samples > 0 and result.after.samples > 0
    section = render_section([result], "(smoke test)", "tiny")
    assert f"| 10 | {result.backfilled:,} ({result.expected:,}) |" in section
    assert "incomplete" not in section and len(said) == 4


def test_the_sink_tells_repeats_disorder_and_values_also_live() -> None:
    second, start = 10**9, 1_000 * 10**9
    sink = BackfillSink(start, second, mark_ns=start - 5 * second)

    def sample(tick: int, *, backfill: bool = True) -> Sample:
        ts = start + tick * second
        return Sample("m", "p", ts, float(tick), 0, ts + 1, ts, backfill)

    sink.sample(sample(0, backfill=False))  # the first live sample: ticks -4..-1 expected
    for tick in (-4, -3, -3, -5, -1, -2, 0):
        sink.sample(sample(tick))
    assert sink.expected == 4 and sink.backfilled == 7 and sink.fresh == 4
    assert sink.complete(1) and sink.repeats == 1 and sink.also_live == 1
    assert [p.split(": ")[1] for p in sink.problems] == [
        "not a tick after the mark",  # -5, the mark itself
        "out of order",  # -2 after -1
    ]
