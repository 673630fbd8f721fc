"""The KPI scale benchmark at a tiny size: it runs against a real influxd and reads what
it wrote. Nothing here asserts a speed (machines are noisy)."""

from __future__ import annotations

import pytest

from bench.kpi_scale import render, run_size
from tests.support.servers import InfluxServer

pytestmark = pytest.mark.integration


async def test_tiny_run_reads_the_whole_window_every_period(influxdb: InfluxServer) -> None:
    result = await run_size(influxdb.url, signals=25, window_s=120, period_s=10, steps=2)
    assert result.processes == 5 and result.samples_in_window == 5 * 4 * 120 + 5
    assert len(result.steps) == 2
    for step in result.steps:
        # The window's samples plus, per signal, the last one before it (the state's).
        assert step.samples_read == 5 * 4 * 120 + 25
    table = render([result], 120, 10, "test")
    assert "| 25 (5) | 2,405 |" in table
