"""The edge buffer on a full disk (a real, small tmpfs) and on damaged files.

Found by attack: on a 2 MiB tmpfs the buffer stopped for good once the disk was full —
the only segment was never deleted even when fully acknowledged, the cursor could not be
written, a failed write left part of a record behind, and an error was logged every
0.1 s; four bytes flipped in the newest segment cut every good record after them, damage
in an older segment cost the rest of that segment, a deleted middle segment went
unreported, and an empty ``ack.json`` stopped the start-up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.wire import Sample
from edge.buffer import BufferConfig, SampleBuffer
from edge.buffer.records import MARKER, check
from edge.buffer.segments import QUARANTINE
from tests.edge.test_buffer import drain, segments, ts_of

DISK = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own: a disk that really fills up (the tests run as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def noisy(i: int) -> Sample:
    """A sample that does not compress (random text): fills a disk fast."""
    return Sample("p", "s", i, os.urandom(60).hex(), 0, i)


def config(directory: Path, **overrides: object) -> BufferConfig:
    values: dict[str, object] = {
        "directory": directory,
        "commit_interval": 0.01,
        "max_bytes": 1024**3,  # far more than the disk: the disk is what fills up
        "max_samples": 10_000_000,
        "segment_bytes": 64 * 1024,
    }
    values.update(overrides)
    return BufferConfig(**values)  # type: ignore[arg-type]


async def fill_until_full(buffer: SampleBuffer, start: int = 0, per_flush: int = 200) -> int:
    """Add and flush samples until a write is refused; returns the next sample number."""
    i = start
    while buffer.stats().write_errors == 0:
        for _ in range(per_flush):
            buffer.add_sample(noisy(i))
            i += 1
        await buffer.flush()
        assert i < 100_000, "the disk never filled up"
    return i


def whole_records(directory: Path) -> int:
    """Every byte of every segment belongs to a whole record (no partial write left)."""
    count = 0
    for path in segments(directory):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            offset += check(data, offset).size
            count += 1
    return count


async def test_on_a_full_disk_acknowledged_data_is_freed_and_service_resumes(
    small_disk: Path,
) -> None:
    # Other files leave the buffer 100 KiB; it is acknowledged as it fills (the uplink keeps
    # up), so the segment being appended to is the only one — and it was never deleted.
    (small_disk / "other-files.bin").write_bytes(b"\0" * (DISK - 100 * 1024))
    buffer_dir = small_disk / "buffer"
    cfg = config(buffer_dir, segment_bytes=16 * 1024**2, max_bytes=64 * 1024**2)
    buffer = SampleBuffer.open(cfg)
    i = 0
    while buffer.stats().write_errors == 0:
        for _ in range(200):
            buffer.add_sample(noisy(i))
            i += 1
        await buffer.flush()
        await drain(buffer)
        assert i < 100_000, "the disk never filled up"
    for k in range(i, i + 300):
        buffer.add_sample(noisy(k))
    for _ in range(5):
        await buffer.flush()
    stats = buffer.stats()
    assert stats.last_error == "" and stats.unwritten == 0, stats
    assert stats.dropped == 0  # only acknowledged data had to go
    assert set(ts_of(await drain(buffer))) >= set(range(i, i + 300))
    assert whole_records(buffer_dir) > 0  # the refused write left nothing half-written
    await buffer.close()
    again = SampleBuffer.open(cfg)
    assert again.stats().torn_records == 0 and again.stats().depth == 0  # the cursor was saved
    await again.close()


async def test_on_a_full_disk_the_oldest_unacknowledged_data_is_dropped_and_counted(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = SampleBuffer.open(config(small_disk))
    n = await fill_until_full(buffer)
    # Nothing is acknowledged (the uplink is down): keep writing, the oldest must give way.
    for round_ in range(30):
        for i in range(n + round_ * 200, n + (round_ + 1) * 200):
            buffer.add_sample(noisy(i))
        await buffer.flush()
    await buffer.flush()
    stats = buffer.stats()
    assert stats.dropped > 0 and stats.unwritten == 0 and stats.last_error == "", stats
    newest = await drain(buffer)
    assert ts_of(newest)[-1] == n + 30 * 200 - 1  # the newest data is there
    assert whole_records(small_disk) >= 0
    # Failing writes are logged rate-limited, not every flush.
    errors = [r for r in caplog.records if "No space left" in r.getMessage()]
    assert 1 <= len(errors) <= 3, len(errors)
    await buffer.close()


async def test_the_cursor_is_kept_when_it_cannot_be_written(small_disk: Path) -> None:
    buffer = SampleBuffer.open(config(small_disk))
    await fill_until_full(buffer)
    await drain(buffer)  # acknowledged, while the disk is full
    await buffer.flush()
    assert not (small_disk / "ack.tmp").exists()  # no half-written temporary left behind
    await buffer.close()
    again = SampleBuffer.open(config(small_disk))
    assert again.stats().depth == 0
    await again.close()


# --- damaged files -----------------------------------------------------------------------


async def write_records(directory: Path, batches: int, per: int = 50, **cfg: object) -> None:
    buffer = SampleBuffer.open(config(directory, **cfg))
    for b in range(batches):
        for i in range(b * per, (b + 1) * per):
            buffer.add_sample(noisy(i))
        await buffer.flush()
    buffer._log.close()


def record_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        out.append(offset)
        offset += check(data, offset).size
    return out


async def test_damage_in_the_newest_segment_costs_only_the_damaged_record(tmp_path: Path) -> None:
    await write_records(tmp_path, 10)
    (segment,) = segments(tmp_path)
    offsets = record_offsets(segment)
    data = bytearray(segment.read_bytes())
    at = offsets[4] + 40  # four bytes inside the fifth record's payload
    data[at : at + 4] = bytes(b ^ 0xFF for b in data[at : at + 4])
    segment.write_bytes(bytes(data))

    buffer = SampleBuffer.open(config(tmp_path))
    stats = buffer.stats()
    assert stats.torn_records == 1 and stats.lost_items == 50
    got = ts_of(await drain(buffer))
    assert got == [*range(200), *range(250, 500)]  # the records after the damage are kept
    quarantined = list((tmp_path / QUARANTINE).glob("*.bad"))
    assert len(quarantined) == 1 and quarantined[0].stat().st_size == offsets[5] - offsets[4]
    await buffer.close()


async def test_damage_in_an_older_segment_costs_only_the_damaged_record(tmp_path: Path) -> None:
    await write_records(tmp_path, 30, segment_bytes=16 * 1024)
    first = segments(tmp_path)[0]
    offsets = record_offsets(first)
    assert len(offsets) >= 3 and len(segments(tmp_path)) >= 3
    data = bytearray(first.read_bytes())
    data[offsets[1] : offsets[1] + 4] = b"\0\0\0\0"  # the second record's marker wiped
    first.write_bytes(bytes(data))

    buffer = SampleBuffer.open(config(tmp_path, segment_bytes=16 * 1024))
    assert buffer.stats().lost_items == 50
    got = ts_of(await drain(buffer))
    assert got == [*range(50), *range(100, 1500)]
    await buffer.close()


async def test_a_missing_middle_segment_is_reported_exactly(tmp_path: Path) -> None:
    await write_records(tmp_path, 30, segment_bytes=16 * 1024)
    files = segments(tmp_path)
    middle = files[1]
    lost = int(files[2].stem) - int(middle.stem)
    middle.unlink()
    buffer = SampleBuffer.open(config(tmp_path, segment_bytes=16 * 1024))
    assert buffer.stats().lost_items == lost
    got = ts_of(await drain(buffer))
    assert len(got) == 1500 - lost and got[0] == 0 and got[-1] == 1499
    await buffer.close()


def test_the_marker_cannot_be_mistaken_for_a_legacy_record_length() -> None:
    assert int.from_bytes(MARKER, "little") > 256 * 1024 * 1024


async def test_segments_are_kept_to_an_eighth_of_a_small_disk(small_disk: Path) -> None:
    # With the default 16 MiB segments on a 1 MiB disk, the first full disk would drop the
    # whole backlog at once (one segment).
    buffer = SampleBuffer.open(config(small_disk, segment_bytes=16 * 1024**2, max_bytes=1024**3))
    n = await fill_until_full(buffer)
    for i in range(n, n + 2000):
        buffer.add_sample(noisy(i))
        if i % 200 == 0:
            await buffer.flush()
    await buffer.flush()
    stats = buffer.stats()
    assert stats.segments > 2 and 0 < stats.dropped < n  # the oldest part went, not all
    await buffer.close()
