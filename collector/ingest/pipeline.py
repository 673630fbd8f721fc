"""From an uplink message to lines in InfluxDB, with backpressure and a dead-letter path.

``submit`` validates and queues; one writer task groups queued batches into writes of up
to ``max_lines`` lines. While InfluxDB is unreachable the writer retries with capped
backoff and the bounded queue stops the consumer (nothing is dropped). A write InfluxDB
rejects for its content (400) is retried batch by batch, so one poisoned batch goes to
the dead letters with its reason and the others are written.

Hostile or oversized input (``common.limits``, docs/hostile-input.md) is refused where it
is found, counted by limit or rule, logged naming the edge, and acknowledged: an uplink
message over ``limits.payload_bytes`` is dead-lettered unread, as is a batch over the
sample/liveness count limits (a dead letter is a bounded envelope: size, digest, first
bytes — ``collector/ingest/dead_letters.py``), a bad sample is
rejected alone. State is kept for at most ``limits.edges`` edges of known plants.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from collector.ingest.ages import SampleAges
from collector.ingest.edges import EdgeRegistry, EdgeSeen
from collector.ingest.paced_log import LimitViolations, RejectionLog
from collector.ingest.resolve import BatchRejected, LimitExceeded, Resolved, resolve_batch
from collector.ingest.weighted_queue import WeightedQueue
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
    sample_lines_of_columns,
    watermark_line,
)
from collector.storage.writer import InfluxWriter, PreparedWrite
from common.backoff import Backoff
from common.limits import UplinkLimits
from common.register_loader import LoadedRegister
from common.topics import EdgeTopic
from common.wire import EDGE_SOURCE, EdgeState, WireError, decode_batch

log = logging.getLogger(__name__)

DeadLetter = Callable[[EdgeTopic | None, str, bytes, str], Awaitable[None]]
"""(topic parts, topic, payload, reason) → publish it where an operator can find it."""


@dataclass
class IngestStats:
    batches: int = 0
    samples_written: int = 0
    samples_backfilled: int = 0
    """Of ``samples_written``, those an edge read from a source's history after a gap."""
    samples_rejected: int = 0
    batches_malformed: int = 0
    batches_dead_lettered: int = 0
    write_failures: dict[str, int] = field(default_factory=dict)
    last_write_latency_s: float = 0.0
    last_error: str = ""
    edges: dict[str, EdgeSeen] = field(default_factory=dict)
    limit_violations: dict[str, int] = field(default_factory=dict)
    """By limit (an ``UplinkLimits`` field name): how often it was exceeded."""
    samples_rejected_by_rule: dict[str, int] = field(default_factory=dict)
    """``samples_rejected`` by rule: ``unknown_signal``, ``nonfinite``, ``ts_future``, ..."""
    states_rejected: int = 0
    """Edge state messages for an enterprise/plant no register has (not stored)."""
    sample_ages: SampleAges = field(default_factory=SampleAges)
    """Source time → written, of every stored sample (the device path's latency)."""

    def failure(self, kind: str, message: str) -> None:
        self.write_failures[kind] = self.write_failures.get(kind, 0) + 1
        self.last_error = message


@dataclass
class Pending:
    lines: list[str]
    description: str
    topic: EdgeTopic | None
    topic_name: str
    payload: bytes
    samples: int
    on_written: Callable[[], None] | None = None
    source_ts: list[int] = field(default_factory=list)
    """The stored samples' source times (for :class:`SampleAges`)."""
    backfilled: int = 0
    """Of ``samples``, those read from a source's history after a gap."""


def _backfilled(resolved: Resolved) -> int:
    batch = resolved.batch
    if batch is None or not batch.samples.backfill:
        return 0
    backfill = frozenset(batch.samples.backfill)
    return sum(1 for row in resolved.rows if row in backfill)


def stored_watermark(complete_until: int, received: int) -> int:
    """An edge's watermark as stored: its own (edge-clock) time, never later than when the
    batch reached us — nobody vouches for the future.

    It is not moved by the batch's ``sent``-to-received offset: that offset is transit as
    well as clock skew, and a batch the broker queued for a minute would claim a minute
    of data it never carried (found by the KPI fault test). Edge clocks must therefore be
    synchronised to within the KPI lag (docs/schema.md)."""
    return min(complete_until, received)


class IngestPipeline:
    def __init__(
        self,
        writer: InfluxWriter,
        registers: dict[str, LoadedRegister],
        dead_letter: DeadLetter,
        *,
        max_lines: int = 5000,
        flush_interval: float = 0.2,
        queue_lines: int | None = None,
        retry_max_delay: float = 30.0,
        limits: UplinkLimits | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """``clock`` (ns) is what future timestamps are judged against; ``queue_lines``
        bounds the lines waiting for the writer (default: two writes' worth), so a backlog
        waits in the broker, not in this process."""
        self.writer = writer
        self.registers = registers
        self.dead_letter = dead_letter
        self.max_lines = max_lines
        self.flush_interval = flush_interval
        self.retry_max_delay = retry_max_delay
        self.clock = clock
        self.queue: WeightedQueue[Pending] = WeightedQueue(queue_lines or 2 * max_lines)
        self.stats = IngestStats()
        self.violations = LimitViolations(self.stats.limit_violations)
        self.rejection_log = RejectionLog(self.stats.samples_rejected_by_rule)
        self.edges = EdgeRegistry(
            registers, limits or UplinkLimits(), self.violations, self.stats.edges
        )
        self._preparing = False
        self._in_flight: asyncio.Task[None] | None = None
        self.written = asyncio.Event()
        """Set after every successful write (tests and the KPI loop wait on it)."""

    @property
    def limits(self) -> UplinkLimits:
        return self.edges.limits

    @limits.setter
    def limits(self, limits: UplinkLimits) -> None:
        self.edges.limits = limits

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
        if len(payload) > self.limits.payload_bytes:
            message = (
                f"uplink message on {topic_name}: {len(payload)} bytes exceed the limit of "
                f"{self.limits.payload_bytes} (COLLECTOR_LIMITS__PAYLOAD_BYTES); "
                "not read (its dead letter keeps its size, digest and first bytes)"
            )
            await self._refuse(topic, topic_name, payload, "payload_bytes", message)
            done()
            return
        received = self.clock()
        try:
            batch = decode_batch(payload, topic_name)
            resolved = resolve_batch(
                batch, topic, self.registers, now_ns=received, limits=self.limits
            )
        except LimitExceeded as exc:
            await self._refuse(topic, topic_name, payload, exc.limit, str(exc))
            done()
            return
        except (WireError, BatchRejected) as exc:
            self.stats.batches_malformed += 1
            log.error("rejected: %s", exc)
            await self.dead_letter(topic, topic_name, payload, str(exc))
            done()
            return
        self.stats.batches += 1
        self.edges.batch_arrived(topic, batch.boot, batch.seq)
        if resolved.rejected_samples:
            self.stats.samples_rejected += resolved.rejected_samples
            by_rule = self.stats.samples_rejected_by_rule
            for rule, count in resolved.rejected_by_rule.items():
                by_rule[rule] = by_rule.get(rule, 0) + count
            self.rejection_log.rejected(resolved.rejections, resolved.rejected_samples)
        lines, stored_ts = self._serialize(resolved, batch.enterprise, batch.plant, batch.edge)
        if batch.complete_until > 0:
            # In the same write as the batch's samples, after those of earlier batches: the
            # watermark is stored only once what it vouches for is.
            try:
                lines.append(
                    watermark_line(
                        batch.enterprise,
                        batch.plant,
                        batch.edge,
                        stored_watermark(batch.complete_until, received),
                        batch.boot,
                        batch.seq,
                    )
                )
            except LineProtocolError as exc:
                log.warning("ignored the watermark of edge %s: %s", batch.edge, exc)
        if lines:
            await self.queue.put(
                Pending(
                    lines,
                    f"edge {batch.edge} batch {batch.seq}",
                    topic,
                    topic_name,
                    payload,
                    len(resolved.rows) - resolved.samples_unstorable,
                    done,
                    stored_ts,
                    _backfilled(resolved),
                ),
                len(lines),
            )
        else:
            done()

    def _serialize(
        self, resolved: Resolved, enterprise: str, plant: str, edge: str
    ) -> tuple[list[str], list[int]]:
        """Line protocol for the accepted samples, and their source times; a sample that
        cannot be stored (e.g. a timestamp outside InfluxDB's range) is rejected on its
        own, naming it."""
        batch = resolved.batch
        lines: list[str] = []
        stored_ts: list[int] = []
        if batch is not None and resolved.rows:
            cols = batch.samples
            out = sample_lines_of_columns(
                resolved.rows,
                resolved.series,
                cols.ts,
                cols.value,
                cols.status,
                cols.recv,
                cols.server_ts,
                batch.edge,
                batch.seq,
                backfill=cols.backfill,
            )
            lines, stored_ts = out.lines, out.stored_ts
            for _row, problem in out.failed:
                self.stats.samples_rejected += 1
                by_rule = self.stats.samples_rejected_by_rule
                by_rule["unstorable"] = by_rule.get("unstorable", 0) + 1
                resolved.samples_unstorable += 1
                log.warning("rejected sample from edge %s batch %d: %s", edge, batch.seq, problem)
        try:
            lines.extend(liveness_lines(enterprise, plant, edge, resolved.liveness))
        except LineProtocolError as exc:
            log.warning("rejected liveness events from edge %s: %s", edge, exc)
        return lines, stored_ts

    async def submit_edge_state(
        self,
        topic: EdgeTopic,
        state: EdgeState,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        """An edge's birth or death (Last Will) becomes a liveness event of its ``_edge`` source.

        Stored with the edge's boot and link number as received, stale or not: the KPI
        orders them by the edge's own history (``collector/kpi/edge_liveness.py``), not by
        when they arrived. Only for a plant of a loaded register: anything else would add
        series to InfluxDB for whoever can publish a state topic."""
        online, boot = state.online, state.boot
        if not self.edges.known_plant(topic):
            self.stats.states_rejected += 1
            log.warning(
                "ignored edge state on %s/%s/%s: no loaded register has that enterprise and plant",
                topic.enterprise,
                topic.plant,
                topic.edge,
            )
            if on_written is not None:
                on_written()
            return
        seen = self.edges.state_arrived(topic, state)
        if online:
            detail = f"birth (link {state.link})"
        elif state.shutdown:
            detail = "stopped (the agent said goodbye)"
        else:
            detail = f"uplink link {state.link} lost (Last Will)"
        line = liveness_line(
            StoredLiveness(
                topic.enterprise,
                topic.plant,
                EDGE_SOURCE,
                seen.last_seen_ns,
                online,
                detail,
                topic.edge,
                boot=boot,
                link=state.link,
                shutdown=state.shutdown,
            )
        )
        await self.queue.put(
            Pending([line], f"edge {topic.edge} state", topic, "", b"", 0, on_written), 1
        )

    async def _refuse(
        self,
        topic: EdgeTopic,
        topic_name: str,
        payload: bytes,
        limit: str,
        message: str,
    ) -> None:
        """A message over a limit: counted, logged, dead-lettered (the envelope is bounded:
        ``collector/ingest/dead_letters.py``)."""
        self.stats.batches_malformed += 1
        self.violations.count(limit, message)
        await self.dead_letter(topic, topic_name, payload, message)

    async def run_writer(self) -> None:
        """Write groups of queued batches, one request at a time and in order (a batch's
        watermark must not be stored before the batches before it), building the next
        group's request while the previous one is in flight: building it after would put
        a few ms per write on InfluxDB's critical path (docs/benchmarks.md, "Collector
        ingest")."""
        in_flight: asyncio.Task[None] | None = None
        try:
            while True:
                taking = asyncio.ensure_future(self._take_group())
                try:
                    while in_flight is not None and not taking.done():
                        # A write that fails for good stops the writer, as it always did.
                        await asyncio.wait({taking, in_flight}, return_when=FIRST_COMPLETED)
                        if in_flight.done():
                            in_flight.result()
                            in_flight = None
                    group = await taking
                finally:
                    if not taking.done():
                        taking.cancel()
                        self._preparing = False
                try:
                    prepared = await self.writer.prepare(
                        [line for item in group for line in item.lines]
                    )
                    if in_flight is not None:
                        await in_flight
                    in_flight = self._in_flight = asyncio.create_task(
                        self._write_group(group, prepared)
                    )
                finally:
                    self._preparing = False
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()

    @property
    def busy(self) -> bool:
        """A group is being prepared or written (shutdown waits for it)."""
        return self._preparing or (self._in_flight is not None and not self._in_flight.done())

    async def _take_group(self) -> list[Pending]:
        """The queued batches of the next write: at least one, then what arrives within
        ``flush_interval`` up to ``max_lines`` lines."""
        group = [await self.queue.get()]
        self._preparing = True  # taken from the queue: shutdown waits for it from here
        deadline = time.monotonic() + self.flush_interval
        n_lines = len(group[0].lines)
        while n_lines < self.max_lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            # that lands as the get completes, and shutdown would hang.
            try:
                async with asyncio.timeout(remaining):
                    item = await self.queue.get()
            except TimeoutError:
                break
            group.append(item)
            n_lines += len(item.lines)
        return group

    async def _write_group(self, group: list[Pending], prepared: PreparedWrite) -> None:
        try:
            await self._write_retrying(prepared)
        except WriteRejected as exc:
            if len(group) == 1:
                await self._reject(group[0], exc)
                return
            # Find the poisoned batch: write each on its own.
            for item in group:
                try:
                    await self._write_retrying(await self.writer.prepare(item.lines))
                except WriteRejected as item_exc:
                    await self._reject(item, item_exc)
                else:
                    self._done(item)
            return
        for item in group:
            self._done(item)

    def _done(self, item: Pending) -> None:
        self.stats.samples_written += item.samples
        self.stats.samples_backfilled += item.backfilled
        self.stats.sample_ages.observe(item.source_ts, self.clock())
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

    async def _write_retrying(self, prepared: PreparedWrite) -> None:
        backoff = Backoff(cap=self.retry_max_delay)
        while True:
            started = time.monotonic()
            try:
                await self.writer.write_prepared(prepared)
                self.stats.last_write_latency_s = time.monotonic() - started
                return
            except (WriteUnavailable, DatabaseMissing, WriteUnauthorized) as exc:
                # Never dead-letter for these: the data is fine, the database is not (yet).
                kind = type(exc).__name__
                self.stats.failure(kind, str(exc))
                delay = backoff.next_delay()
                log.warning("InfluxDB write failed (%s); retrying in %.1fs", exc, delay)
                if isinstance(exc, DatabaseMissing):
                    try:
                        await self.writer.ensure_database()
                    except Exception as create_exc:
                        log.warning("could not create the database: %s", create_exc)
                await asyncio.sleep(delay)
