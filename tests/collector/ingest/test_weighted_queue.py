"""The ingest queue's bound is in lines: a producer waits once they would exceed it."""

from __future__ import annotations

import asyncio

import pytest

from collector.ingest.weighted_queue import WeightedQueue


async def settle() -> None:
    """Let every task that can run, run (no clock involved)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_put_waits_until_the_lines_fit_and_order_is_kept() -> None:
    queue: WeightedQueue[str] = WeightedQueue(10)
    await queue.put("a", 6)
    await queue.put("b", 4)
    assert queue.weight == 10
    third = asyncio.create_task(queue.put("c", 1))
    await settle()
    assert not third.done()  # 11 lines would not fit
    assert await queue.get() == "a"
    await third
    assert queue.weight == 5
    assert [await queue.get(), await queue.get()] == ["b", "c"]
    assert queue.empty() and queue.weight == 0


async def test_an_item_heavier_than_the_bound_goes_into_an_empty_queue() -> None:
    queue: WeightedQueue[str] = WeightedQueue(10)
    await queue.put("huge", 50)
    after = asyncio.create_task(queue.put("small", 1))
    await settle()
    assert not after.done()
    assert await queue.get() == "huge"
    await after
    assert await queue.get() == "small"


async def test_a_get_waits_for_an_item_and_can_be_cancelled_by_a_timeout() -> None:
    queue: WeightedQueue[int] = WeightedQueue(3)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02):
            await queue.get()
    await queue.put(7, 1)
    assert await queue.get() == 7


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_weight"):
        WeightedQueue(0)


async def test_get_nowait_makes_room_too() -> None:
    queue: WeightedQueue[str] = WeightedQueue(2)
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    await queue.put("a", 2)
    waiting = asyncio.create_task(queue.put("b", 2))
    await settle()
    assert not waiting.done()
    assert queue.get_nowait() == "a"
    await waiting
    assert queue.get_nowait() == "b"
