"""The pipeline's writer: one request in flight at a time and in order, the next group's
request built while the previous one is in flight, and a write that fails for good stops
the writer. Pure logic: the writer is a recording stand-in (InfluxDB itself is covered by
tests/collector/storage and tests/collector/ingest/test_delivery.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from collector.ingest.pipeline import IngestPipeline, Pending
from collector.storage.settings import InfluxSettings
from collector.storage.writer import PreparedWrite, WriterStats


class RecordingWriter:
    def __init__(self) -> None:
        self.settings = InfluxSettings()
        self.stats = WriterStats()
        self.events: list[str] = []
        self.release = asyncio.Queue[None]()
        self.fail = False

    async def prepare(self, lines: Sequence[str]) -> PreparedWrite:
        self.events.append(f"prepare {','.join(lines)}")
        return PreparedWrite([list(lines)])

    async def write_prepared(self, prepared: PreparedWrite) -> None:
        name = ",".join(prepared.chunks[0])
        self.events.append(f"start {name}")
        await self.release.get()
        if self.fail:
            raise RuntimeError("a bug in the writer")
        self.events.append(f"end {name}")

    async def write(self, lines: Sequence[str]) -> None:
        await self.write_prepared(await self.prepare(lines))

    async def ensure_database(self) -> bool:
        return True

    async def close(self) -> None:
        pass


def pending(name: str, done: list[str]) -> Pending:
    return Pending([name], name, None, "t", b"", 1, lambda: done.append(name))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_next_request_is_built_while_one_is_in_flight_and_sent_after_it() -> None:
    writer = RecordingWriter()
    pipeline = IngestPipeline(writer, {}, None, max_lines=1, flush_interval=0.0)  # type: ignore[arg-type]
    done: list[str] = []
    task = asyncio.create_task(pipeline.run_writer())
    try:
        for name in ("a", "b", "c"):
            await pipeline.queue.put(pending(name, done), 1)
        await settle()
        # a is in flight; b is built meanwhile and waits; c waits in the queue.
        assert writer.events == ["prepare a", "start a", "prepare b"]
        assert pipeline.busy
        writer.release.put_nowait(None)
        await settle()
        assert writer.events[3:] == ["end a", "start b", "prepare c"]
        assert done == ["a"]
        writer.release.put_nowait(None)
        writer.release.put_nowait(None)
        await settle()
        assert done == ["a", "b", "c"]
        assert writer.events[6:] == ["end b", "start c", "end c"]
        assert not pipeline.busy
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_write_failing_for_good_stops_the_writer_even_with_nothing_queued() -> None:
    writer = RecordingWriter()
    pipeline = IngestPipeline(writer, {}, None, max_lines=1, flush_interval=0.0)  # type: ignore[arg-type]
    task = asyncio.create_task(pipeline.run_writer())
    await pipeline.queue.put(pending("a", []), 1)
    await settle()
    writer.fail = True
    writer.release.put_nowait(None)
    with pytest.raises(RuntimeError, match="a bug in the writer"):
        await task  # bounded by pytest's timeout
