"""Between the sources and the buffer: what a source reports into (``SourceSink``).

:class:`BufferSink` puts samples and liveness events into the buffer and wakes the uplink;
:class:`CountingSink` is one source's view of it, counting what that source delivers (the
health report's per-source rates).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from common.wire import LivenessEvent, Sample
from edge.buffer.store import SampleBuffer
from edge.signal_watch import SignalWatch
from edge.sources import SignalKey, SourceSink, now_ns

log = logging.getLogger(__name__)


class BufferSink:
    """What sources report into: samples and liveness go to the buffer, rejections are counted."""

    def __init__(self, buffer: SampleBuffer, wakeup: asyncio.Event) -> None:
        self.buffer = buffer
        self.wakeup = wakeup
        self.rejected_count = 0
        self.last_rejections: dict[str, str] = {}

    def sample(self, sample: Sample) -> None:
        self.buffer.add_sample(sample)
        self.wakeup.set()

    def liveness(self, source: str, up: bool, detail: str = "") -> None:
        log.info("source %s is %s: %s", source, "up" if up else "down", detail)
        self.buffer.add_liveness(LivenessEvent(source=source, ts=now_ns(), up=up, detail=detail))
        self.wakeup.set()

    def after_durable(self, callback: Callable[[], None]) -> None:
        self.buffer.after_durable(callback)

    def rejected(
        self, source: str, culprit: str, reason: str, signals: Collection[SignalKey] = ()
    ) -> None:
        self.rejected_count += 1
        if len(self.last_rejections) < 1000 or culprit in self.last_rejections:
            self.last_rejections[culprit] = f"{source}: {reason}"


class CountingSink:
    """A source's view of the agent's sink that counts what the source delivers, and shows
    the agent's signal watch what each signal gets (``edge/signal_watch.py``)."""

    def __init__(
        self,
        sink: SourceSink,
        source: str,
        counters: dict[str, int],
        watch: SignalWatch | None = None,
    ) -> None:
        self._sink = sink
        self._source = source
        self._counters = counters
        self._watch = watch
        counters.setdefault(source, 0)

    def sample(self, sample: Sample) -> None:
        self._counters[self._source] += 1
        if self._watch is not None:
            self._watch.sample(sample)
        self._sink.sample(sample)

    def liveness(self, source: str, up: bool, detail: str = "") -> None:
        if self._watch is not None:
            self._watch.liveness(source, up)
        self._sink.liveness(source, up, detail)

    def after_durable(self, callback: Callable[[], None]) -> None:
        self._sink.after_durable(callback)

    def rejected(
        self, source: str, culprit: str, reason: str, signals: Collection[SignalKey] = ()
    ) -> None:
        if self._watch is not None and signals:
            self._watch.rejected(source, culprit, reason, signals)
        self._sink.rejected(source, culprit, reason, signals)
