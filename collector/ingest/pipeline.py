"""From an uplink message to lines in InfluxDB, with backpressure and a dead-letter path.

``submit`` validates and queues; one writer task groups queued batches into writes of up
to ``max_lines`` lines. While InfluxDB is unreachable the writer retries with capped
backoff and the bounded queue stops the consumer (nothing is dropped). A write InfluxDB
rejects for its content (400) is retried batch by batch, so one poisoned batch goes to
the dead letters with its reason and the others are written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from collector.ingest.resolve import BatchRejected, Resolved, resolve_batch
from collector.storage.errors import (
    DatabaseMissing,
    WriteRejected,
    WriteUnauthorized,
    WriteUnavailable,
)
from collector.storage.lineprotocol import (
    LineProtocolError,
    StoredLiveness,
    liveness_line,
    liveness_lines,
    sample_line,
)
from collector.storage.writer import InfluxWriter
from common.register_loader import LoadedRegister
from common.topics import EdgeTopic
from common.wire import EDGE_SOURCE, WireError, decode_batch

log = logging.getLogger(__name__)

DeadLetter = Callable[[EdgeTopic | None, str, bytes, str], Awaitable[None]]
"""(topic parts, topic, payload, reason) → publish it where an operator can find it."""


@dataclass
class IngestStats:
    batches: int = 0
    samples_written: int = 0
    samples_rejected: int = 0
    batches_malformed: int = 0
    batches_dead_lettered: int = 0
    write_failures: dict[str, int] = field(default_factory=dict)
    last_write_latency_s: float = 0.0
    last_error: str = ""
    edges: dict[str, EdgeSeen] = field(default_factory=dict)

    def failure(self, kind: str, message: str) -> None:
        self.write_failures[kind] = self.write_failures.get(kind, 0) + 1
        self.last_error = message


@dataclass
class EdgeSeen:
    """What the collector knows of one edge agent (for the API and the KPI's edge view)."""

    plant: str
    enterprise: str
    online: bool = False
    last_seen_ns: int = 0
    last_seq: int = -1
    boot: int = 0
    seq_gaps: int = 0
    """Batches skipped in the edge's sequence when a later one arrived (a skipped batch
    may still come later, redelivered: then it is also counted below)."""
    redeliveries: int = 0
    """Batches of the same edge boot whose sequence number was not new (a repeat after a
    reconnect or restart, or a late one): written again as the same points."""
    health: dict[str, object] = field(default_factory=dict)


@dataclass
class Pending:
    lines: list[str]
    description: str
    topic: EdgeTopic | None
    topic_name: str
    payload: bytes
    samples: int
    on_written: Callable[[], None] | None = None


class IngestPipeline:
    def __init__(
        self,
        writer: InfluxWriter,
        registers: dict[str, LoadedRegister],
        dead_letter: DeadLetter,
        *,
        max_lines: int = 5000,
        flush_interval: float = 0.2,
        queue_batches: int = 200,
        retry_max_delay: float = 30.0,
    ) -> None:
        self.writer = writer
        self.registers = registers
        self.dead_letter = dead_letter
        self.max_lines = max_lines
        self.flush_interval = flush_interval
        self.retry_max_delay = retry_max_delay
        self.queue: asyncio.Queue[Pending] = asyncio.Queue(queue_batches)
        self.stats = IngestStats()
        self.busy = False
        """A group is being written (shutdown waits for it)."""
        self.written = asyncio.Event()
        """Set after every successful write (tests and the KPI loop wait on it)."""

    async def submit_batch(
        self,
        topic: EdgeTopic,
        topic_name: str,
        payload: bytes,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        """Validate one uplink message and queue it (waits while storage is behind).

        ``on_written`` runs once the batch is settled: stored, or dead-lettered.
        """
        done = on_written or (lambda: None)
        try:
            batch = decode_batch(payload, topic_name)
            resolved = resolve_batch(batch, topic, self.registers)
        except (WireError, BatchRejected) as exc:
            self.stats.batches_malformed += 1
            log.error("rejected: %s", exc)
            await self.dead_letter(topic, topic_name, payload, str(exc))
            done()
            return
        self.stats.batches += 1
        self._track_sequence(topic, batch.boot, batch.seq)
        if resolved.rejected_samples:
            self.stats.samples_rejected += resolved.rejected_samples
            for reason in resolved.rejections:
                log.warning("rejected sample: %s", reason)
        lines = self._serialize(resolved, batch.enterprise, batch.plant, batch.edge)
        if lines:
            await self.queue.put(
                Pending(
                    lines,
                    f"edge {batch.edge} batch {batch.seq}",
                    topic,
                    topic_name,
                    payload,
                    len(resolved.samples) - resolved.samples_unstorable,
                    done,
                )
            )
        else:
            done()

    def _serialize(self, resolved: Resolved, enterprise: str, plant: str, edge: str) -> list[str]:
        """Line protocol for the accepted samples; a sample that cannot be stored (e.g. a
        timestamp outside InfluxDB's range) is rejected on its own, naming it."""
        lines: list[str] = []
        for sample in resolved.samples:
            try:
                lines.append(sample_line(sample))
            except LineProtocolError as exc:
                self.stats.samples_rejected += 1
                resolved.samples_unstorable += 1
                log.warning("rejected sample from edge %s batch %d: %s", edge, sample.seq, exc)
        try:
            lines.extend(liveness_lines(enterprise, plant, edge, resolved.liveness))
        except LineProtocolError as exc:
            log.warning("rejected liveness events from edge %s: %s", edge, exc)
        return lines

    async def submit_edge_state(
        self,
        topic: EdgeTopic,
        online: bool,
        boot: int,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        """An edge's birth or death (Last Will) becomes a liveness event of its ``_edge`` source."""
        seen = self.edge(topic)
        seen.online = online
        seen.boot = boot or seen.boot
        seen.last_seen_ns = time.time_ns()
        line = liveness_line(
            StoredLiveness(
                topic.enterprise,
                topic.plant,
                EDGE_SOURCE,
                seen.last_seen_ns,
                online,
                "birth" if online else "offline (death message or Last Will)",
                topic.edge,
            )
        )
        await self.queue.put(
            Pending([line], f"edge {topic.edge} state", topic, "", b"", 0, on_written)
        )

    def edge(self, topic: EdgeTopic) -> EdgeSeen:
        key = f"{topic.enterprise}/{topic.plant}/{topic.edge}"
        seen = self.stats.edges.get(key)
        if seen is None:
            seen = self.stats.edges[key] = EdgeSeen(topic.plant, topic.enterprise)
        return seen

    def _track_sequence(self, topic: EdgeTopic, boot: int, seq: int) -> None:
        seen = self.edge(topic)
        seen.last_seen_ns = time.time_ns()
        seen.online = True
        if boot == seen.boot and seq > seen.last_seq + 1 and seen.last_seq >= 0:
            seen.seq_gaps += seq - seen.last_seq - 1
        if boot == seen.boot and 0 <= seq <= seen.last_seq:
            seen.redeliveries += 1
        if boot != seen.boot or seq > seen.last_seq:
            seen.boot, seen.last_seq = boot, seq

    async def run_writer(self) -> None:
        while True:
            group = [await self.queue.get()]
            self.busy = True
            deadline = time.monotonic() + self.flush_interval
            n_lines = len(group[0].lines)
            while n_lines < self.max_lines:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
                group.append(item)
                n_lines += len(item.lines)
            try:
                await self._write_group(group)
            finally:
                self.busy = False

    async def _write_group(self, group: list[Pending]) -> None:
        try:
            await self._write_retrying([line for item in group for line in item.lines])
        except WriteRejected as exc:
            if len(group) == 1:
                await self._reject(group[0], exc)
                return
            # Find the poisoned batch: write each on its own.
            for item in group:
                try:
                    await self._write_retrying(item.lines)
                except WriteRejected as item_exc:
                    await self._reject(item, item_exc)
                else:
                    self._done(item)
            return
        for item in group:
            self._done(item)

    def _done(self, item: Pending) -> None:
        self.stats.samples_written += item.samples
        if item.on_written is not None:
            item.on_written()
        self.written.set()

    async def _reject(self, item: Pending, exc: WriteRejected) -> None:
        self.stats.batches_dead_lettered += 1
        self.stats.failure("rejected", str(exc))
        log.error("InfluxDB rejected %s: %s; sent to the dead-letter topic", item.description, exc)
        await self.dead_letter(
            item.topic, item.topic_name, item.payload, f"InfluxDB rejected: {exc}"
        )
        if item.on_written is not None:
            item.on_written()

    async def _write_retrying(self, lines: list[str]) -> None:
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                await self.writer.write(lines)
                self.stats.last_write_latency_s = time.monotonic() - started
                return
            except (WriteUnavailable, DatabaseMissing, WriteUnauthorized) as exc:
                # Never dead-letter for these: the data is fine, the database is not (yet).
                kind = type(exc).__name__
                self.stats.failure(kind, str(exc))
                log.warning("InfluxDB write failed (%s); retrying in %.1fs", exc, delay)
                if isinstance(exc, DatabaseMissing):
                    try:
                        await self.writer.ensure_database()
                    except Exception as create_exc:
                        log.warning("could not create the database: %s", create_exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_delay)
