"""What every source reports the same way: its liveness changes, once each, and what its
equipment refuses (an address, a data item), once each."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from edge.sources import SignalKey, SourceSink

REFUSALS_LISTED = 100
"""Refused culprits named in a source's health report (``refused``); all are reported."""


class Liveness:
    """A source's up and down reports to the sink: each change once (a source retrying its
    connection does not repeat "down"), a down logged with its reason."""

    def __init__(self, source_id: str, log: logging.Logger) -> None:
        self.source_id = source_id
        self._log = log
        self._up: bool | None = None

    def report(self, sink: SourceSink, up: bool, detail: str) -> None:
        if self._up == up:
            return
        self._up = up
        if not up and detail != "stopped":
            self._log.warning("%s", detail)
        sink.liveness(self.source_id, up, detail)


class Refusals:
    """What a source's equipment refuses: each culprit reported once — logged, and told to
    the sink with the signals it was for — and the first ``REFUSALS_LISTED`` kept by name
    for the health report (``named``)."""

    def __init__(self, source_id: str, what: str, log: logging.Logger) -> None:
        self.source_id = source_id
        self.what = what
        self._log = log
        self.named: dict[str, str] = {}
        self._seen: set[str] = set()

    def __contains__(self, culprit: object) -> bool:
        return culprit in self._seen

    def refuse(
        self, sink: SourceSink, culprit: str, reason: str, signals: Collection[SignalKey]
    ) -> None:
        if culprit in self._seen:
            return
        self._seen.add(culprit)
        if len(self.named) < REFUSALS_LISTED:
            self.named[culprit] = reason
        self._log.warning("%s %s: %s: %s", self.what, self.source_id, culprit, reason)
        sink.rejected(self.source_id, culprit, reason, signals)


def poll_health(
    endpoint: str, signals: int, poll_interval: float, stats: object, **extra: object
) -> dict[str, Any]:
    """The health report of a polled source: where, how many signals, its poll interval
    (the edge's verdict flags a poll cycle longer than it, edge/health.py), its counters."""
    return {
        "endpoint": endpoint,
        **extra,
        "signals": signals,
        "mode": "poll",
        "poll_interval_s": poll_interval,
        **vars(stats),
    }
