"""The on-disk record: one group commit of samples and liveness events, framed and checksummed.

Layout (little-endian)::

    "PKR1" | u32 payload length | u32 crc32 | u64 first item | u32 samples | u32 liveness | i64 min ts
    payload: zlib(JSON {"s": [[process, signal, ts, value, status, recv, server_ts(, true)], ...],
                        "l": [{"source", "ts", "up", "detail"}, ...]})

The four marker bytes let a reader find the next record after a damaged one
(``find_next``): damage costs the records it hit, not the rest of the file. Records written
before the marker existed (no "PKR1") are still read: their first four bytes are a payload
length, which can never equal the marker (it is larger than ``MAX_PAYLOAD``).

The CRC covers everything after itself (the rest of the header and the payload), so a record
cut short by ``kill -9`` or a power loss, or a header with garbage in it, is detected rather
than parsed. Items are numbered across the whole log ("item numbers": samples of a record
first, then its liveness events), which is what the acknowledgement cursor counts in.
The counts and the oldest timestamp sit in the header so a restart can index a large backlog
without decompressing it. JSON keeps a record readable with ``zlib`` + ``json`` by hand; zlib
(level 1) shrinks the repeated process and signal names several-fold for little CPU, and
releases the GIL while it works.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

from common.wire import LivenessEvent, Sample

MARKER = b"PKR1"
HEADER = struct.Struct("<IIQIIq")
_AFTER_CRC = struct.Struct("<QIIq")
MAX_PAYLOAD = 256 * 1024 * 1024
"""Larger lengths can only come from a damaged header."""
_NO_TS = -(2**63)
assert int.from_bytes(MARKER, "little") > MAX_PAYLOAD  # a legacy length never reads as one


class RecordError(ValueError):
    """A record that cannot be trusted (torn, truncated or damaged)."""


@dataclass(frozen=True)
class RecordHeader:
    length: int
    first: int
    n_samples: int
    n_liveness: int
    min_ts: int | None
    marked: bool = True
    """Written with the leading marker (False: a record from before it existed)."""

    @property
    def n_items(self) -> int:
        return self.n_samples + self.n_liveness

    @property
    def end(self) -> int:
        return self.first + self.n_items

    @property
    def header_size(self) -> int:
        return HEADER.size + (len(MARKER) if self.marked else 0)

    @property
    def size(self) -> int:
        """Bytes on disk, marker and header included."""
        return self.header_size + self.length


@dataclass(frozen=True)
class Contents:
    samples: list[Sample]
    liveness: list[LivenessEvent]


def encode(first: int, samples: list[Sample], liveness: list[LivenessEvent]) -> bytes:
    payload = zlib.compress(
        json.dumps(
            # Live samples as the seven fields they always had: an edge rolled back to an
            # older release still reads its backlog (only backfilled samples carry an 8th).
            {"s": [s if s[7] else s[:7] for s in samples], "l": [e.model_dump() for e in liveness]},
            separators=(",", ":"),
        ).encode(),
        1,
    )
    min_ts = min((s[2] for s in samples), default=_NO_TS)
    rest = _AFTER_CRC.pack(first, len(samples), len(liveness), min_ts)
    crc = zlib.crc32(payload, zlib.crc32(rest))
    return MARKER + struct.pack("<II", len(payload), crc) + rest + payload


def parse_header(data: bytes, offset: int = 0) -> tuple[RecordHeader, int]:
    """The header at ``offset`` and its CRC (checked later, against the payload)."""
    marked = data[offset : offset + len(MARKER)] == MARKER
    at = offset + len(MARKER) if marked else offset
    if len(data) - at < HEADER.size:
        raise RecordError(f"header cut short ({len(data) - at} of {HEADER.size} bytes)")
    length, crc, first, n_samples, n_liveness, min_ts = HEADER.unpack_from(data, at)
    if length > MAX_PAYLOAD:
        raise RecordError(f"implausible payload length {length}")
    header = RecordHeader(
        length, first, n_samples, n_liveness, None if min_ts == _NO_TS else min_ts, marked
    )
    return header, crc


def check(data: bytes, offset: int) -> RecordHeader:
    """Validate the record starting at ``offset`` of ``data``; RecordError if it is not whole."""
    header, crc = parse_header(data, offset)
    end = offset + header.size
    if len(data) < end:
        raise RecordError(
            f"payload cut short ({len(data) - offset - header.header_size} of "
            f"{header.length} bytes)"
        )
    after_crc = offset + header.header_size - _AFTER_CRC.size
    rest = data[after_crc : offset + header.header_size]
    if zlib.crc32(data[offset + header.header_size : end], zlib.crc32(rest)) != crc:
        raise RecordError("checksum mismatch")
    return header


def find_next(data: bytes, start: int) -> tuple[int, RecordHeader] | None:
    """The first whole, valid record at or after ``start`` (a marker whose record checks),
    or None: how a reader gets past a damaged record."""
    at = data.find(MARKER, start)
    while at >= 0:
        try:
            return at, check(data, at)
        except RecordError:
            at = data.find(MARKER, at + 1)
    return None


def decode_payload(data: bytes, offset: int, header: RecordHeader) -> Contents:
    """The samples and liveness events of an already checked record."""
    start = offset + header.header_size
    doc = json.loads(zlib.decompress(data[start : start + header.length]))
    # 7 fields in records written before backfill existed, 8 since.
    samples = [Sample(*row) for row in doc["s"]]
    liveness = [LivenessEvent.model_validate(e) for e in doc["l"]]
    if len(samples) != header.n_samples or len(liveness) != header.n_liveness:
        raise RecordError("payload does not match its header counts")
    return Contents(samples, liveness)
