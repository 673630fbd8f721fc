"""The region benchmark at a tiny size, against a real influxd (no speed asserted)."""

from __future__ import annotations

import pytest

from bench.region_scale import render, run
from harness.servers import InfluxServer

pytestmark = pytest.mark.integration


async def test_tiny_region_run_measures_every_part(influxdb: InfluxServer) -> None:
    result = await run(influxdb.url, enterprises=3, processes=2, window_s=120, period_s=60, steps=2)
    assert result.enterprises == 3 and result.processes == 2
    for series in (result.evaluation_s, result.aggregate_s, result.roll_up_s, result.cpu_s):
        assert len(series) == 2  # one figure per period measured
    assert "| 3 × 2 |" in render(result, 120, 60, "test")
