"""What the evaluator reads from storage for a stretch of time: one home for the reads, so a
recomputation of a window and the live loop's slices ask storage the same questions.

For ``[start, end)``: the samples in it, preceded per signal by the last one of the
lookback before ``start`` (or, for a slice following one computed before, the last sample
that slice saw: ``Carry``); the receipts of re-sent values of the lookback and the
stretch; the liveness events of the same span, and the edge agents' events up to an hour
past now plus the one just before (what resolves a Last Will or a new boot).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.kpi.inputs import (
    EDGE_SOURCE,
    Liveness,
    SampleKey,
    Samples,
    SignalSamples,
    SourceEvent,
)
from collector.storage.reader import InfluxQLReader, SignalColumns, Value

__all__ = [
    "EDGE_EVENTS_AHEAD_NS",
    "Carry",
    "liveness_view",
    "read_liveness",
    "read_samples",
    "samples_view",
]

EDGE_EVENTS_AHEAD_NS = 3600 * 1_000_000_000
"""Edge agent events are read up to this far past now (an edge clock ahead of ours)."""

LastSample = tuple[int, int, Value, int]
"""``(ts, status, value, recv)``."""


@dataclass
class Carry:
    """The last sample of every signal before ``end_ns``, as a computed slice saw them: the
    next slice needs no lookback query."""

    end_ns: int
    last: dict[SampleKey, LastSample] = field(default_factory=dict)


async def read_samples(
    reader: InfluxQLReader,
    enterprise: str,
    start_ns: int,
    end_ns: int,
    lookback_ns: int,
    plant: str | None = None,
    carry: Carry | None = None,
    processes: Sequence[str] | None = None,
) -> tuple[Samples, Carry, int]:
    """Samples of ``[start, end)`` with what precedes them, the carry for the stretch
    that follows, and how many samples were read from storage. With ``processes``, the
    samples (and carry) of those only."""
    use_carry = carry is not None and carry.end_ns == start_ns
    raw = await reader.samples(
        start_ns,
        end_ns,
        0 if use_carry else lookback_ns,
        enterprise,
        plant=plant,
        processes=processes,
    )
    read = sum(len(cols) for cols in raw.values())
    if use_carry:
        assert carry is not None
        oldest = start_ns - lookback_ns
        wanted = None if processes is None else set(processes)
        for key, (ts, status, value, recv) in carry.last.items():
            if ts < oldest:
                continue  # outside the lookback: a recomputation would not see it either
            if wanted is not None and key[0] not in wanted:
                continue
            cols = raw.get(key)
            if cols is None:
                cols = raw[key] = SignalColumns()
            cols.ts.insert(0, ts)
            cols.status.insert(0, status)
            cols.value.insert(0, value)
            cols.recv.insert(0, recv)
    receipts = await reader.reconfirmations(
        start_ns - lookback_ns, end_ns, enterprise, plant, processes
    )
    samples = {
        key: SignalSamples(
            ts=cols.ts,
            status=cols.status,
            value=cols.value,
            recv=cols.recv,
            reconfirmed=receipts.get(key, []),
        )
        for key, cols in raw.items()
    }
    after = Carry(
        end_ns,
        {
            key: (cols.ts[-1], cols.status[-1], cols.value[-1], cols.recv[-1])
            for key, cols in raw.items()
            if cols.ts
        },
    )
    return samples, after, read


async def read_liveness(
    reader: InfluxQLReader,
    enterprise: str,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    plant: str | None = None,
) -> Liveness:
    raw = await reader.liveness(
        start_ns, end_ns, enterprise, edge_until_ns=now_ns + EDGE_EVENTS_AHEAD_NS, plant=plant
    )
    return {
        key: [SourceEvent(e.ts, e.up, e.detail, e.boot, e.link, e.shutdown) for e in events]
        for key, events in raw.items()
    }


# Several consecutive slices are read in one go (start-up, a backlog); each is then
# evaluated from exactly what reading it alone would have returned — the views below.


def samples_view(samples: Samples, start_ns: int, end_ns: int, lookback_ns: int) -> Samples:
    """What ``read_samples`` returns for ``[start, end)`` (``end`` no later than the read),
    cut from the samples of a longer stretch of time that contains it."""
    out: dict[SampleKey, SignalSamples] = {}
    for key, data in samples.items():
        ts = data.ts
        i0 = bisect_left(ts, start_ns)
        i1 = bisect_left(ts, end_ns, i0)
        if i0 > 0 and ts[i0 - 1] >= start_ns - lookback_ns:
            i0 -= 1  # the last sample of the lookback
        if i1 <= i0:
            continue
        oldest = start_ns - lookback_ns
        out[key] = SignalSamples(
            ts=ts[i0:i1],
            status=data.status[i0:i1],
            value=data.value[i0:i1],
            recv=data.recv[i0:i1],
            reconfirmed=[r for r in data.reconfirmed if oldest <= r[0] < end_ns],
        )
    return out


def liveness_view(liveness: Liveness, start_ns: int, end_ns: int) -> Liveness:
    """What ``read_liveness`` returns for ``[start, end)``, cut from a longer read."""
    out: dict[tuple[str, str], list[SourceEvent]] = {}
    for key, events in liveness.items():
        k = bisect_left(events, start_ns, key=_ts)
        if key[1] == EDGE_SOURCE:
            chosen = list(events[max(k - 1, 0) :])  # and the one before: what preceded
        else:
            chosen = list(events[k : bisect_left(events, end_ns, k, key=_ts)])
        if chosen:
            out[key] = chosen
    return out


def _ts(event: SourceEvent) -> int:
    return event.ts
