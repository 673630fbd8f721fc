"""The year-of-reports benchmark at a tiny size, against a real influxd (no speed asserted)."""

from __future__ import annotations

import pytest

from bench.report_year import render, run
from harness.servers import InfluxServer

pytestmark = pytest.mark.integration


async def test_every_day_comes_from_the_stored_partials(influxdb: InfluxServer) -> None:
    result = await run(influxdb.url, processes=3, days=3)
    assert result.points == 3 * 24 * 3
    assert result.from_partials == 3  # no day fell back to the (absent) raw samples
    assert "| 3 | 3 | 216 |" in render(result, "test")
