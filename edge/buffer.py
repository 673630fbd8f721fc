"""Bounded buffer between acquisition and the uplink.

Acquisition adds synchronously (never awaits, never blocks a source); the uplink takes a
batch, publishes it, and either commits it (acknowledged by the broker) or gives it back
to the head of the queue (not acknowledged), so order is kept and nothing is lost while
the uplink is down. When full, the oldest samples are dropped and counted: the newest
data is what the KPI window needs most, and a dropped sample is always reported.

This buffer lives in memory; the durable disk buffer is tracked in the store-and-forward
issue and will implement the same interface.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import islice

from common.wire import LivenessEvent, SampleColumns, Value

SampleRecord = tuple[str, str, int, Value, int, int, int | None]
"""(process, signal, ts, value, status, recv, server_ts)"""


@dataclass
class Taken:
    samples: list[SampleRecord]
    liveness: list[LivenessEvent]

    def columns(self) -> SampleColumns:
        cols = SampleColumns()
        for record in self.samples:
            cols.append(*record)
        return cols


@dataclass
class BufferStats:
    depth: int
    oldest_ts: int | None
    dropped: int
    accepted: int
    in_flight: int


@dataclass
class SampleBuffer:
    max_samples: int
    _samples: deque[SampleRecord] = field(default_factory=deque)
    _liveness: deque[LivenessEvent] = field(default_factory=deque)
    _in_flight: Taken | None = None
    dropped: int = 0
    accepted: int = 0

    def add_sample(self, record: SampleRecord) -> None:
        self._samples.append(record)
        self.accepted += 1
        in_flight = len(self._in_flight.samples) if self._in_flight else 0
        while len(self._samples) + in_flight > self.max_samples and self._samples:
            self._samples.popleft()
            self.dropped += 1

    def add_liveness(self, event: LivenessEvent) -> None:
        # Liveness events are few and decide what the KPI treats as known: never dropped.
        self._liveness.append(event)

    def __len__(self) -> int:
        return len(self._samples) + len(self._liveness)

    def take(self, max_samples: int) -> Taken:
        """Move up to ``max_samples`` samples (and all pending liveness) into flight."""
        if self._in_flight is not None:
            raise RuntimeError("a batch is already in flight; commit or give it back first")
        n = min(max_samples, len(self._samples))
        samples = [self._samples.popleft() for _ in range(n)]
        liveness = list(self._liveness)
        self._liveness.clear()
        self._in_flight = Taken(samples, liveness)
        return self._in_flight

    def commit(self) -> None:
        self._in_flight = None

    def give_back(self) -> None:
        """The batch was not acknowledged: put it back at the head, in order."""
        if self._in_flight is None:
            return
        taken, self._in_flight = self._in_flight, None
        self._samples.extendleft(reversed(taken.samples))
        self._liveness.extendleft(reversed(taken.liveness))
        while len(self._samples) > self.max_samples:
            self._samples.popleft()
            self.dropped += 1

    def stats(self) -> BufferStats:
        oldest = next(islice(self._samples, 0, 1), None)
        return BufferStats(
            depth=len(self._samples),
            oldest_ts=oldest[2] if oldest else None,
            dropped=self.dropped,
            accepted=self.accepted,
            in_flight=len(self._in_flight.samples) if self._in_flight else 0,
        )
