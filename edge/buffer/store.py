"""The durable sample buffer: group commit to a segment log, take → publish → commit or give back.

Sources call ``add_sample``/``add_liveness`` synchronously: an in-memory append, never a
wait. A flush task writes what arrived every ``commit_interval`` (or as soon as
``commit_items`` wait) as one record (the disk
work runs in a thread: files have no asyncio API). ``take`` hands out only items already
written, so no batch leaves before what it carries is on disk; ``commit`` (the broker
acknowledged) advances the persisted cursor; ``give_back`` (it did not) leaves the items to
be taken again. After a restart, everything on disk above the cursor is sent again.

Bounded by bytes on disk and by items: when full, the oldest segment is dropped whole,
its unacknowledged samples are counted in ``dropped``, and its unacknowledged liveness
events are carried forward into the next record: a liveness event is never dropped.
A disk that fills up before those bounds (other files, a small partition) is handled the
same way: a write refused with ENOSPC frees acknowledged segments first — the one being
appended to included — and else drops the oldest unacknowledged one, then writes again;
errors are logged at most every ``ERROR_LOG_INTERVAL`` and stand in ``last_error`` (and
the edge's health) until a write succeeds. See docs/store-and-forward.md for the
guarantees of each fsync policy.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import errno
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.wire import LivenessEvent, Sample, SampleColumns
from edge.buffer.acks import AckState, Stream
from edge.buffer.marks import SignalMarks
from edge.buffer.records import Contents
from edge.buffer.segments import FsyncPolicy, RecordRef, Segment, SegmentLog

log = logging.getLogger(__name__)

ERROR_LOG_INTERVAL = 10.0
"""Seconds between two log lines about failing disk writes (the count covers the rest)."""


@dataclass
class Taken:
    samples: list[Sample]
    liveness: list[LivenessEvent]

    def columns(self) -> SampleColumns:
        return SampleColumns.of(self.samples)

    def __bool__(self) -> bool:
        return bool(self.samples or self.liveness)


@dataclass
class BufferStats:
    depth: int
    """Items (samples and liveness events) not yet acknowledged, in flight and unwritten included."""
    oldest_ts: int | None
    """Source timestamp of the oldest unacknowledged sample on disk."""
    dropped: int
    """Samples dropped because the buffer was full (since start)."""
    accepted: int
    in_flight: int
    bytes_on_disk: int
    segments: int
    unwritten: int
    """Items waiting for the next group commit."""
    torn_records: int
    """Records found torn or damaged at start-up (cut off and skipped)."""
    lost_items: int
    """Unacknowledged items found unreadable at start-up (damaged records, missing segment
    files): lost for good; a problem in the edge's health until the next start."""
    liveness_carried: int
    """Liveness events moved forward out of dropped segments."""
    backlog: int
    """Items of the backlog stream still to send (0 when there is no separate backlog)."""
    write_errors: int
    """Failed writes since start (disk full, permissions)."""
    last_error: str
    """The standing write error; empty once a write succeeds again."""
    fsync: str


@dataclass(frozen=True)
class BufferConfig:
    directory: Path
    max_bytes: int = 1024**3
    max_samples: int = 2_000_000
    segment_bytes: int = 16 * 1024**2
    commit_interval: float = 0.1
    commit_items: int = 1000
    """A group commit as soon as this many samples (or device acknowledgements) wait, not
    only every ``commit_interval``: with R messages unacknowledged at most and a commit
    every T, a device stream cannot go faster than R / T."""
    fsync: FsyncPolicy = "interval"
    fsync_interval: float = 1.0
    split_threshold: int = 20_000
    """Unsent items beyond which new data is sent as a separate live stream."""
    hot_items: int = 50_000
    """Recently written items kept decoded in memory (the live stream reads them from here).
    About 10 MB; beyond ``split_threshold`` unsent the oldest are read back from disk
    anyway. 200,000 (40 MB and more) let the edge's peak RSS follow a burst's length."""

    def __post_init__(self) -> None:
        if self.segment_bytes * 4 > self.max_bytes:
            raise ValueError(
                f"EDGE_BUFFER_SEGMENT_BYTES ({self.segment_bytes}) must be at most a quarter of "
                f"EDGE_BUFFER_MAX_BYTES ({self.max_bytes}): a full buffer drops whole segments"
            )


@dataclass
class _InFlight:
    stream: Stream
    start: int
    end: int


@dataclass
class SampleBuffer:
    """Open it with :meth:`open` (blocking: call it at start-up), run :meth:`run` as a task."""

    config: BufferConfig
    _log: SegmentLog
    _acks: AckState
    _segments: deque[Segment]
    _refs: list[RecordRef]
    _firsts: list[int]
    _next_item: int
    _durable_end: int
    torn_records: int = 0
    lost_items: int = 0
    dropped: int = 0
    accepted: int = 0
    liveness_carried: int = 0
    write_errors: int = 0
    last_error: str = ""
    _pending_samples: deque[Sample] = field(default_factory=deque)
    """A deque: with the disk refusing writes, the oldest is dropped at every new sample."""
    _pending_liveness: list[LivenessEvent] = field(default_factory=list)
    _pending_callbacks: list[Callable[[], None]] = field(default_factory=list)
    _hot: dict[int, Contents] = field(default_factory=dict)
    _hot_count: int = 0
    _in_flight: _InFlight | None = None
    _turn: Stream = "live"
    _cursor_dirty: bool = False
    _flush_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _commit_now: asyncio.Event = field(default_factory=asyncio.Event)
    _error_logged_at: float = -ERROR_LOG_INTERVAL
    _errors_unlogged: int = 0
    marks: SignalMarks | None = None
    """Moved by every sample written (what a backfill starts from after a gap)."""

    @classmethod
    def open(cls, config: BufferConfig) -> SampleBuffer:
        """Lock and index the directory (blocking: at start-up, before the loop serves data)."""
        segment_log = SegmentLog(
            config.directory,
            segment_bytes=config.segment_bytes,
            fsync=config.fsync,
            fsync_interval=config.fsync_interval,
        )
        found = segment_log.open()
        for note in found.notes:
            log.warning("edge buffer %s: %s", config.directory, note)
        buffer = cls(
            config,
            segment_log,
            found.acks,
            deque(found.segments),
            found.refs,
            [r.first for r in found.refs],
            found.next_item,
            found.next_item,
            torn_records=found.torn_records,
            lost_items=found.lost_items,
        )
        if found.lost_items:
            log.error(
                "edge buffer %s: %d unacknowledged items were unreadable and are lost "
                "(damaged files; the damaged bytes are in quarantine/)",
                config.directory,
                found.lost_items,
            )
        depth = buffer._acks.pending(buffer._durable_end)
        if depth:
            log.info(
                "edge buffer %s: %d items from before the restart will be sent again",
                config.directory,
                depth,
            )
        return buffer

    # -- acquisition side (synchronous, never blocks) -------------------------------------

    def add_sample(self, record: Sample) -> None:
        self._pending_samples.append(record)
        self.accepted += 1
        if len(self._pending_samples) >= self.config.commit_items:
            self._commit_now.set()
        if len(self._pending_samples) > self.config.max_samples:
            # Only when the disk refuses writes for long: memory stays bounded too.
            self._pending_samples.popleft()
            self.dropped += 1

    def add_liveness(self, event: LivenessEvent) -> None:
        self._pending_liveness.append(event)

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once everything added so far is written to disk (a source
        acknowledges its device's message only then, so a crash cannot lose it)."""
        self._pending_callbacks.append(callback)
        if len(self._pending_callbacks) >= self.config.commit_items:
            self._commit_now.set()

    def __len__(self) -> int:
        """Items waiting to be taken (unwritten ones included, in-flight ones not)."""
        unsent = sum(end - start for start, end in self._acks.ranges(self._durable_end).values())
        if self._in_flight is not None:
            unsent -= self._in_flight.end - self._in_flight.start
        return unsent + len(self._pending_samples) + len(self._pending_liveness)

    # -- group commit ---------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            # Every commit interval, or as soon as ``commit_items`` wait. asyncio.timeout,
            # not wait_for: 3.11's wait_for can swallow a cancellation (see uplink).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.commit_interval):
                    await self._commit_now.wait()
            self._commit_now.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what arrived since the last flush, then tidy the log (drop, delete, cursor)."""
        async with self._flush_lock:
            samples, liveness = list(self._pending_samples), self._pending_liveness
            callbacks, self._pending_callbacks = self._pending_callbacks, []
            if samples or liveness:
                self._pending_samples.clear()
                self._pending_liveness = []
                first = self._next_item
                try:
                    ref, opened = await asyncio.to_thread(
                        self._log.append, first, samples, liveness
                    )
                except OSError as exc:
                    # Keep them for the next attempt (nothing of the record is on disk).
                    self._pending_samples.extendleft(reversed(samples))
                    self._pending_liveness[:0] = liveness
                    self._pending_callbacks[:0] = callbacks
                    self._write_failed(exc)
                    if exc.errno == errno.ENOSPC:
                        await self._make_room()
                    return
                self.last_error = ""
                if opened is not None:
                    self._segments.append(opened)
                self._next_item = self._durable_end = ref.end
                self._refs.append(ref)
                self._firsts.append(ref.first)
                self._hot[ref.first] = Contents(samples, liveness)
                self._hot_count += ref.header.n_items
                self._evict_hot()
                if self.marks is not None:
                    self.marks.update(samples)
            else:
                await asyncio.to_thread(self._log.sync_if_due)
            if self.marks is not None and self.marks.due():
                rows = self.marks.snapshot()  # here: samples move the marks on this loop
                if rows is not None:
                    await asyncio.to_thread(self.marks.write, rows)
            for callback in callbacks:
                callback()
            await self._tidy()

    async def _tidy(self) -> None:
        doomed: list[Segment] = []
        while len(self._segments) > 1 and self._segments[0].end <= self._acks.acked:
            doomed.append(self._segments.popleft())
        while len(self._segments) > 1 and self._over_bounds():
            doomed.append(self._drop_oldest())
        await self._persist(doomed)

    async def _make_room(self) -> None:
        """The disk is full: free acknowledged segments (the active one too), else drop
        the oldest unacknowledged one (counted), so that the next write can succeed."""
        doomed: list[Segment] = []
        while len(self._segments) > 1 and self._segments[0].end <= self._acks.acked:
            doomed.append(self._segments.popleft())
        if not doomed and self._segments:
            if len(self._segments) == 1:
                # Only the segment being appended to: close it so it can go.
                await asyncio.to_thread(self._log.retire_active)
            if self._segments[0].end <= self._acks.acked:
                doomed.append(self._segments.popleft())
            else:
                doomed.append(self._drop_oldest("the disk is full"))
        await self._persist(doomed)

    async def _persist(self, doomed: list[Segment]) -> None:
        """Delete ``doomed`` segments, then write the cursor if it changed. Deleting first
        frees the space a full disk needs for the cursor; a crash in between only leaves a
        cursor behind the first segment, which ``open`` moves up."""
        if doomed:
            self._forget_refs_below(doomed[-1].end)
            self._cursor_dirty = True
        if not (doomed or self._cursor_dirty):
            return
        cursor = dataclasses.replace(self._acks)
        self._cursor_dirty = False
        try:
            await asyncio.to_thread(self._write_persisted, cursor, doomed)
        except OSError as exc:
            self._cursor_dirty = True  # try again at the next flush
            self._write_failed(exc)

    def _write_persisted(self, cursor: AckState, doomed: list[Segment]) -> None:
        for segment in doomed:
            self._log.delete(segment)
        self._log.write_cursor(cursor)

    def _write_failed(self, exc: OSError) -> None:
        """Count a failed disk write, keep it as the standing error, log it rate-limited."""
        self.write_errors += 1
        self.last_error = f"edge buffer {self.config.directory}: {exc}"
        now = time.monotonic()
        if now - self._error_logged_at < ERROR_LOG_INTERVAL:
            self._errors_unlogged += 1
            return
        more = (
            f" ({self._errors_unlogged} more since the last report)"
            if self._errors_unlogged
            else ""
        )
        log.error("%s%s; %d items wait in memory", self.last_error, more, self._unwritten())
        self._error_logged_at = now
        self._errors_unlogged = 0

    def _unwritten(self) -> int:
        return len(self._pending_samples) + len(self._pending_liveness)

    def _over_bounds(self) -> bool:
        on_disk = sum(s.size for s in self._segments)
        return (
            on_disk > self.config.max_bytes
            or self._acks.pending(self._durable_end) > self.config.max_samples
        )

    def _drop_oldest(self, why: str = "") -> Segment:
        segment = self._segments.popleft()
        carried: list[LivenessEvent] = []
        for ref in self._refs_in(segment.id, segment.end):
            n = ref.header.n_samples
            self.dropped += self._acks.unacked_in(ref.first, ref.first + n)
            carried += [
                event
                for i, event in enumerate(ref.liveness)
                if not self._acks.is_acked(ref.first + n + i)
            ]
        self._acks.drop_below(segment.end)
        self._cursor_dirty = True
        if carried:
            self.liveness_carried += len(carried)
            self._pending_liveness[:0] = carried
        log.warning(
            "edge buffer full (%s): dropped segment %s, %d samples dropped so far",
            why or f"{self.config.max_bytes} bytes, {self.config.max_samples} items",
            segment.path.name,
            self.dropped,
        )
        return segment

    def _refs_in(self, start: int, end: int) -> list[RecordRef]:
        lo = max(0, bisect.bisect_right(self._firsts, start) - 1)
        hi = bisect.bisect_left(self._firsts, end)
        return [r for r in self._refs[lo:hi] if r.end > start and r.first < end]

    def _forget_refs_below(self, end: int) -> None:
        cut = bisect.bisect_left(self._firsts, end)
        while cut > 0 and self._refs[cut - 1].end > end:
            cut -= 1
        for ref in self._refs[:cut]:
            if self._hot.pop(ref.first, None) is not None:
                self._hot_count -= ref.header.n_items
        del self._refs[:cut]
        del self._firsts[:cut]

    def _evict_hot(self) -> None:
        for first in list(self._hot):
            contents = self._hot[first]
            n = len(contents.samples) + len(contents.liveness)
            if self._hot_count <= self.config.hot_items and not self._acks.is_acked(first + n - 1):
                break
            del self._hot[first]
            self._hot_count -= n

    # -- uplink side ----------------------------------------------------------------------

    async def take(self, max_items: int) -> Taken:
        """Up to ``max_items`` written items of one stream, in order; empty if none.

        Waits for the group commit of unwritten items when nothing written is waiting.
        """
        if self._in_flight is not None:
            raise RuntimeError("a batch is already in flight; commit or give it back first")
        if not self._acks.ranges(self._durable_end) and (
            self._pending_samples or self._pending_liveness
        ):
            await self.flush()
        if self._acks.split(self._durable_end, max(self.config.split_threshold, 2 * max_items)):
            log.info(
                "edge buffer: %d items of backlog; new data goes out alternately with it",
                self._acks.live_from - self._acks.acked if self._acks.live_from else 0,
            )
        ranges = self._acks.ranges(self._durable_end)
        if not ranges:
            if self._pending_samples or self._pending_liveness:
                # The write failed (counted in write_errors): do not let the caller spin.
                await asyncio.sleep(self.config.commit_interval)
            return Taken([], [])
        stream: Stream = self._turn if self._turn in ranges else next(iter(ranges))
        if len(ranges) == 2:
            self._turn = "backlog" if stream == "live" else "live"
        start, end = ranges[stream]
        end = min(end, start + max_items)
        self._in_flight = _InFlight(stream, start, end)
        return await self._read(start, end)

    async def _read(self, start: int, end: int) -> Taken:
        refs = self._refs_in(start, end)
        # What is in memory now is taken now: a flush during the disk read below may evict
        # it, and a record missing from the batch would be committed as sent.
        contents_of: dict[int, Contents | None] = {
            r.first: self._hot[r.first] for r in refs if r.first in self._hot
        }
        cold = [r for r in refs if r.first not in contents_of]
        if cold:
            read = await asyncio.to_thread(self._log.read, cold)
            contents_of.update(zip((r.first for r in cold), read, strict=True))
        samples: list[Sample] = []
        liveness: list[LivenessEvent] = []
        for ref in refs:
            contents = contents_of[ref.first]
            if contents is None:
                continue  # its segment was dropped meanwhile (counted), or damaged (logged)
            n = len(contents.samples)
            lo, hi = max(start, ref.first) - ref.first, min(end, ref.end) - ref.first
            samples += contents.samples[lo : min(hi, n)]
            liveness += contents.liveness[max(lo - n, 0) : max(hi - n, 0)]
        return Taken(samples, liveness)

    def commit(self) -> None:
        """The broker acknowledged the batch: it may go (the cursor is written at the next flush)."""
        if self._in_flight is None:
            return
        self._acks.commit(self._in_flight.stream, self._in_flight.end)
        self._in_flight = None
        self._cursor_dirty = True

    def give_back(self) -> None:
        """Not acknowledged: the same items are taken again, in order."""
        self._in_flight = None

    # -- health and shutdown ----------------------------------------------------------------

    def stats(self) -> BufferStats:
        oldest = None
        for ref in self._refs_in(self._acks.acked, self._durable_end)[:64]:
            if ref.header.n_samples and ref.header.min_ts is not None:
                oldest = ref.header.min_ts
                break
        if oldest is None and self._pending_samples:
            oldest = self._pending_samples[0][2]
        unwritten = len(self._pending_samples) + len(self._pending_liveness)
        ranges = self._acks.ranges(self._durable_end)
        backlog = ranges["backlog"] if "live" in ranges and "backlog" in ranges else None
        return BufferStats(
            depth=self._acks.pending(self._durable_end) + unwritten,
            oldest_ts=oldest,
            dropped=self.dropped,
            accepted=self.accepted,
            in_flight=self._in_flight.end - self._in_flight.start if self._in_flight else 0,
            bytes_on_disk=sum(s.size for s in self._segments),
            segments=len(self._segments),
            unwritten=unwritten,
            torn_records=self.torn_records,
            lost_items=self.lost_items,
            liveness_carried=self.liveness_carried,
            backlog=backlog[1] - backlog[0] if backlog else 0,
            write_errors=self.write_errors,
            last_error=self.last_error,
            fsync=self.config.fsync,
        )

    async def close(self) -> None:
        """Write what is left and the cursor, then release the directory."""
        self._cursor_dirty = True
        await self.flush()
        if self.marks is not None:
            rows = self.marks.snapshot()
            if rows is not None:
                await asyncio.to_thread(self.marks.write, rows)
        await asyncio.to_thread(self._log.close)
