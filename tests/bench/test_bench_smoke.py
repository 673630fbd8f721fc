"""The end-to-end throughput benchmark at a tiny size: it runs and reports sane numbers.

Real mosquitto, influxd and every pipeline process, as in the benchmark itself. Nothing
here asserts a speed (machines are noisy): only that the report has a baseline and a
pipeline table with positive figures, and that no more is stored than was produced.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.e2e_throughput import BenchResults, measure_baseline, render_section
from bench.pipeline_run import RunTiming, run_pipeline
from bench.report import machine_description
from bench.scaled_plant import PlantSize
from harness.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.integration

_NUMBER = re.compile(r"^-?[\d,]+(?:\.\d+)?$")


def _table_value(section: str, label: str) -> float:
    """The first cell after ``label`` in a markdown table row of ``section``."""
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and cells[0] == label:
            text = cells[1].split(" ")[0]
            assert _NUMBER.match(text), f"{label}: {cells[1]!r} is not a number"
            return float(text.replace(",", ""))
    raise AssertionError(f"no table row {label!r} in:\n{section}")


async def test_tiny_benchmark_reports_positive_figures(
    private_mosquitto: MosquittoServer, influxdb: InfluxServer, tmp_path: Path
) -> None:
    # A broker of its own: the devices and the edge leave retained messages behind, which
    # other tests' collectors would otherwise receive. Databases are dropped after use.
    baseline = await measure_baseline(influxdb, batches=2)
    run = await run_pipeline(
        private_mosquitto,
        influxdb,
        PlantSize(signals=10),
        tmp_path,
        RunTiming(seconds=3.0, warmup=1.0, grace=2.0),
    )
    results = BenchResults(
        baseline, [run], datetime.now(UTC), "(smoke test)", "tiny", machine_description()
    )
    section = render_section(results)

    assert run.produced_count > 0
    assert 0 < run.stored_total <= run.produced_count
    assert run.stored_final_total <= sum(run.produced_total.values())
    for label in ("sequential", "2 concurrent requests"):
        assert _table_value(section, label) > 0  # batches; points/s follow in the row
    assert all(result.points_per_s > 0 for result in baseline)
    for label in (
        "offered samples/s",
        "**produced samples/s** (ledger)",
        "**stored samples/s** (rows in window)",
        "**stored / produced**",
        "**stored / raw sequential /write**",
    ):
        assert _table_value(section, label) > 0, label
    assert "### Reading" in section
