"""A model of what InfluxDB holds as data arrives, answering the reader's questions.

For property tests of the live loop's slice bookkeeping (pure logic: which slices may have
changed, what the next slice starts from). Every datum carries the moment it is stored;
the model answers as of ``clock``: a point per series and timestamp, the last stored one
winning, as InfluxDB keeps them. The answers follow ``collector/storage/reader.py``
statement by statement; tests/collector/storage and the fault suite hold the real reader against a
real server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.storage.reader import LivenessRow, SignalColumns
from common.wire import EDGE_SOURCE


@dataclass
class ModelStorage:
    enterprise: str = "ent"
    clock: int = 0
    stored_samples: list[tuple[int, str, str, str, int, int, Any, int]] = field(
        default_factory=list
    )
    """(stored at, plant, process, signal, ts, status, value, recv)"""
    receipts: list[tuple[int, str, str, str, int, int]] = field(default_factory=list)
    """(stored at, plant, process, signal, receive time, source time re-sent)"""
    events: list[tuple[int, str, str, LivenessRow]] = field(default_factory=list)
    """(stored at, plant, source, event)"""
    marks: list[tuple[int, str, int]] = field(default_factory=list)
    """(stored at, plant, watermark)"""

    # -- the reader's interface ---------------------------------------------------------

    async def samples(
        self,
        start_ns: int,
        end_ns: int,
        lookback_ns: int,
        enterprise: str,
        plant: str | None = None,
        processes: Sequence[str] | None = None,
    ) -> dict[tuple[str, str], SignalColumns]:
        points: dict[tuple[str, str], dict[int, tuple[int, Any, int]]] = {}
        for stored, pl, process, signal, ts, status, value, recv in sorted(
            self.stored_samples, key=lambda s: s[0]
        ):
            if processes is not None and process not in processes:
                continue
            if stored <= self.clock and enterprise == self.enterprise and plant in (None, pl):
                points.setdefault((process, signal), {})[ts] = (status, value, recv)
        out: dict[tuple[str, str], SignalColumns] = {}
        for key, by_ts in points.items():
            inside = sorted(t for t in by_ts if start_ns <= t < end_ns)
            before = [t for t in by_ts if start_ns - lookback_ns <= t < start_ns]
            chosen = ([max(before)] if before and lookback_ns > 0 else []) + inside
            if not chosen:
                continue
            cols = out[key] = SignalColumns()
            for t in chosen:
                status, value, recv = by_ts[t]
                cols.ts.append(t)
                cols.status.append(status)
                cols.value.append(value)
                cols.recv.append(recv)
        return out

    async def reconfirmations(
        self,
        start_ns: int,
        end_ns: int,
        enterprise: str,
        plant: str | None = None,
        processes: Sequence[str] | None = None,
    ) -> dict[tuple[str, str], list[tuple[int, int]]]:
        points: dict[tuple[str, str], dict[int, int]] = {}
        for stored, pl, process, signal, at, of in sorted(self.receipts, key=lambda r: r[0]):
            if processes is not None and process not in processes:
                continue
            if stored <= self.clock and plant in (None, pl) and start_ns <= at < end_ns:
                points.setdefault((process, signal), {})[at] = of
        return {key: sorted(by_at.items()) for key, by_at in points.items()}

    async def liveness(
        self,
        start_ns: int,
        end_ns: int,
        enterprise: str,
        lookback_ns: int = 0,
        edge_until_ns: int | None = None,
        plant: str | None = None,
    ) -> dict[tuple[str, str], list[LivenessRow]]:
        series: dict[tuple[str, str], dict[int, LivenessRow]] = {}
        for stored, pl, source, event in sorted(self.events, key=lambda e: e[0]):
            if stored <= self.clock and plant in (None, pl):
                series.setdefault((pl, source), {})[event.ts] = event
        out: dict[tuple[str, str], list[LivenessRow]] = {}
        for key, by_ts in series.items():
            chosen = {t for t in by_ts if start_ns <= t < end_ns}
            if key[1] == EDGE_SOURCE and edge_until_ns is not None:
                chosen |= {t for t in by_ts if end_ns <= t < edge_until_ns}
                earlier = [t for t in by_ts if t < start_ns]
                if earlier:
                    chosen.add(max(earlier))
            if lookback_ns > 0:
                earlier = [t for t in by_ts if start_ns - lookback_ns <= t < start_ns]
                if earlier:
                    chosen.add(max(earlier))
            if chosen:
                out[key] = [by_ts[t] for t in sorted(chosen)]
        return out

    async def watermarks(self, since_ns: int, enterprise: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for stored, plant, mark in self.marks:
            if stored <= self.clock and mark >= since_ns:
                out[plant] = max(out.get(plant, 0), mark)
        return out
