"""The report-document benchmark at a tiny size, against a real influxd (no speed asserted)."""

from __future__ import annotations

import pytest

from bench.report_doc import render, run
from harness.servers import InfluxServer

pytestmark = pytest.mark.integration


def test_a_day_of_stored_results_is_read_and_rendered(influxdb: InfluxServer) -> None:
    database = "bench_report_doc_smoke"
    try:
        result = run(influxdb.url, days=1, period_s=600, database=database, runs=1)
    finally:
        influxdb.drop_database(database)
    assert result.lines_written == 144 * (18 + 39)  # a window every 10 min, 18 + 39 points
    assert result.reconciles and result.rows_read == 24 * (18 + 1)  # 24 tiles: statuses, rate
    assert set(result.render_s) == {"pdf en", "xlsx en", "pdf zh", "xlsx zh"}
    text = render(result, "test")
    assert "| figures, again (median of 1) |" in text and "reconcile: yes" in text
