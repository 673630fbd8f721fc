"""Backfill from the server's history after a gap, against a real asyncua server that
historizes a counter written every 20 ms, and against node-opcua's historical data nodes:
the gap while the source was stopped arrives as backfilled samples, every value exactly
once; a server without history leaves the gap a gap and says so once; the maximum gap,
small history requests (continuation points) and the server's MaxNodesPerHistoryReadData
bound what is read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.server.server import Server

from common.timestamps import ns_to_datetime
from common.wire import Sample
from edge.buffer.marks import SignalMarks
from edge.sources.opcua.source import OpcUaSource
from harness.servers import free_port
from tests import registers
from tests.edge.opcua.helpers import NodeOpcUaServer, edge_source, interop_register
from tests.edge.source_kit import RecordingSink, eventually

pytestmark = pytest.mark.integration

URI = "urn:test:backfill"
TICK = 0.02


class StoringSink(RecordingSink):
    """Moves the marks as the buffer does once a sample is on disk."""

    def __init__(self, marks: SignalMarks) -> None:
        super().__init__()
        self.marks = marks

    def sample(self, sample: Sample) -> None:
        super().sample(sample)
        self.marks.update([sample])


@contextlib.asynccontextmanager
async def counter_server(
    endpoint: str, *, history: bool, skew_s: float = 0.0
) -> AsyncIterator[list[int]]:
    """A server whose ``count`` goes up by one every TICK, with its source time; yields the
    values written so far."""
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    index = await server.register_namespace(URI)
    count = await server.nodes.objects.add_variable(
        ua.NodeId(ua.String("count"), ua.Int16(index)),
        ua.QualifiedName("count", index),
        0,
        ua.VariantType.Int64,
    )
    if history:
        await server.historize_node_data_change(count, period=timedelta(hours=1))
    written: list[int] = []

    async def write() -> None:
        while True:
            value = len(written) + 1
            await server.write_attribute_value(
                count.nodeid,
                ua.DataValue(
                    ua.Variant(value, ua.VariantType.Int64),
                    SourceTimestamp=ns_to_datetime(time.time_ns() + int(skew_s * 1e9)),  # type: ignore[arg-type]
                ),
            )
            written.append(value)
            await asyncio.sleep(TICK)

    async with server:
        writer = asyncio.create_task(write())
        try:
            yield written
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer


def source(tmp_path: Path, endpoint: str, marks: SignalMarks, **backfill: Any) -> OpcUaSource:
    signal = registers.sig(
        "count", source="s1", interval="20ms", node=f"nsu={URI};s=count", update="on_change"
    )
    document = registers.document(
        [
            registers.plant(
                "p1",
                [registers.opcua_source("s1", endpoint, publishing_interval="50ms", **backfill)],
                [
                    registers.line(
                        "l1",
                        [
                            registers.process(
                                "press", [registers.sig("state", "state", None), signal]
                            )
                        ],
                    )
                ],
            )
        ]
    )
    return edge_source(registers.write(tmp_path, document), endpoint, marks)


async def run_for(built: OpcUaSource, sink: StoringSink, until: Any, what: str) -> None:
    task = asyncio.create_task(built.run(sink))
    try:
        await eventually(until, what=what)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def counts(sink: StoringSink) -> list[tuple[int, bool]]:
    return [(int(s.value), s.backfill) for s in sink.samples if s.signal == "count"]  # type: ignore[arg-type]


@pytest.mark.parametrize("skew_s", [0.0, 300.0, -300.0])
async def test_the_gap_while_stopped_is_backfilled_every_value_once(
    tmp_path: Path, skew_s: float
) -> None:
    """Also with the server's clock five minutes ahead of the edge's or behind it: gaps
    are found and bounded in the server's time, not the edge's."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    marks = SignalMarks.load(tmp_path)
    sink = StoringSink(marks)
    async with counter_server(endpoint, history=True, skew_s=skew_s) as written:
        built = source(tmp_path, endpoint, marks)
        await run_for(built, sink, lambda: len(counts(sink)) >= 10, "live values")
        stopped_at = len(written)
        await asyncio.sleep(1.0)  # 50 values written while nobody is subscribed
        resumed_at = len(written)
        again = source(tmp_path, endpoint, marks)
        # Until its backfill is done, the source may still deliver data from its last
        # stored sample on: the uplink's watermark waits there.
        assert again.pending_since() == marks.get(("press", "count"))
        await run_for(
            again,
            sink,
            lambda: (
                any(backfilled for _, backfilled in counts(sink))
                and counts(sink)[-1][0] > resumed_at + 10
                and again.pending_since() is None
            ),
            "backfilled and live values after the gap",
        )
    values = sorted(value for value, _ in counts(sink))
    assert values == list(range(values[0], values[-1] + 1)), "a value missing or repeated"
    backfilled = [value for value, flag in counts(sink) if flag]
    # What was written while stopped arrived by backfill (the last stored value excepted).
    assert set(range(stopped_at + 1, resumed_at)) <= set(backfilled)
    # It starts right after the last value stored live (the mark), whatever was in flight.
    live_before = [value for value, flag in counts(sink) if not flag and value < min(backfilled)]
    assert min(backfilled) == max(live_before) + 1


async def test_small_history_requests_follow_continuation_points(tmp_path: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    marks = SignalMarks.load(tmp_path)
    sink = StoringSink(marks)
    async with counter_server(endpoint, history=True) as written:
        await run_for(
            source(tmp_path, endpoint, marks), sink, lambda: len(counts(sink)) >= 5, "live"
        )
        await asyncio.sleep(0.6)
        resumed_at = len(written)
        again = source(tmp_path, endpoint, marks, backfill_values_per_request=3)
        await run_for(
            again,
            sink,
            lambda: counts(sink)[-1][0] > resumed_at + 5 and again.stats.backfill.samples > 0,
            "backfill in requests of three values",
        )
    values = sorted(value for value, _ in counts(sink))
    assert values == list(range(values[0], values[-1] + 1))
    assert again.stats.backfill.samples >= 20  # many more than one request's worth


async def test_only_the_last_max_gap_is_backfilled(tmp_path: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    marks = SignalMarks.load(tmp_path)
    sink = StoringSink(marks)
    async with counter_server(endpoint, history=True) as written:
        await run_for(
            source(tmp_path, endpoint, marks), sink, lambda: len(counts(sink)) >= 5, "live"
        )
        stopped_at = len(written)
        await asyncio.sleep(1.5)
        again = source(tmp_path, endpoint, marks, backfill_max_gap="0.5s")
        await run_for(
            again,
            sink,
            lambda: again.stats.backfill.samples > 0,
            "a backfill of the last half second",
        )
    backfilled = [value for value, flag in counts(sink) if flag]
    # 1.5 s at 20 ms is 75 values; half a second (and the time to reconnect) far fewer.
    assert backfilled and len(backfilled) < 50
    assert min(backfilled) > stopped_at + 20


async def test_a_server_without_history_leaves_the_gap_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    marks = SignalMarks.load(tmp_path)
    sink = StoringSink(marks)
    caplog.set_level(logging.WARNING, logger="edge.sources.opcua.backfill")
    async with counter_server(endpoint, history=False) as written:
        await run_for(
            source(tmp_path, endpoint, marks), sink, lambda: len(counts(sink)) >= 5, "live"
        )
        stopped_at = len(written)
        await asyncio.sleep(0.5)
        resumed_at = len(written)
        again = source(tmp_path, endpoint, marks)
        await run_for(
            again, sink, lambda: counts(sink)[-1][0] > resumed_at + 30, "live after the gap"
        )
    values = {value for value, _ in counts(sink)}
    assert not any(flag for _, flag in counts(sink))
    assert not set(range(stopped_at + 2, resumed_at - 1)) & values  # the gap stays a gap
    assert again.stats.backfill.history_nodes == 0
    assert again.pending_since() is None  # nothing will come from history: no wait
    told = [r for r in caplog.records if "no history" in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in caplog.records]


async def test_node_opcua_history_is_backfilled_under_its_limits(tmp_path: Path) -> None:
    """An OPC UA implementation we did not write: node-opcua's historical data nodes, its
    MaxNodesPerHistoryReadData at 1 (one node per request), pages of 5 values by
    continuation point (node-opcua repeats the same continuation point on every page), and
    a State node without history beside them."""
    server = NodeOpcUaServer(
        free_port(),
        INTEROP_HISTORY="1",
        INTEROP_TICK_MS="50",
        INTEROP_MAX_NODES_PER_HISTORY_READ="1",
    )
    register = tmp_path / "register.yaml"
    register.write_text(interop_register(source={"backfill_values_per_request": 5}))
    marks = SignalMarks.load(tmp_path)
    sink = StoringSink(marks)

    def built() -> OpcUaSource:
        return edge_source(register, server.url, marks)

    def press(signal: str) -> list[tuple[int, bool]]:
        return [(int(s.value), s.backfill) for s in sink.samples if s.signal == signal]  # type: ignore[arg-type]

    await server.start()
    try:
        await run_for(built(), sink, lambda: len(press("count")) >= 10, "live counts")
        await asyncio.sleep(1.0)  # about 20 ticks unseen
        again = built()
        await run_for(
            again,
            sink,
            lambda: again.stats.backfill.samples >= 30 and len(press("count")) > 60,
            "backfilled counts and forces",
        )
    finally:
        await server.kill()
    counts = [value for value, _ in press("count")]
    assert len(counts) == len(set(counts)), "a count reported twice"
    # Live sampling (100 ms) sees every other tick (50 ms); history has every one of them.
    backfilled = sorted(value for value, flag in press("count") if flag)
    assert backfilled == list(range(backfilled[0], backfilled[-1] + 1)), "a history gap"
    assert len(backfilled) >= 15
    before = max(v for v, flag in press("count") if not flag and v < backfilled[0])
    after = min(v for v, flag in press("count") if not flag and v > backfilled[-1])
    assert backfilled[0] - before == 1 and after - backfilled[-1] == 1, (before, after)
    assert sum(s.backfill for s in sink.samples if s.signal == "force") >= 15
    assert again.stats.backfill.history_nodes == 2  # Force and Count; State has none
    assert again.stats.backfill.failures == 0


async def test_a_lost_connection_holds_the_watermark_until_its_backfill_is_done(
    tmp_path: Path,
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    marks = SignalMarks.load(tmp_path)
    sink = StoringSink(marks)
    built = source(tmp_path, endpoint, marks)
    task = asyncio.create_task(built.run(sink))
    try:
        async with counter_server(endpoint, history=True):
            await eventually(lambda: len(counts(sink)) >= 5, what="live values")
            await eventually(lambda: built.pending_since() is None, what="first backfill done")
        await eventually(lambda: built.pending_since() is not None, what="held at the loss")
        # Held from when the last live value came (less one publishing interval, 50 ms),
        # not from when the loss was noticed.
        last_live = max(s.recv for s in sink.samples)
        assert built.pending_since() == last_live - 50_000_000
        async with counter_server(endpoint, history=True):
            await eventually(
                lambda: built.pending_since() is None and len(sink.ups()) >= 2,
                what="released once reconnected and backfilled",
            )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_backfill_waits_while_the_buffer_has_no_room(tmp_path: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    marks = SignalMarks.load(tmp_path)
    sink = StoringSink(marks)
    room = [False]
    async with counter_server(endpoint, history=True):
        await run_for(
            source(tmp_path, endpoint, marks), sink, lambda: len(counts(sink)) >= 5, "live"
        )
        await asyncio.sleep(0.5)
        again = source(tmp_path, endpoint, marks)
        for connection in again.connections:
            connection.backfill.room = lambda: room[0]
        task = asyncio.create_task(again.run(sink))
        try:
            await eventually(
                lambda: again.stats.backfill.gaps == 0 and len(sink.ups()) >= 2, what="up"
            )
            await asyncio.sleep(1.0)  # live data flows; the backfill waits for room
            assert not any(flag for _, flag in counts(sink))
            room[0] = True
            await eventually(lambda: again.pending_since() is None, what="backfill after room")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert any(flag for _, flag in counts(sink))
