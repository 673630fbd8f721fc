"""The edge agent against an OPC UA server we did not write (node-opcua), into InfluxDB."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.storage.reader import InfluxQLReader, SignalColumns
from collector.storage.settings import InfluxSettings
from tests.support.plant import PlantStack
from tests.support.servers import InfluxServer, MosquittoServer, free_port

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent

REGISTER = """\
version: interop-1
enterprise: {id: interop-co, region: Test, above_designated_size: false}
plants:
  - id: p1
    sources:
      - {id: press-plc, kind: opcua, endpoint: "opc.tcp://127.0.0.1:4840", publishing_interval: 200ms,
         security: {policy: None, mode: None}}
    lines:
      - id: l1
        processes:
          - id: press1
            name: Press
            key: true
            industry: discrete
            signals:
              - {id: state, role: state, source: press-plc, node: "nsu=urn:plantkpi:interop;s=Press1.State", update: on_change}
              - {id: force, role: parameter, source: press-plc, node: "nsu=urn:plantkpi:interop;s=Press1.Force", interval: 500ms}
              - {id: count, role: parameter, source: press-plc, node: "nsu=urn:plantkpi:interop;s=Press1.Count", interval: 500ms}
"""


@pytest.fixture
def node_opcua_server() -> Iterator[str]:
    if not (HERE / "node_modules" / "node-opcua").is_dir():
        pytest.fail(
            "node-opcua is not installed: run bash scripts/bootstrap.sh (npm install in tests/interop)"
        )
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(HERE / "server.js"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("READY"):
                break
            if not line and proc.poll() is not None:
                pytest.fail(f"node-opcua server exited with {proc.returncode}")
        yield f"opc.tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_edge_reads_node_opcua_and_samples_reach_influxdb(
    node_opcua_server: str,
    mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    influx_db: str,
    tmp_path: Path,
) -> None:
    register = tmp_path / "register.yaml"
    register.write_text(REGISTER)
    env = {"COLLECTOR_INFLUX__URL": influxdb.url, "COLLECTOR_INFLUX__DATABASE": influx_db}
    stack = PlantStack(register, register, mosquitto.url, env, tmp_path / "logs")
    stack.endpoints["press-plc"] = node_opcua_server
    reader = InfluxQLReader(InfluxSettings(url=influxdb.url, database=influx_db))
    try:
        stack.start_collector(window="10s", period="2s", lag="1s")
        stack.wait_for_api()
        stack.start_edges()
        deadline = time.monotonic() + 60
        stored: dict[tuple[str, str], SignalColumns] = {}
        while time.monotonic() < deadline:
            stack.check_alive()
            stored = dict(await reader.samples(0, time.time_ns() + 10**9, 0, "interop-co"))
            if (
                all(len(stored.get(("press1", s), [])) >= 5 for s in ("force", "count"))
                and ("press1", "state") in stored
            ):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"samples from node-opcua did not arrive: {stored}\n{stack.logs()}")
    finally:
        stack.stop_all()
        await reader.close()

    force = stored[("press1", "force")]
    count = stored[("press1", "count")]
    state = stored[("press1", "state")]
    assert set(force.status) == {0} and set(count.status) == {0}
    assert len(set(force.value)) > 1, "Force changes on the server; more than one value expected"
    assert all(isinstance(v, float) for v in count.value)
    counts = [v for v in count.value if isinstance(v, float)]
    assert counts == sorted(counts)  # a counter
    assert set(state.value) <= {"RUNNING", "IDLE"}
    # Source timestamps are the server's, close to now (not zero, not the receive time).
    assert all(abs(ts - time.time_ns()) < 300 * 10**9 for ts in force.ts)
