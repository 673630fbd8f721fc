"""Against node-opcua (an implementation we did not write) enforcing small OperationLimits,
and honouring per-signal deadbands: what the register asks of the server is what it does."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.sources.opcua.source import OpcUaSource
from harness.servers import free_port
from tests.edge.opcua.helpers import NodeOpcUaServer, edge_source, interop_register, write_files
from tests.edge.source_kit import RecordingSink, eventually

pytestmark = pytest.mark.integration

PRESSES = 4
"""4 machines × 4 signals = 16 nodes, more than three requests of 5 allow."""
SIGNALS = ("state", "force", "count", "level")


@contextlib.asynccontextmanager
async def node_opcua(**env: str) -> AsyncIterator[NodeOpcUaServer]:
    server = NodeOpcUaServer(free_port(), **env)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


async def run_until(source: OpcUaSource, sink: RecordingSink, check: object) -> None:
    task = asyncio.create_task(source.run(sink))
    try:
        assert callable(check)
        await eventually(check, timeout=30, what="every node's samples")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_every_node_is_read_from_a_server_enforcing_small_operation_limits(
    tmp_path: Path, mode: str
) -> None:
    register, _ = write_files(
        tmp_path,
        interop_register(PRESSES, signals=SIGNALS, source={"mode": mode, "poll_interval": "200ms"}),
    )
    expected = {(f"press{p}", s) for p in range(1, PRESSES + 1) for s in SIGNALS}
    async with node_opcua(
        INTEROP_PRESSES=str(PRESSES),
        INTEROP_MAX_NODES_PER_READ="5",
        INTEROP_MAX_ITEMS_PER_CALL="5",
        INTEROP_TICK_MS="100",
    ) as server:
        # Our own limits are far above the server's: only reading its limits keeps us under.
        source = edge_source(register, server.url, monitored_items_per_call=500, nodes_per_read=500)
        sink = RecordingSink()
        await run_until(
            source,
            sink,
            lambda: (
                {(s.process, s.signal) for s in sink.samples} >= expected
                and len(sink.samples) >= 3 * len(expected)
            ),
        )
    stats = source.stats
    assert stats.server_max_nodes_per_read == 5
    assert stats.server_max_monitored_items_per_call == 5
    assert stats.nodes_ok == len(expected) and stats.nodes_failed == 0
    assert not sink.rejections
    # Up once, and down only when the test stopped the source.
    assert [(e.up, e.detail) for e in sink.events][1:] == [(False, "stopped")]
    assert sink.events[0].up
    assert all(s.status == 0 for s in sink.samples)


async def test_absolute_and_percent_deadbands_are_honoured_by_the_server(tmp_path: Path) -> None:
    # Count and Level advance by 1 every 10 ms, sampled every 100 ms (+10 per sample).
    # Press 1 asks for deadbands of 25 (absolute) and 2.5 % of Level's 0..1000 range (25);
    # press 2 reads the same values without deadband.
    register, _ = write_files(
        tmp_path,
        interop_register(
            2,
            signals=("count", "level"),
            extras={
                (1, "count"): {"deadband": {"type": "absolute", "value": 25}},
                (1, "level"): {"deadband": {"type": "percent", "value": 2.5}, "queue_size": 1},
            },
        ),
    )
    async with node_opcua(INTEROP_PRESSES="2", INTEROP_TICK_MS="10") as server:
        source = edge_source(register, server.url)
        sink = RecordingSink()

        def values(process: str, signal: str) -> list[float]:
            return [
                float(s.value)
                for s in sink.samples
                if (s.process, s.signal) == (process, signal) and isinstance(s.value, int | float)
            ]

        await run_until(
            source,
            sink,
            lambda: all(len(values("press1", sig)) >= 8 for sig in ("count", "level")),
        )

    def steps(series: list[float]) -> list[float]:
        # Level wraps at 1000: a step down is the wrap, not a change to judge.
        return [b - a for a, b in itertools.pairwise(series) if b > a]

    for signal in ("count", "level"):
        banded = steps(values("press1", signal))
        plain = steps(values("press2", signal))
        assert banded and min(banded) > 25, (signal, banded)
        # Without the deadband the same values arrive in small steps: the filter did it.
        assert plain and min(plain) < 25, (signal, plain)
        assert len(values("press2", signal)) > 2 * len(values("press1", signal))
    assert not sink.rejections
