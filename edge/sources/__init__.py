"""Acquisition sources: each reads one equipment connection and reports samples and liveness.

A source gets a ``SourceSink`` and runs until cancelled. It never raises for the equipment
being unreachable: it reports the source down, retries with capped backoff, and reports
it up again once readings flow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from common.backoff import Backoff
from common.wire import Sample

__all__ = ["Backoff", "Source", "SourceSink", "now_ns"]


class SourceSink(Protocol):
    def sample(self, sample: Sample) -> None: ...

    def liveness(self, source: str, up: bool, detail: str = "") -> None: ...

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once every sample reported so far is safely stored."""

    def rejected(self, source: str, culprit: str, reason: str) -> None:
        """A reading that cannot become a sample (names the node id or topic)."""


class Source(Protocol):
    id: str

    async def run(self, sink: SourceSink) -> None: ...

    def health(self) -> dict[str, object]: ...


def now_ns() -> int:
    return time.time_ns()
