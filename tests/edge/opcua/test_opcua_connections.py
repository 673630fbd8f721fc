"""A large node set spread over several connections to one (real, asyncua) server: every
node is read, each connection has its own health, and the source's liveness is one
up/down for the register source however many connections go down together."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from pathlib import Path

import pytest

from edge.sources.opcua.source import NodeBinding, OpcUaSource
from harness.servers import free_port
from simulators import Simulator, load_scenario
from tests.edge.opcua.helpers import edge_source, register_yaml, write_files
from tests.edge.source_kit import RecordingSink, eventually

pytestmark = pytest.mark.integration


async def test_nodes_spread_over_connections_each_with_health_and_one_liveness(
    tmp_path: Path,
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    # 7 machines × 2 signals = 14 nodes at most 5 per connection: 3 connections (5, 5, 4).
    register, scenario = write_files(
        tmp_path, register_yaml(7, source={"max_nodes_per_connection": 5})
    )
    source = edge_source(register, endpoint)
    assert [c.stats.nodes for c in source.connections] == [5, 5, 4]
    sink = RecordingSink()
    expected = {(f"m{i}", s) for i in range(7) for s in ("state", "speed")}
    task = asyncio.create_task(source.run(sink))
    try:
        for _ in range(2):  # the server restarts once under the live source
            start = len(sink.samples)
            async with Simulator(load_scenario(scenario), endpoints={"s1": endpoint}, tick=0.05):
                await eventually(lambda: bool(sink.events) and sink.events[-1].up, what="source up")
                await eventually(
                    functools.partial(covers, sink, start, expected),
                    what="every node on every connection",
                )
            await eventually(lambda: not sink.events[-1].up, what="source down")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # One liveness per source, on changes only: three connections lost together are one down.
    assert [e.up for e in sink.transitions()] == [True, False, True, False]
    assert "3 connections, 14 nodes" in sink.ups()[0].detail
    assert "connection " in sink.downs()[0].detail
    health = source.health()
    connections = health["connections"]
    assert isinstance(connections, list) and len(connections) == 3
    assert [c["name"] for c in connections] == ["s1#1", "s1#2", "s1#3"]
    assert all(c["connects"] == 2 and c["reconnects"] == 1 for c in connections)
    assert sum(c["nodes_ok"] for c in connections) == 14 == health["nodes_ok"]
    assert all(c["notifications"] > 0 for c in connections)
    assert not sink.rejections


def covers(sink: RecordingSink, start: int, expected: set[tuple[str, str]]) -> bool:
    return {(s.process, s.signal) for s in sink.samples[start:]} >= expected


async def test_a_connection_whose_nodes_all_fail_does_not_keep_the_source_down(
    tmp_path: Path,
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    register, scenario = write_files(tmp_path, register_yaml(2))
    good = edge_source(register, endpoint).bindings
    missing = [NodeBinding(f"nsu=urn:not:served;s=x{i}", "m0", f"ghost{i}", 0.1) for i in range(2)]
    config = edge_source(register, endpoint).config
    # Two nodes per connection: the two unknown ones share the last connection.
    source = OpcUaSource(
        config,
        [*good, *missing],
        endpoint=endpoint,
        timeout=1.0,
        watchdog=1.0,
        reconnect_max_delay=0.5,
        max_nodes_per_connection=2,
    )
    assert len(source.connections) == 3
    sink = RecordingSink()
    async with Simulator(load_scenario(scenario), endpoints={"s1": endpoint}, tick=0.05):
        task = asyncio.create_task(source.run(sink))
        try:
            await eventually(lambda: bool(sink.ups()), what="source up")
            await eventually(
                functools.partial(covers, sink, 0, {(f"m{i}", "speed") for i in range(2)}),
                what="the good nodes' samples",
            )
            await eventually(
                lambda: source.connections[2].stats.state == "no nodes", what="idle connection"
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert {culprit for _, culprit, _ in sink.rejections} == {b.node for b in missing}
    assert all("urn:not:served" in reason for _, _, reason in sink.rejections)
    assert source.stats.nodes_failed == 2 and source.stats.nodes_ok == 4
