"""The edge agent against an OPC UA server we did not write (node-opcua), into InfluxDB."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.storage.reader import InfluxQLReader, SignalColumns
from collector.storage.settings import InfluxSettings
from harness.plant import PlantStack
from harness.servers import InfluxServer, MosquittoServer
from tests import registers
from tests.interop.node_server import node_opcua_server as running_server

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent

NODE = "nsu=urn:plantkpi:interop;s=Press1.{}"
REGISTER = registers.to_yaml(
    registers.document(
        [
            registers.plant(
                "p1",
                [registers.opcua_source("press-plc", publishing_interval="200ms")],
                [
                    registers.line(
                        "l1",
                        [
                            registers.process(
                                "press1",
                                [
                                    registers.sig(
                                        "state",
                                        "state",
                                        "press-plc",
                                        "on_change",
                                        node=NODE.format("State"),
                                    ),
                                    registers.sig(
                                        "force",
                                        source="press-plc",
                                        interval="500ms",
                                        node=NODE.format("Force"),
                                    ),
                                    registers.sig(
                                        "count",
                                        source="press-plc",
                                        interval="500ms",
                                        node=NODE.format("Count"),
                                    ),
                                ],
                                name="Press",
                            )
                        ],
                    )
                ],
            )
        ],
        enterprise="interop-co",
        region="Test",
        version="interop-1",
        above_designated_size=False,
    )
)


@pytest.fixture
def node_opcua_server() -> Iterator[str]:
    with running_server() as url:
        yield url


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
