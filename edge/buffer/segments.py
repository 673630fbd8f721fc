"""The segment log on disk: blocking file work only, called by the buffer through a thread.

A directory holds ``<first item:020d>.seg`` files of length-prefixed, checksummed records
(see ``records.py``), appended in order and deleted whole from the front, plus ``ack.json``
(the acknowledgement cursor, replaced atomically) and ``lock`` (one agent per directory).
Nothing is ever rewritten in place, so a crash can only leave a torn record at the very end
of the newest segment; ``open`` finds it by its checksum, truncates it away and counts it.
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

from common.wire import LivenessEvent
from edge.buffer.acks import AckState
from edge.buffer.records import (
    Contents,
    RecordError,
    RecordHeader,
    SampleRecord,
    check,
    decode_payload,
    encode,
    parse_header,
)

log = logging.getLogger(__name__)

FsyncPolicy = Literal["batch", "interval", "never"]
CURSOR_FILE = "ack.json"
SUFFIX = ".seg"


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
        self._active: IO[bytes] | None = None
        self._active_segment: Segment | None = None
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
        acks = self._read_cursor()
        segments: list[Segment] = []
        refs: list[RecordRef] = []
        torn = 0
        notes: list[str] = []
        paths = sorted(self.directory.glob(f"*{SUFFIX}"))
        for i, path in enumerate(paths):
            try:
                seg_id = int(path.stem)
            except ValueError:
                notes.append(f"{path.name}: not a segment name, ignored")
                continue
            data = path.read_bytes()
            segment = Segment(seg_id, path, 0, seg_id)
            offset = 0
            while offset < len(data):
                try:
                    header = check(data, offset)
                    liveness: tuple[LivenessEvent, ...] = ()
                    if header.n_liveness and header.end > acks.acked:
                        liveness = tuple(decode_payload(data, offset, header).liveness)
                except (RecordError, ValueError) as exc:
                    torn += 1
                    if i == len(paths) - 1:
                        notes.append(f"{path.name}: torn record at byte {offset} ({exc}), cut")
                        with path.open("r+b") as handle:
                            handle.truncate(offset)
                    else:
                        notes.append(
                            f"{path.name}: damaged record at byte {offset} ({exc}); "
                            "the rest of this segment is skipped"
                        )
                    break
                if header.end > acks.acked:
                    refs.append(RecordRef(seg_id, offset, header, liveness))
                segment.end = header.end
                offset += header.size
            segment.size = offset
            if segment.size == 0:
                path.unlink()
                continue
            segments.append(segment)
        last_end = segments[-1].end if segments else 0
        next_item = max(last_end, acks.acked, acks.live_acked)
        if segments and acks.acked < segments[0].id:
            # Acknowledged segments were deleted before the cursor reached the disk.
            acks.drop_below(segments[0].id)
        return Recovered(segments, refs, acks, torn, next_item, notes)

    def _read_cursor(self) -> AckState:
        path = self.directory / CURSOR_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            return AckState()
        except OSError as exc:
            raise BufferDirError(f"{path}: {exc}") from None
        try:
            return AckState.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise BufferDirError(f"{path}: not a buffer cursor ({exc})") from None

    # -- writing --------------------------------------------------------------------------

    def append(
        self, first: int, samples: list[SampleRecord], liveness: list[LivenessEvent]
    ) -> tuple[RecordRef, Segment | None]:
        """Write one record; returns it and the segment it opened (if it opened one)."""
        data = encode(first, samples, liveness)
        opened = None
        segment = self._active_segment
        if segment is None or self._active is None or segment.size >= self.segment_bytes:
            opened = segment = self._rotate(first)
        assert self._active is not None
        offset = segment.size
        self._active.write(data)
        self._active.flush()  # into the page cache: from here it survives a kill -9
        segment.size += len(data)
        header, _ = parse_header(data)
        segment.end = header.end
        self._unsynced = True
        if self.fsync == "batch":
            self._sync()
        else:
            self.sync_if_due()
        return RecordRef(segment.id, offset, header, tuple(liveness)), opened

    def _rotate(self, first: int) -> Segment:
        if self._active is not None:
            if self.fsync != "never":
                self._sync()
            self._active.close()
        path = self.directory / f"{first:020d}{SUFFIX}"
        self._active = path.open("ab")
        self._active_segment = Segment(first, path, 0, first)
        if self.fsync != "never":
            self._sync_dir()  # the new file's name must survive a power loss too
        return self._active_segment

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
        if self._active is not None and self._unsynced:
            os.fsync(self._active.fileno())
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
        """Replace ``ack.json`` atomically. Losing an update only means resending (at-least-once)."""
        path = self.directory / CURSOR_FILE
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as handle:
            json.dump(acks.to_json(), handle)
            if self.fsync == "batch":
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)

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
        if self._active is not None:
            if self.fsync != "never":
                self._sync()
            self._active.close()
            self._active = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None
