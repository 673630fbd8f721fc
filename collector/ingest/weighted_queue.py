"""A FIFO bounded by the weight of what it holds (lines to write), not by its length.

The collector's ingest queue used to be bounded at 200 batches: with uplink batches of
5,000 samples that is a million lines (hundreds of MB) before the consumer waits. A batch
of 50,000 samples and an edge's state message are not the same burden, so the bound is in
lines. One producer (the consumer, which handles one message at a time) and one consumer
(the writer task).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class WeightedQueue(Generic[T]):
    def __init__(self, max_weight: int) -> None:
        if max_weight < 1:
            raise ValueError(f"max_weight must be positive, got {max_weight}")
        self.max_weight = max_weight
        self._items: deque[tuple[T, int]] = deque()
        self._weight = 0
        self._taken = asyncio.Event()
        self._added = asyncio.Event()

    async def put(self, item: T, weight: int) -> None:
        """Wait until ``item`` fits; an item heavier than the bound goes into an empty
        queue, so no item waits for ever."""
        while self._items and self._weight + weight > self.max_weight:
            self._taken.clear()
            await self._taken.wait()
        self._items.append((item, weight))
        self._weight += weight
        self._added.set()

    async def get(self) -> T:
        while not self._items:
            self._added.clear()
            await self._added.wait()
        return self.get_nowait()

    def get_nowait(self) -> T:
        """Raises ``asyncio.QueueEmpty`` when there is nothing."""
        if not self._items:
            raise asyncio.QueueEmpty
        item, weight = self._items.popleft()
        self._weight -= weight
        self._taken.set()
        return item

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    @property
    def weight(self) -> int:
        """The total weight queued now."""
        return self._weight
