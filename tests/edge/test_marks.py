"""Where a backfill starts: the newest source time the buffer wrote per signal, kept in
``marks.json`` beside the buffer, moved only by samples on disk, and surviving a restart;
a damaged file costs the backfill, nothing else."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from common.wire import Sample
from edge.buffer import SampleBuffer
from edge.buffer.marks import FILE, SignalMarks
from tests.edge.test_buffer import config


def sample(signal: str, ts: int) -> Sample:
    return Sample("p1", signal, ts, 1.0, 0, ts + 1)


def test_a_mark_only_moves_forward_and_survives_a_save() -> None:
    marks = SignalMarks(Path("/nonexistent/marks.json"), {}, save_interval=0.0)
    marks.update([sample("a", 20), sample("a", 10), sample("b", 5)])
    assert (marks.get(("p1", "a")), marks.get(("p1", "b")), marks.get(("p1", "c"))) == (20, 5, None)


def test_marks_are_saved_and_read_back(tmp_path: Path) -> None:
    marks = SignalMarks.load(tmp_path)
    marks.update([sample("a", 20)])
    marks.save()
    assert SignalMarks.load(tmp_path).get(("p1", "a")) == 20
    assert not list(tmp_path.glob("*.tmp"))


def test_a_damaged_file_is_named_and_means_no_marks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILE).write_text('[["p1", "a", 2')
    with caplog.at_level(logging.WARNING):
        marks = SignalMarks.load(tmp_path)
    assert len(marks) == 0
    assert FILE in caplog.text and "no backfill" in caplog.text


async def test_the_buffer_moves_marks_when_it_writes_and_saves_them_when_it_closes(
    tmp_path: Path,
) -> None:
    buffer = SampleBuffer.open(config(tmp_path))
    buffer.marks = SignalMarks.load(tmp_path, save_interval=3600.0)
    buffer.add_sample(sample("a", 100))
    assert buffer.marks.get(("p1", "a")) is None  # not on disk yet: not stored
    await buffer.flush()
    assert buffer.marks.get(("p1", "a")) == 100
    assert SignalMarks.load(tmp_path).get(("p1", "a")) is None  # saved at most so often
    buffer.add_sample(sample("a", 200))
    await buffer.close()
    assert SignalMarks.load(tmp_path).get(("p1", "a")) == 200
