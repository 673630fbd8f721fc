"""The KPI scale benchmark at a tiny size: it runs against a real influxd and reads what
it wrote. Nothing here asserts a speed (machines are noisy)."""

from __future__ import annotations

import pytest

from bench.kpi_scale import render, run_backlog, run_size
from harness.servers import InfluxServer

pytestmark = pytest.mark.integration

IN_WINDOW = 5 * 4 * 120 + 5
"""5 key processes × 4 parameters × 120 s at 1 s, and each state's one sample."""


async def test_the_full_loop_reads_the_whole_window_every_period(influxdb: InfluxServer) -> None:
    result = await run_size(influxdb.url, signals=25, window_s=120, period_s=10, steps=2)
    assert result.processes == 5 and result.samples_in_window == IN_WINDOW
    assert len(result.steps) == 2 and result.first is None
    for step in result.steps:
        # The window's samples plus, per signal, the last one before it (the state's).
        assert step.samples_read == IN_WINDOW + 20
    table = render([result], [], 120, 10, "test")
    assert "| 25 (5) | full | 2,405 | — |" in table


async def test_the_incremental_loop_reads_each_sample_once(influxdb: InfluxServer) -> None:
    result = await run_size(
        influxdb.url, signals=25, window_s=120, period_s=10, steps=2, mode="incremental"
    )
    assert result.first is not None
    # Start-up: the window once (the data starts with it: nothing before but the states).
    assert result.first.samples_read == IN_WINDOW
    for step in result.steps:
        assert step.samples_read == 5 * 4 * 10  # one period of new samples, nothing else
    full = await run_size(influxdb.url, signals=25, window_s=120, period_s=10, steps=2)
    table = render([full, result], [], 120, 10, "test")
    assert "| 25 (5) | incremental | 2,405 |" in table and "×" in table


async def test_a_backlog_is_corrected_to_what_a_recomputation_says(
    influxdb: InfluxServer,
) -> None:
    result = await run_backlog(influxdb.url, signals=25, window_s=60, period_s=10)
    assert result.windows_affected == 6  # every window of the silent minute
    assert result.corrected >= result.windows_affected
    assert result.equal_to_recompute
    assert result.samples_read > 0
    assert "| 25 | 6 |" in render([], [result], 60, 10, "test")
