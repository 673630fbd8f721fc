"""The demo plant run once per test session, shared by the end-to-end modules.

``demo_run`` starts the simulators, one edge agent per plant and the collector as real
processes against the session's mosquitto and influxd (through the v2 write proxy), lets
the scenario run, waits until the collector has written everything and evaluated once
more, and yields the running stack (the collector's API stays up until the session ends).

Session-scoped so that ``test_demo_plant.py`` and ``test_dashboard.py`` share one run:
a run costs about a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.storage.settings import InfluxSettings
from harness.plant import PlantStack
from harness.servers import InfluxServer, MosquittoServer, V2ProxyServer
from simulators.ledger import read_ledger

DEMO = Path(__file__).parents[2] / "examples" / "demo"
RUN_S = 45


def kpi_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The `kpi` command as a user runs it (a wide terminal: no column is cut)."""
    return subprocess.run(
        [sys.executable, "-c", "from collector.kpi_cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "160"},
    )


@pytest.fixture(scope="session")
def demo_run(
    mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    v2_proxy: V2ProxyServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("demo")
    database = f"e2e_{int(time.time())}"
    influx_env = {
        "COLLECTOR_INFLUX__URL": v2_proxy.url,
        "COLLECTOR_INFLUX__MODE": "v2",
        "COLLECTOR_INFLUX__DATABASE": database,
        "COLLECTOR_INFLUX__TOKEN": "unused-with-auth-off",
        "COLLECTOR_INFLUX__ORG": "plant",
    }
    influxdb.create_database(database)
    stack = PlantStack(
        DEMO / "register.yaml", DEMO / "scenario.yaml", mosquitto.url, influx_env, workdir
    )
    ledger = workdir / "ledger.jsonl"
    try:
        stack.start_collector(window="20s", period="2s", lag="3s")
        stack.wait_for_api()
        sim_start = time.time_ns()
        simulators = stack.start_simulators(duration=f"{RUN_S}s", ledger=ledger)
        stack.wait_for_simulators()
        stack.start_edges()
        simulators.proc.wait(RUN_S + 60)
        stack.check_alive()
        stats = _wait_for_drain(stack.api_url)
        # A live evaluation made after the drain, to recompute from storage below.
        live = _wait_for_live_kpi(stack.api_url, after_ns=time.time_ns())
        # The `kpi` commands while the live window still covers the run (the dashboard
        # tests may come first: later, the window lies past the run).
        cli = {
            "table": kpi_cli("--api", stack.api_url),
            "json": kpi_cli("--api", stack.api_url, "--json"),
            "pressfit": kpi_cli("process", "a2-pressfit", "--api", stack.api_url),
            "testing": kpi_cli("process", "a2-testing", "--api", stack.api_url),
        }
        yield {
            "cli": cli,
            "stack": stack,
            "ledger": read_ledger(ledger),
            "sim_start": sim_start,
            "stats": stats,
            "live": live,
            "influx": InfluxSettings(url=influxdb.url, database=database),
        }
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop_all()


def _wait_for_drain(api: str, quiet_s: float = 4.0, timeout: float = 60.0) -> dict[str, Any]:
    """Until the collector has written nothing new for ``quiet_s`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        stats = httpx.get(f"{api}/api/v1/stats", timeout=5).json()
        if stats["samples_written"] != last:
            last, since = stats["samples_written"], time.monotonic()
        elif time.monotonic() - since > quiet_s and stats["queue_depth"] == 0:
            return dict(stats)
        time.sleep(0.5)
    raise AssertionError(f"collector did not drain: {stats}")


def _wait_for_live_kpi(api: str, after_ns: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{api}/api/v1/kpi", timeout=5)
        if response.status_code == 200 and response.json()["computed_at_ns"] > after_ns:
            return dict(response.json())
        time.sleep(0.5)
    raise AssertionError("no live KPI evaluation after the run")
