"""What every source test uses: a sink that records what a source reports, a source run
into one, and a bounded wait. The sources under test talk to real servers, brokers and
devices; only the sink, the far end of the source, records."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass

from common.wire import Sample
from edge.sources import SignalKey, Source


@dataclass
class Event:
    source: str
    up: bool
    detail: str
    samples_before: int
    """How many samples had arrived when this event was reported."""


class RecordingSink:
    """Records what a source reports; the source itself talks to a real server."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.events: list[Event] = []
        self.rejections: list[tuple[str, str, str]] = []

    def sample(self, sample: Sample) -> None:
        # A source that builds samples as bare tuples for speed must build whole ones:
        # the uplink's columns need every field.
        assert len(sample) == len(Sample._fields), f"a sample of {len(sample)} fields: {sample}"
        self.samples.append(sample)

    def liveness(self, source: str, up: bool, detail: str = "") -> None:
        self.events.append(Event(source, up, detail, len(self.samples)))

    def after_durable(self, callback: Callable[[], None]) -> None:
        callback()  # nothing to persist here: the sample is already recorded

    def rejected(
        self, source: str, culprit: str, reason: str, signals: Collection[SignalKey] = ()
    ) -> None:
        self.rejections.append((source, culprit, reason))

    def ups(self) -> list[Event]:
        return [e for e in self.events if e.up]

    def downs(self) -> list[Event]:
        """Down reports after the first up."""
        return [e for e in self.transitions() if not e.up]

    def transitions(self) -> list[Event]:
        """Liveness changes from the first up on (an unreachable start reports down first)."""
        first_up = next((i for i, e in enumerate(self.events) if e.up), len(self.events))
        return self.events[first_up:]

    def after(self, event: Event) -> list[Sample]:
        return self.samples[event.samples_before :]


@contextlib.asynccontextmanager
async def running(source: Source) -> AsyncIterator[RecordingSink]:
    """``source`` reading into a fresh sink until the block ends (then cancelled)."""
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        yield sink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Until ``check()`` holds, looked at every 50 ms, at most ``timeout`` seconds' worth of
    times; then fail naming what never came (a bound on waiting, not on speed)."""
    for _ in range(max(1, round(timeout / 0.05))):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never came: {what or check}")


class Relay:
    """A TCP relay in front of a real server: passes bytes both ways until ``hold()``, then
    swallows the server's answers while the connection stays open (a device, or the link
    to it, that stops answering without closing)."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.holding = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def hold(self) -> None:
        self.holding = True

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers += [writer, up_writer]

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, answers: bool
        ) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    if answers and self.holding:
                        continue
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
