"""Reconnect regressions against real servers: a restarted server (asyncua simulator,
node-opcua) and a hung one (SIGSTOP) under a live OpcUaSource, never restarted itself.

The failure these guard against, reported against Telegraf (influxdata/telegraf#14066) and the
ThingsBoard IoT Gateway (thingsboard/thingsboard-gateway#1641):
after a server restart the collector stays "connected" and receives nothing, or every node
answers BadNodeIdUnknown because namespace indexes were cached from the first session.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asyncua.client.client import Client

from edge.sources.opcua.source import OpcUaSource
from harness.servers import free_port
from simulators import Simulator, load_scenario
from simulators.ledger import Ledger
from tests.edge.opcua.helpers import (
    EXTRA_URI,
    INTEROP_URI,
    SIM_URI,
    NodeOpcUaServer,
    SimulatorProcess,
    edge_source,
    interop_register,
    register_yaml,
    write_files,
)
from tests.edge.source_kit import RecordingSink, eventually

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running(source: OpcUaSource, sink: RecordingSink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(source.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def namespace_index(endpoint: str, uri: str) -> int:
    async with Client(endpoint, timeout=2) as client:
        return (await client.get_namespace_array()).index(uri)


async def test_asyncua_server_restart_with_shifted_namespace_resumes_without_restarting_source(
    tmp_path: Path,
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    first_register, first_scenario = write_files(tmp_path / "first", register_yaml(3))
    # The restarted server also serves a namespace that sorts first: SIM_URI's index moves.
    _, second_scenario = write_files(tmp_path / "second", register_yaml(3, extra=EXTRA_URI))
    source = edge_source(first_register, endpoint)
    sink = RecordingSink()
    first = Simulator(load_scenario(first_scenario), endpoints={"s1": endpoint}, tick=0.05)
    second = Simulator(
        load_scenario(second_scenario),
        endpoints={"s1": endpoint},
        tick=0.05,
        ledger=Ledger(keep=True),
    )
    async with running(source, sink):
        async with first:
            index_before = await namespace_index(endpoint, SIM_URI)
            await eventually(lambda: len(sink.ups()) == 1, what="source up")
            await eventually(lambda: len(sink.after(sink.ups()[0])) >= 20, what="first samples")
        await eventually(lambda: len(sink.downs()) == 1, what="source down after the stop")
        down = sink.downs()[0]
        async with second:
            index_after = await namespace_index(endpoint, SIM_URI)
            await eventually(lambda: len(sink.ups()) == 2, timeout=30, what="source up again")
            up_again = sink.ups()[1]
            await eventually(
                lambda: (
                    {(s.process, s.signal) for s in sink.after(up_again)}
                    >= {(f"m{i}", sig) for i in range(3) for sig in ("state", "speed")}
                ),
                what="every signal after the restart",
            )
            await eventually(lambda: len(sink.after(up_again)) >= 30, what="samples resume")
            served = second.ledger.records if second.ledger else []

    assert index_after == index_before + 1
    assert [e.up for e in sink.transitions()[:3]] == [True, False, True]
    assert down.samples_before <= up_again.samples_before
    # No sample between the down and the up: the gap is visible as a gap.
    assert up_again.samples_before == down.samples_before
    # Every sample after the restart is one the restarted server wrote to that very node:
    # the nsu= ids were re-resolved to the new index (a cached index would read other nodes
    # or get BadNodeIdUnknown).
    written = {(r.process, r.signal, r.ts, r.value, r.status) for r in served}
    after = [(s.process, s.signal, s.ts, s.value, s.status) for s in sink.after(up_again)]
    assert after and set(after) <= written
    assert not any(s.process == "extra" for s in sink.samples)
    assert source.stats.reconnects == 1 and source.stats.nodes_ok == 6
    assert not sink.rejections and not source.stats.failed_nodes


async def test_node_opcua_server_killed_and_restarted_on_the_same_port(tmp_path: Path) -> None:
    server = NodeOpcUaServer(free_port())
    register, _ = write_files(tmp_path, interop_register())
    source = edge_source(register, server.url)
    sink = RecordingSink()
    try:
        await server.start()
        async with running(source, sink):
            index_before = await namespace_index(server.url, INTEROP_URI)
            await eventually(lambda: len(sink.ups()) == 1, what="source up")
            await eventually(lambda: len(sink.samples) >= 5, what="first samples")
            await server.kill()
            await eventually(lambda: len(sink.downs()) == 1, what="source down after the kill")
            down = sink.downs()[0]
            await server.start(INTEROP_EXTRA_NAMESPACE="urn:aaa:first")
            index_after = await namespace_index(server.url, INTEROP_URI)
            await eventually(lambda: len(sink.ups()) == 2, timeout=30, what="source up again")
            up_again = sink.ups()[1]
            await eventually(
                lambda: {s.signal for s in sink.after(up_again)} >= {"state", "force", "count"},
                what="every signal after the restart",
            )
    finally:
        await server.kill()

    assert index_after == index_before + 1
    assert [e.up for e in sink.transitions()[:3]] == [True, False, True]
    assert up_again.samples_before == down.samples_before
    after = sink.after(up_again)
    # The restarted server counts from 0 again: the counter read after the restart is the
    # new server's, read from the right node under its new namespace index.
    counts = [s.value for s in after if s.signal == "count"]
    assert counts and all(isinstance(c, int) for c in counts)
    assert all(s.status == 0 for s in after)
    assert {s.value for s in after if s.signal == "state"} <= {"RUNNING", "IDLE"}
    assert not sink.rejections and source.stats.reconnects == 1


async def test_hung_server_sigstop_past_the_watchdog_is_noticed_and_recovered(
    tmp_path: Path,
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    register, scenario = write_files(tmp_path, register_yaml(3))
    simulator = SimulatorProcess(scenario, endpoint)
    source = edge_source(register, endpoint, opcua_watchdog=1.0, opcua_timeout=1.0)
    sink = RecordingSink()
    try:
        await simulator.start()
        async with running(source, sink):
            await eventually(lambda: len(sink.ups()) == 1, what="source up")
            await eventually(lambda: len(sink.samples) >= 20, what="first samples")
            simulator.signal(signal.SIGSTOP)
            # Socket open, no answers: only the watchdog / keep-alive can tell.
            await eventually(lambda: len(sink.downs()) == 1, timeout=20, what="down while hung")
            hung = len(sink.samples)
            await asyncio.sleep(2.0)  # reconnect attempts against the hung server time out
            assert len(sink.ups()) == 1
            simulator.signal(signal.SIGCONT)
            await eventually(lambda: len(sink.ups()) == 2, timeout=30, what="up after SIGCONT")
            up_again = sink.ups()[1]
            await eventually(lambda: len(sink.after(up_again)) >= 20, what="samples resume")
    finally:
        await simulator.stop()
    assert [e.up for e in sink.transitions()[:3]] == [True, False, True]
    # Nothing arrived while the server was hung: the gap is a gap, not stale values.
    assert up_again.samples_before == hung == sink.downs()[0].samples_before
    assert "connection lost" in sink.downs()[0].detail
    assert source.stats.reconnects == 1 and not sink.rejections
