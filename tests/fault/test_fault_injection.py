"""kill -9 of the collector, the edge agent, the central mosquitto and influxd during a steady
stream; afterwards InfluxDB holds exactly what the simulators produced.

The default run is one short seeded stream with one fault of each kind; the soak runs
(``bash scripts/test.sh -m soak``) take longer streams and more faults over several seeds.
Each run prints its figures and appends them to ``$PLANTKPI_FAULT_REPORT`` (JSON lines),
from which docs/reliability.md is written. Method and limits: docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fault.rig import FaultRig, RunConfig, RunReport, record

DEFAULT_SEED = 20261128
SOAK_SEEDS = (1, 2, 3, 4, 5, 6)


async def run_once(tmp_path: Path, config: RunConfig) -> RunReport:
    rig = FaultRig(tmp_path / f"seed-{config.seed}", config)
    async with rig.running():
        report = await rig.run()
    print(report.summary())
    record(report)
    if not report.drained or report.missing or report.duplicated or report.unexpected:
        print(rig.logs())
    return report


def assert_exact(report: RunReport, n_faults: int) -> None:
    summary = report.summary()
    # The stream really ran and every fault really happened.
    assert report.produced > 1000, summary
    assert len(report.faults) == n_faults, summary
    assert report.drained, f"the pipeline did not drain\n{summary}"
    assert report.missing == 0, summary
    assert report.duplicated == 0, summary
    assert report.unexpected == 0, summary
    assert report.mismatched == 0, summary
    # What the collector says it wrote covers what is stored (the rest is redelivery).
    # Exact only when no collector was killed: its counters are read just before the
    # kill, and a batch written and acknowledged in between is stored but never counted
    # (seen on a loaded machine: 47 samples, one batch).
    if all(f["target"] != "collector" for f in report.faults):
        assert report.collector_samples_written >= report.stored, summary


@pytest.mark.integration
async def test_kill_9_of_each_component_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    report = await run_once(tmp_path, RunConfig(seed=DEFAULT_SEED, stream_s=36.0, n_faults=4))
    assert {f["target"] for f in report.faults} == {
        "collector",
        "edge",
        "central_mosquitto",
        "influxd",
    }
    assert_exact(report, 4)


@pytest.mark.soak
@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", SOAK_SEEDS)
async def test_soak_kill_9_rounds(tmp_path: Path, seed: int) -> None:
    report = await run_once(tmp_path, RunConfig(seed=seed, stream_s=120.0, n_faults=12))
    assert_exact(report, 12)
