"""kill -9 of the collector, the edge agent, the central mosquitto and influxd during a steady
stream; afterwards InfluxDB holds exactly what the simulators produced.

Two plants: MQTT devices (persistent session, QoS 1) and an OPC UA server that historizes
its variables, from which the edge backfills what changed while it was down. For each, the
default run is one short seeded stream with one fault of each kind; the soak runs
(``bash scripts/test.sh -m soak``) take longer streams and more faults over several seeds.
Each run prints its figures and appends them to ``$PLANTKPI_FAULT_REPORT`` (JSON lines),
from which docs/reliability.md is written; ``$PLANTKPI_FAULT_SEED`` runs the default tests
with another seed. Method and limits: docs/reliability.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fault.rig import FaultRig, RunConfig, RunReport, record

SEED = os.environ.get("PLANTKPI_FAULT_SEED")
"""Another seed for the default runs (the figures of docs/reliability.md)."""
DEFAULT_SEED = int(SEED) if SEED else 20261128
SOAK_SEEDS = (1, 2, 3, 4, 5, 6)
OPCUA_DEFAULT_SEED = int(SEED) if SEED else 20261207
OPCUA_DEFAULT_STREAM_S = 30.0
"""Four faults need 26 s at least (schedule.py); 30 s keeps the test well under a minute."""
OPCUA_SOAK_SEEDS = (1, 2, 3, 4, 5, 6)


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
    if report.plant == "opcua" and any(f["target"] == "edge" for f in report.faults):
        # Edge outages were bridged from the server's history, not by chance.
        assert report.backfilled > 0, summary
        assert report.edge_backfill["failures"] == 0, summary
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


@pytest.mark.integration
async def test_opcua_kill_9_of_each_component_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    """The OPC UA plant: the edge's outage is read back from the server's history."""
    report = await run_once(
        tmp_path,
        RunConfig(
            seed=OPCUA_DEFAULT_SEED, stream_s=OPCUA_DEFAULT_STREAM_S, n_faults=4, plant="opcua"
        ),
    )
    assert report.kills == {"collector": 1, "edge": 1, "central_mosquitto": 1, "influxd": 1}
    assert_exact(report, 4)


@pytest.mark.soak
@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", OPCUA_SOAK_SEEDS)
async def test_opcua_soak_kill_9_rounds(tmp_path: Path, seed: int) -> None:
    report = await run_once(
        tmp_path, RunConfig(seed=seed, stream_s=120.0, n_faults=12, plant="opcua")
    )
    assert_exact(report, 12)
