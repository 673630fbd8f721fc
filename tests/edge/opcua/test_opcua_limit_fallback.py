"""A server that enforces operation limits it does not publish: the edge halves its requests
on BadTooManyOperations, keeps the size that worked for the connection, and reads every node."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from edge.sources.opcua.limits import RequestSize
from harness.servers import free_port
from tests import registers
from tests.edge.opcua.helpers import (
    INTEROP_SIGNALS,
    INTEROP_URI,
    NodeOpcUaServer,
    edge_source,
    interop_document,
    write_files,
)
from tests.edge.source_kit import RecordingSink, eventually


def covers(sink: RecordingSink, start: int, expected: set[tuple[str, str]]) -> bool:
    return {(s.process, s.signal) for s in sink.samples[start:]} >= expected


PRESSES = 4
SIGNALS = ("state", "force", "count", "level")
"""16 nodes; the server takes 5 per Read or CreateMonitoredItems, 3 per translation."""


class Server:
    """Pure stand-in for the service call only (no protocol): answers like a server
    enforcing ``limit`` operations per request."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sizes: list[int] = []

    async def call(self, chunk: Sequence[int]) -> list[int]:
        self.sizes.append(len(chunk))
        if len(chunk) > self.limit:
            raise UaStatusCodeError(StatusCodes.BadTooManyOperations)  # type: ignore[no-untyped-call]
        return [item * 10 for item in chunk]


async def test_refused_requests_are_halved_and_the_size_is_remembered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record: dict[str, int] = {}
    size = RequestSize("Read", 100, "plc", record)
    server = Server(limit=30)
    with caplog.at_level(logging.WARNING, "edge.sources.opcua.limits"):
        assert await size.run(list(range(70)), server.call) == [i * 10 for i in range(70)]
        assert server.sizes == [70, 35, 17, 17, 17, 17, 2]
        assert size.learned == 17 and record == {"Read": 17}
        # Remembered: the next run starts at the learned size and logs nothing new.
        server.sizes.clear()
        await size.run(list(range(20)), server.call, published=50)
        assert server.sizes == [17, 3]
    (warning,) = caplog.records
    assert "refused 70 operations per Read" in warning.getMessage()
    assert "17 per request work" in warning.getMessage()


async def test_other_errors_and_a_refused_single_operation_are_not_about_size() -> None:
    async def broken(chunk: Sequence[int]) -> list[int]:
        raise UaStatusCodeError(StatusCodes.BadSessionIdInvalid)  # type: ignore[no-untyped-call]

    with pytest.raises(UaStatusCodeError):
        await RequestSize("Read", 10, "plc").run([1, 2, 3], broken)
    with pytest.raises(UaStatusCodeError):
        await RequestSize("Read", 10, "plc").run([1, 2], Server(limit=0).call)


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_every_node_is_read_from_a_server_enforcing_limits_it_does_not_publish(
    tmp_path: Path, mode: str
) -> None:
    doc = interop_document(
        PRESSES, signals=SIGNALS, source={"mode": mode, "poll_interval": "200ms"}
    )
    # Press 1's signals by browse path: TranslateBrowsePathsToNodeIds is limited too.
    press1 = doc["plants"][0]["lines"][0]["processes"][0]
    for signal in press1["signals"]:
        del signal["node"]
        signal["browse_path"] = f"/Objects/{{{INTEROP_URI}}}Press1/{INTEROP_SIGNALS[signal['id']]}"
    register, _ = write_files(tmp_path, registers.to_yaml(doc))
    expected = {(f"press{p}", s) for p in range(1, PRESSES + 1) for s in SIGNALS}
    server = NodeOpcUaServer(
        free_port(),
        INTEROP_PRESSES=str(PRESSES),
        INTEROP_MAX_NODES_PER_READ="5",
        INTEROP_MAX_ITEMS_PER_CALL="5",
        INTEROP_MAX_NODES_PER_TRANSLATE="3",
        INTEROP_UNPUBLISHED_LIMITS="1",
        INTEROP_TICK_MS="100",
    )
    await server.start()
    source = edge_source(register, server.url, monitored_items_per_call=500, nodes_per_read=500)
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        for _ in range(2):  # what was learned is kept through a server restart
            start = len(sink.samples)
            await eventually(
                functools.partial(covers, sink, start, expected),
                timeout=30,
                what="every node's samples",
            )
            if start == 0:
                await server.kill()
                await eventually(lambda: not sink.events[-1].up, what="source down")
                await server.start()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.kill()
    stats = source.stats
    # Nothing published; learned: 500 → 250 → … → 3 per Read/CreateMonitoredItems (≤ 5)
    # and 4 → 2 per translation (≤ 3).
    assert stats.server_max_nodes_per_read == 0
    assert stats.server_max_monitored_items_per_call == 0
    service = "Read" if mode == "poll" else "CreateMonitoredItems"
    assert 1 <= stats.learned_limits[service] <= 5
    assert 1 <= stats.learned_limits["TranslateBrowsePathsToNodeIds"] <= 3
    assert stats.nodes_ok == len(expected) and stats.nodes_failed == 0
    assert not sink.rejections
