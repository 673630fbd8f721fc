"""The edge buffer keeps order, gives unacknowledged batches back, and counts what it drops."""

from __future__ import annotations

from common.wire import LivenessEvent
from edge.buffer import SampleBuffer


def record(i: int) -> tuple[str, str, int, float, int, int, None]:
    return ("p", "s", i, float(i), 0, i, None)


def test_take_commit_and_give_back_keep_order() -> None:
    buffer = SampleBuffer(max_samples=1000)
    for i in range(10):
        buffer.add_sample(record(i))
    buffer.add_liveness(LivenessEvent(source="plc", ts=1, up=True))
    taken = buffer.take(4)
    assert [r[2] for r in taken.samples] == [0, 1, 2, 3]
    assert len(taken.liveness) == 1
    buffer.give_back()  # not acknowledged
    again = buffer.take(6)
    assert [r[2] for r in again.samples] == [0, 1, 2, 3, 4, 5]
    assert len(again.liveness) == 1
    buffer.commit()
    rest = buffer.take(100)
    assert [r[2] for r in rest.samples] == [6, 7, 8, 9]
    assert rest.columns().ts == [6, 7, 8, 9]


def test_full_buffer_drops_oldest_and_counts() -> None:
    buffer = SampleBuffer(max_samples=1000)
    for i in range(1500):
        buffer.add_sample(record(i))
    stats = buffer.stats()
    assert stats.dropped == 500 and stats.depth == 1000 and stats.oldest_ts == 500
    assert stats.accepted == 1500


def test_in_flight_counts_against_the_bound() -> None:
    buffer = SampleBuffer(max_samples=1000)
    for i in range(1000):
        buffer.add_sample(record(i))
    buffer.take(600)
    for i in range(1000, 1100):
        buffer.add_sample(record(i))
    assert buffer.stats().dropped == 100
    buffer.give_back()
    taken = buffer.take(2000)
    # The in-flight batch comes back first, then the newest; the dropped ones are gone.
    assert [r[2] for r in taken.samples][:3] == [0, 1, 2]
    assert len(taken.samples) == 1000
