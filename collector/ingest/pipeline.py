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
from common.limits import UplinkLimits
from common.register_loader import LoadedRegister
from common.topics import EdgeTopic
from common.wire import EDGE_SOURCE, EdgeState, WireError, decode_batch

log = logging.getLogger(__name__)

LOGGED_VIOLATIONS = 10
LOGGED_REJECTIONS_PER_MINUTE = 20
"""Rejected samples named in the log per minute; a PLC with a wrong clock rejects all of its
samples, and the counters (``/metrics``) carry the rest."""
"""Each limit logs its first violations, then every thousandth (a flood must not flood the log)."""

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
    link: int = 0
    """The uplink connection number of the newest state message (``EdgeState.link``)."""
    stale_states: int = 0
    """State messages older than one already seen (a Will delivered after the next birth)."""
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
    source_ts: list[int] = field(default_factory=list)
    """The stored samples' source times (for :class:`SampleAges`)."""


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
        self.limits = limits or UplinkLimits()
        self.clock = clock
        self.log_clock: Callable[[], float] = time.monotonic
        """Seconds; paces the rejection log (tests fix it)."""
        self._rejection_log_minute = 0
        self._rejections_logged = 0
        self._rejections_unlogged = 0
        self.queue: WeightedQueue[Pending] = WeightedQueue(queue_lines or 2 * max_lines)
        self.stats = IngestStats()
        self._preparing = False
        self._in_flight: asyncio.Task[None] | None = None
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
        self._track_sequence(topic, batch.boot, batch.seq)
        if resolved.rejected_samples:
            self.stats.samples_rejected += resolved.rejected_samples
            by_rule = self.stats.samples_rejected_by_rule
            for rule, count in resolved.rejected_by_rule.items():
                by_rule[rule] = by_rule.get(rule, 0) + count
            self._log_rejections(resolved.rejections, resolved.rejected_samples)
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
        if not self._known_plant(topic):
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
        seen = self.edge(topic)
        if boot and (boot, state.link) < (seen.boot, seen.link):
            # A Will of an older connection, delivered late: stored (the KPI orders it by
            # the edge's history), but this view keeps the newer state.
            seen.stale_states += 1
        else:
            seen.online = online
            seen.boot, seen.link = boot or seen.boot, state.link
        seen.last_seen_ns = time.time_ns()
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

    def edge(self, topic: EdgeTopic) -> EdgeSeen:
        """The state kept for this edge. For an unknown plant, or beyond ``limits.edges``
        edges, a detached record that is not kept (memory stays bounded)."""
        key = f"{topic.enterprise}/{topic.plant}/{topic.edge}"
        seen = self.stats.edges.get(key)
        if seen is not None:
            return seen
        seen = EdgeSeen(topic.plant, topic.enterprise)
        if not self._known_plant(topic):
            return seen
        if len(self.stats.edges) >= self.limits.edges:
            self._violation(
                "edges",
                f"edge {key} not tracked: {self.limits.edges} edges already are "
                "(COLLECTOR_LIMITS__EDGES); its samples are still stored",
            )
            return seen
        self.stats.edges[key] = seen
        return seen

    def _known_plant(self, topic: EdgeTopic) -> bool:
        register = self.registers.get(topic.enterprise)
        return register is not None and any(p.id == topic.plant for p in register.model.plants)

    def _log_rejections(self, reasons: list[str], count: int) -> None:
        minute = int(self.log_clock() // 60)
        if minute != self._rejection_log_minute:
            if self._rejections_unlogged:
                log.warning(
                    "%d more rejected samples were not logged in the last minute; by rule: "
                    "%s (see plantkpi_samples_rejected_by_rule)",
                    self._rejections_unlogged,
                    self.stats.samples_rejected_by_rule,
                )
            self._rejection_log_minute = minute
            self._rejections_logged = self._rejections_unlogged = 0
        # resolve names at most a few samples per batch; the others count as unlogged.
        self._rejections_unlogged += max(0, count - len(reasons))
        for reason in reasons:
            if self._rejections_logged < LOGGED_REJECTIONS_PER_MINUTE:
                self._rejections_logged += 1
                log.warning("rejected sample: %s", reason)
            else:
                self._rejections_unlogged += 1

    def limit_violation(self, limit: str, message: str) -> None:
        """Count (and log, rate-limited) a message refused by one of ``self.limits``."""
        self._violation(limit, message)

    def _violation(self, limit: str, message: str) -> None:
        count = self.stats.limit_violations[limit] = self.stats.limit_violations.get(limit, 0) + 1
        if count <= LOGGED_VIOLATIONS or count % 1000 == 0:
            log.warning("limit %s exceeded (%d times so far): %s", limit, count, message)

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
        self._violation(limit, message)
        await self.dead_letter(topic, topic_name, payload, message)

    def _track_sequence(self, topic: EdgeTopic, boot: int, seq: int) -> None:
        seen = self.edge(topic)
        seen.last_seen_ns = time.time_ns()
        seen.online = True
        if boot == seen.boot and seq > seen.last_seq + 1 and seen.last_seq >= 0:
            seen.seq_gaps += seq - seen.last_seq - 1
        if boot == seen.boot and 0 <= seq <= seen.last_seq:
            seen.redeliveries += 1
        if boot != seen.boot:
            seen.boot, seen.last_seq, seen.link = boot, seq, 0
        elif seq > seen.last_seq:
            seen.last_seq = seq

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
        delay = 0.5
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
                log.warning("InfluxDB write failed (%s); retrying in %.1fs", exc, delay)
                if isinstance(exc, DatabaseMissing):
                    try:
                        await self.writer.ensure_database()
                    except Exception as create_exc:
                        log.warning("could not create the database: %s", create_exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_delay)
