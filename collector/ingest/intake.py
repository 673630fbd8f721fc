"""Messages read from the broker and not handled yet, bounded by pausing the socket.

The consumer hands each batch to the pipeline, which waits while InfluxDB is behind. The
broker should send no more than the Receive Maximum unacknowledged, but mosquitto 2.0.11
does not keep to it once acknowledgements flow (docs/benchmarks.md, "MQTT device burst");
aiomqtt's own queue then dropped what did not fit, and a dropped batch stayed
unacknowledged, never sent again on that connection: ingestion stalled for good. Here the
socket stops being read instead, and the surplus waits in the broker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple, Protocol


class Pausable(Protocol):
    """A socket reader that can stop and restart (``common.mqtt_client.PacketReader``)."""

    @property
    def paused(self) -> bool: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class Received(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    mid: int


class Intake:
    """A FIFO of received messages; at ``limit`` of them reading pauses, and it resumes
    once the consumer has taken half."""

    def __init__(
        self, reader: Pausable, limit: int, on_pause: Callable[[], None] = lambda: None
    ) -> None:
        self._reader = reader
        self._on_pause = on_pause
        self._limit = max(1, limit)
        self._items: deque[Received] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._stopped = False
        self._awaiting_replies = 0

    def put(self, topic: str, payload: bytes, qos: int, mid: int) -> None:
        """paho's read callback: must not block."""
        self._items.append(Received(topic, payload, qos, mid))
        self._ready.set()
        if len(self._items) >= self._limit and not self._awaiting_replies:
            self._pause()

    async def get(self) -> Received | None:
        """The oldest message; ``None`` once closed."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if self._closed:
            return None
        item = self._items.popleft()
        if len(self._items) <= self._limit // 2 and not self._stopped:
            self._reader.resume()
        return item

    def stop_reading(self) -> None:
        """Read nothing more from this connection (shutting down)."""
        self._stopped = True
        if not self._awaiting_replies:
            self._reader.pause()

    @contextmanager
    def reading_for_reply(self) -> Iterator[None]:
        """Around a request whose reply (SUBACK, PUBACK) comes on this connection: the
        reply is behind whatever the broker sent before it, so reading goes on meanwhile,
        past the limit (for as long as a reply takes)."""
        self._awaiting_replies += 1
        self._reader.resume()
        try:
            yield
        finally:
            self._awaiting_replies -= 1
            if not self._awaiting_replies:
                if self._stopped:
                    self._reader.pause()
                elif len(self._items) >= self._limit:
                    self._pause()

    def _pause(self) -> None:
        if not self._reader.paused:
            self._reader.pause()
            self._on_pause()

    def close(self) -> None:
        """The connection is gone: what is left the broker sends again (unacknowledged)."""
        self._closed = True
        self._items.clear()
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)
