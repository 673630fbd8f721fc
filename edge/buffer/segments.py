"""The segment log on disk: blocking file work only, called by the buffer through a thread.

A directory holds ``<first item:020d>.seg`` files of marked, length-prefixed, checksummed
records (see ``records.py``), appended in order and deleted whole from the front, plus
``ack.json`` (the acknowledgement cursor, replaced atomically) and ``lock`` (one agent per
directory). Nothing is ever rewritten in place, so a crash can only leave a torn record at
the very end of the newest segment; ``open`` finds it by its checksum, truncates it away and
counts it. Damage anywhere else (a flipped byte, a lost block) costs only the records it
hit: ``open`` finds the next record by its marker, copies the damaged bytes to
``quarantine/`` and reports exactly which items were lost, as it does for a segment file
that is missing from the middle of the log.

A write never leaves part of a record behind: a failed append (a full disk) truncates the
file back to where the record began, so the next append starts on a record boundary.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from common.wire import LivenessEvent, Sample
from edge.buffer.acks import AckState
from edge.buffer.records import (
    Contents,
    RecordError,
    RecordHeader,
    check,
    decode_payload,
    encode,
    find_next,
    parse_header,
)

log = logging.getLogger(__name__)

FsyncPolicy = Literal["batch", "interval", "never"]
CURSOR_FILE = "ack.json"
SUFFIX = ".seg"
QUARANTINE = "quarantine"
QUARANTINE_FILES = 32
"""Damaged stretches kept for a post-mortem (the oldest go first)."""
MIN_SEGMENT_BYTES = 64 * 1024


class BufferDirError(RuntimeError):
    """The buffer directory cannot be used; the message names the path."""


@dataclass(frozen=True)
class RecordRef:
    segment: int
    offset: int
    header: RecordHeader
    liveness: tuple[LivenessEvent, ...] = ()
    """Decoded when the record is indexed (they are few) so a drop can carry them forward."""

    @property
    def first(self) -> int:
        return self.header.first

    @property
    def end(self) -> int:
        return self.header.end


@dataclass
class Segment:
    id: int
    path: Path
    size: int = 0
    end: int = 0


@dataclass
class Recovered:
    segments: list[Segment]
    refs: list[RecordRef]
    acks: AckState
    torn_records: int
    next_item: int
    notes: list[str] = field(default_factory=list)
    lost_items: int = 0
    """Unacknowledged items found unreadable (damaged records, missing segment files)."""


class SegmentLog:
    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int,
        fsync: FsyncPolicy,
        fsync_interval: float,
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self._fd: int | None = None
        """The active segment, opened O_APPEND: raw writes, so a failed one can be undone."""
        self._active_segment: Segment | None = None
        self._opened: Segment | None = None
        """Opened by a rotation whose first append has not succeeded yet."""
        self._cursor_synced = 0.0
        self._lock: IO[bytes] | None = None
        self._unsynced = False
        self._last_sync = time.monotonic()
        self.fsyncs = 0

    # -- start-up -------------------------------------------------------------------------

    def open(self) -> Recovered:
        """Lock the directory, read the cursor, index every segment, cut a torn tail."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = (self.directory / "lock").open("a+b")
        except OSError as exc:
            raise BufferDirError(f"edge buffer directory {self.directory}: {exc}") from None
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise BufferDirError(
                f"edge buffer directory {self.directory} is in use by another edge agent"
            ) from None
        self._lock = lock
        notes: list[str] = []
        self._fit_segments_to_disk(notes)
        acks = self._read_cursor(notes)
        segments: list[Segment] = []
        refs: list[RecordRef] = []
        torn = lost = 0
        paths = sorted(self.directory.glob(f"*{SUFFIX}"))
        for i, path in enumerate(paths):
            try:
                seg_id = int(path.stem)
            except ValueError:
                notes.append(f"{path.name}: not a segment name, ignored")
                continue
            newest = i == len(paths) - 1
            segment, found, damaged, missing = self._index(path, seg_id, acks, newest, notes)
            torn += damaged
            lost += missing
            refs += found
            if segment.size == 0:
                path.unlink()
                continue
            if segments and segment.id > segments[-1].end:
                # Items between two segments are gone: a file deleted from the middle, or
                # damage that ran to the end of the previous one.
                gone = acks.unacked_in(segments[-1].end, segment.id)
                if gone:
                    lost += gone
                    notes.append(
                        f"items {segments[-1].end}–{segment.id - 1} before {path.name} are "
                        f"missing ({gone} unacknowledged lost)"
                    )
            segments.append(segment)
        last_end = segments[-1].end if segments else 0
        next_item = max(last_end, acks.acked, acks.live_acked)
        if segments and acks.acked < segments[0].id:
            # Acknowledged segments were deleted before the cursor reached the disk.
            acks.drop_below(segments[0].id)
        return Recovered(segments, refs, acks, torn, next_item, notes, lost)

    def _fit_segments_to_disk(self, notes: list[str]) -> None:
        """A segment is what a full disk gives up at once: keep it to an eighth of the
        filesystem, or one segment could be the whole backlog (16 MiB on a 2 MiB disk)."""
        try:
            fs = os.statvfs(self.directory)
        except OSError:
            return
        fitting = max(MIN_SEGMENT_BYTES, fs.f_blocks * fs.f_frsize // 8)
        if self.segment_bytes > fitting:
            notes.append(
                f"segments of {self.segment_bytes} bytes (EDGE_BUFFER_SEGMENT_BYTES) on a "
                f"filesystem of {fs.f_blocks * fs.f_frsize} bytes: using {fitting}, an eighth "
                "of it, so that a full disk drops the oldest data, not all of it"
            )
            self.segment_bytes = fitting

    def _index(
        self, path: Path, seg_id: int, acks: AckState, newest: bool, notes: list[str]
    ) -> tuple[Segment, list[RecordRef], int, int]:
        """Index one segment file: (segment, its unacknowledged records, damaged records,
        unacknowledged items lost). A torn tail of the newest segment (a crash in the
        middle of a write, never handed out) is cut; other damage is skipped to the next
        record and quarantined."""
        data = path.read_bytes()
        segment = Segment(seg_id, path, 0, seg_id)
        refs: list[RecordRef] = []
        damaged = lost = 0
        offset = 0
        while offset < len(data):
            try:
                header = check(data, offset)
                liveness: tuple[LivenessEvent, ...] = ()
                if header.n_liveness and header.end > acks.acked:
                    liveness = tuple(decode_payload(data, offset, header).liveness)
            except (RecordError, ValueError) as exc:
                damaged += 1
                found = find_next(data, offset + 1)
                if found is None and newest:
                    notes.append(f"{path.name}: torn record at byte {offset} ({exc}), cut")
                    with path.open("r+b") as handle:
                        handle.truncate(offset)
                    break
                resume = found[0] if found is not None else len(data)
                self._quarantine(path, offset, data[offset:resume], notes)
                if found is not None:
                    next_first = found[1].first
                    gone = acks.unacked_in(segment.end, next_first)
                    lost += gone
                    notes.append(
                        f"{path.name}: damaged bytes {offset}–{resume - 1} ({exc}): items "
                        f"{segment.end}–{next_first - 1} lost ({gone} unacknowledged); "
                        f"reading on from byte {resume}"
                    )
                    segment.end = next_first
                else:
                    notes.append(f"{path.name}: damaged from byte {offset} to its end ({exc})")
                offset = resume
                continue
            if header.end > acks.acked:
                refs.append(RecordRef(seg_id, offset, header, liveness))
            segment.end = header.end
            offset += header.size
        segment.size = path.stat().st_size  # bytes on disk, damaged ones included
        return segment, refs, damaged, lost

    def _quarantine(self, path: Path, offset: int, damaged: bytes, notes: list[str]) -> None:
        """Keep damaged bytes for a post-mortem instead of deleting them (bounded)."""
        folder = self.directory / QUARANTINE
        try:
            folder.mkdir(exist_ok=True)
            (folder / f"{path.stem}.{offset:012d}.bad").write_bytes(damaged)
            kept = sorted(folder.glob("*.bad"))
            for old in kept[: max(0, len(kept) - QUARANTINE_FILES)]:
                old.unlink()
        except OSError as exc:
            notes.append(f"{path.name}: damaged bytes at {offset} not quarantined ({exc})")

    def _read_cursor(self, notes: list[str]) -> AckState:
        """The cursor; an empty or damaged one (a power cut after an unsynced rename) counts
        as none: everything on disk is sent again (the collector stores it idempotently)."""
        path = self.directory / CURSOR_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            return AckState()
        except OSError as exc:
            raise BufferDirError(f"{path}: {exc}") from None
        try:
            return AckState.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            notes.append(
                f"{CURSOR_FILE} is {'empty' if not text.strip() else 'damaged'} ({exc}); "
                "treated as missing: every item on disk will be sent again"
            )
            return AckState()

    # -- writing --------------------------------------------------------------------------

    def append(
        self, first: int, samples: list[Sample], liveness: list[LivenessEvent]
    ) -> tuple[RecordRef, Segment | None]:
        """Write one record; returns it and the segment it opened (if it opened one).

        Raises OSError (a full disk) with nothing of the record left on disk."""
        data = encode(first, samples, liveness)
        segment = self._active_segment
        if segment is None or self._fd is None or segment.size >= self.segment_bytes:
            segment = self._rotate(first)
        assert self._fd is not None
        offset = segment.size
        try:
            _write_all(self._fd, data)  # into the page cache: from here it survives kill -9
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, offset)
            raise
        segment.size += len(data)
        header, _ = parse_header(data)
        segment.end = header.end
        self._unsynced = True
        if self.fsync == "batch":
            self._sync()
        else:
            self.sync_if_due()
        opened, self._opened = self._opened, None
        return RecordRef(segment.id, offset, header, tuple(liveness)), opened

    def _rotate(self, first: int) -> Segment:
        self.retire_active()
        path = self.directory / f"{first:020d}{SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        size = os.fstat(self._fd).st_size
        if size:  # left by a failed attempt at this very record: start it again
            os.ftruncate(self._fd, 0)
        self._active_segment = self._opened = Segment(first, path, 0, first)
        if self.fsync != "never":
            self._sync_dir()  # the new file's name must survive a power loss too
        return self._active_segment

    def retire_active(self) -> None:
        """Close the segment being appended to; the next append opens a new one (so the
        closed one can be deleted: when fully acknowledged, or dropped on a full disk)."""
        if self._fd is not None:
            try:
                if self.fsync != "never" and self._unsynced:
                    os.fsync(self._fd)
                    self.fsyncs += 1
            finally:
                os.close(self._fd)
                self._fd = None
                self._unsynced = False
        self._active_segment = None

    @property
    def active_id(self) -> int | None:
        return self._active_segment.id if self._active_segment else None

    def sync_if_due(self) -> None:
        if (
            self._unsynced
            and self.fsync == "interval"
            and time.monotonic() - self._last_sync >= self.fsync_interval
        ):
            self._sync()

    def _sync(self) -> None:
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
            self.fsyncs += 1
        self._unsynced = False
        self._last_sync = time.monotonic()

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_cursor(self, acks: AckState) -> None:
        """Replace ``ack.json`` atomically. Losing an update only means resending
        (at-least-once). The new file is synced before the rename and the directory after
        it (every time with ``batch``, at most every ``fsync_interval`` with ``interval``),
        so a power cut leaves the old cursor or the new one; should it leave an empty file
        anyway, ``open`` treats it as missing. Raises OSError (a full disk) with the old
        cursor in place and no temporary file left."""
        path = self.directory / CURSOR_FILE
        tmp = path.with_suffix(".tmp")
        sync = self.fsync == "batch" or (
            self.fsync == "interval"
            and time.monotonic() - self._cursor_synced >= self.fsync_interval
        )
        try:
            with tmp.open("w") as handle:
                json.dump(acks.to_json(), handle)
                handle.flush()
                if sync:
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if sync:
            self._sync_dir()
            self._cursor_synced = time.monotonic()

    def delete(self, segment: Segment) -> None:
        if segment.id == self.active_id:
            raise ValueError("the active segment is never deleted")
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()

    # -- reading --------------------------------------------------------------------------

    def read(self, refs: list[RecordRef]) -> list[Contents | None]:
        """The contents of each record; None where its segment is gone (dropped meanwhile)."""
        out: list[Contents | None] = []
        handles: dict[int, IO[bytes] | None] = {}
        try:
            for ref in refs:
                if ref.segment not in handles:
                    try:
                        handles[ref.segment] = (
                            self.directory / f"{ref.segment:020d}{SUFFIX}"
                        ).open("rb")
                    except FileNotFoundError:
                        handles[ref.segment] = None
                handle = handles[ref.segment]
                if handle is None:
                    out.append(None)
                    continue
                handle.seek(ref.offset)
                data = handle.read(ref.header.size)
                try:
                    check(data, 0)
                    out.append(decode_payload(data, 0, ref.header))
                except RecordError as exc:
                    log.error(
                        "edge buffer: record at %d of segment %d: %s", ref.offset, ref.segment, exc
                    )
                    out.append(None)
        finally:
            for h in handles.values():
                if h is not None:
                    h.close()
        return out

    def close(self) -> None:
        self.retire_active()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
