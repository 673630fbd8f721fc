"""Check an uplink batch against the register and turn it into storage records. Pure.

A batch is trusted only as far as the register vouches for it: its topic, enterprise,
plant and every sample's (process, signal) must be in the register, in that plant.
Samples that are not are rejected one by one (counted and named); the rest are accepted.
So are samples whose value or timestamp breaks a hostile-input rule of ``common.limits``
(NaN/±inf, integers beyond int64, over-long strings, times before 1970 or too far ahead):
one bad sample never takes the good ones of its batch down with it. A batch over the
sample or liveness count limit is refused whole (:class:`LimitExceeded`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from collector.storage.lineprotocol import Series, StoredSample
from common.limits import (
    INT64_MAX,
    INT64_MIN,
    Problem,
    UplinkLimits,
    shown,
    timestamp_problem,
    value_problem,
)
from common.register_loader import LoadedRegister
from common.topics import EdgeTopic
from common.wire import EDGE_SOURCE, LivenessEvent, UplinkBatch


class BatchRejected(ValueError):
    """The whole batch is unusable (wrong topic, unknown enterprise or plant)."""


class LimitExceeded(BatchRejected):
    """The batch is over a size limit; ``limit`` names it (an ``UplinkLimits`` field)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass
class Resolved:
    batch: UplinkBatch | None = None
    rows: list[int] = field(default_factory=list)
    """The accepted samples: indices into ``batch.samples``."""
    series: list[Series] = field(default_factory=list)
    """The tags of each accepted sample (``rows[k]``'s are ``series[k]``), from the register."""
    liveness: list[LivenessEvent] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    """Why samples were rejected, naming edge, batch and signal (the first few, then a count)."""
    rejected_samples: int = 0
    samples_unstorable: int = 0
    """Accepted here but refused by the line-protocol serializer (counted by the pipeline)."""
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    """Rejected samples by rule (``unknown_signal``, ``nonfinite``, ``ts_future``, ...)."""

    @property
    def samples(self) -> list[StoredSample]:
        """The accepted samples one by one (the pipeline serializes the columns instead)."""
        if self.batch is None:
            return []
        cols, batch = self.batch.samples, self.batch
        backfilled = frozenset(cols.backfill)
        return [
            StoredSample(
                enterprise=tags[0],
                plant=tags[1],
                line=tags[2],
                process=tags[3],
                signal=tags[4],
                ts_ns=cols.ts[i],
                value=cols.value[i],
                status=cols.status[i],
                recv_ns=cols.recv[i],
                server_ts_ns=cols.server_ts[i],
                edge=batch.edge,
                seq=batch.seq,
                backfill=i in backfilled,
            )
            for i, tags in zip(self.rows, self.series, strict=True)
        ]


MAX_REJECTIONS_LISTED = 20
_SHOWN_ID_CHARS = 80


def _cut(text: str) -> str:
    """An id as sent, cut short: rejection messages must stay small whatever arrives."""
    return text if len(text) <= _SHOWN_ID_CHARS else f"{text[:_SHOWN_ID_CHARS]}…"


DEFAULT_LIMITS = UplinkLimits()


def _times_problem(recv: int, server_ts: int | None) -> Problem | None:
    """The receive and server times are stored as int64 fields."""
    for name, ts in (("recv", recv), ("server_ts", server_ts)):
        if ts is not None and not INT64_MIN <= ts <= INT64_MAX:
            return Problem("time_range", f"{name} {shown(ts)} does not fit in int64")
    return None


def _series(
    register: LoadedRegister, enterprise: str, plant: str, key: tuple[str, str]
) -> Series | tuple[str, str]:
    """The tags of signal ``key`` of ``plant``, or (rule, reason) when it is not one."""
    ref = register.signal(*key)
    if ref is None:
        return ("unknown_signal", "unknown signal")
    if ref.plant.id != plant:
        return ("foreign_signal", f"belongs to plant {ref.plant.id}")
    return (enterprise, plant, ref.line.id, ref.process.id, ref.signal.id)


def resolve_batch(  # noqa: C901 (one pass over the samples is the hot path: each rule is a branch in it, not a call per sample)
    batch: UplinkBatch,
    topic: EdgeTopic,
    registers: dict[str, LoadedRegister],
    *,
    now_ns: int | None = None,
    limits: UplinkLimits = DEFAULT_LIMITS,
) -> Resolved:
    """``now_ns`` is the receive time future timestamps are judged against (default: now)."""
    where = f"edge {_cut(batch.edge)} batch {batch.seq}"
    now = time.time_ns() if now_ns is None else now_ns
    if (batch.enterprise, batch.plant, batch.edge) != (topic.enterprise, topic.plant, topic.edge):
        raise BatchRejected(
            f"{where}: claims {_cut(batch.enterprise)}/{_cut(batch.plant)}/{_cut(batch.edge)} "
            "but arrived on "
            f"{topic.enterprise}/{topic.plant}/{topic.edge}"
        )
    register = registers.get(batch.enterprise)
    if register is None:
        raise BatchRejected(
            f"{where}: enterprise {batch.enterprise!r} is not in any loaded register"
        )
    plant_sources = {s.id for p in register.model.plants if p.id == batch.plant for s in p.sources}
    if not any(p.id == batch.plant for p in register.model.plants):
        raise BatchRejected(f"{where}: plant {batch.plant!r} is not in register {register.path}")

    cols = batch.samples
    if len(cols) > limits.batch_samples:
        raise LimitExceeded(
            "batch_samples",
            f"{where}: {len(cols)} samples exceed the limit of {limits.batch_samples} per batch",
        )
    if len(batch.liveness) > limits.batch_liveness:
        raise LimitExceeded(
            "batch_liveness",
            f"{where}: {len(batch.liveness)} liveness events exceed the limit of "
            f"{limits.batch_liveness} per batch",
        )
    out = Resolved(batch)
    rejected = 0
    rows, series = out.rows, out.series
    # Checked once per signal, not per sample: (process, signal) -> tags, or why not.
    known: dict[tuple[str, str], Series | tuple[str, str]] = {}
    enterprise, plant = batch.enterprise, batch.plant
    ts_col, value_col, recv_col, server_col = cols.ts, cols.value, cols.recv, cols.server_ts
    ts_max = min(now + int(limits.future_tolerance * 1e9), INT64_MAX - 1)
    for i, key in enumerate(zip(cols.process, cols.signal, strict=True)):
        tags = known.get(key)
        if tags is None:
            tags = known[key] = _series(register, enterprise, plant, key)
        reason = None
        rule = ""
        if len(tags) == 2:
            rule, reason = tags
        else:
            value, ts, recv, server_ts = value_col[i], ts_col[i], recv_col[i], server_col[i]
            # The common case in one test, the rules one by one otherwise (same outcome).
            if (
                (
                    (type(value) is float and value - value == 0.0)
                    or (type(value) is int and INT64_MIN <= value <= INT64_MAX)
                )
                and type(ts) is int
                and 0 <= ts <= ts_max
                and type(recv) is int
                and INT64_MIN <= recv <= INT64_MAX
                and (server_ts is None or INT64_MIN <= server_ts <= INT64_MAX)
            ):
                rows.append(i)
                series.append(tags)
                continue
            problem = (
                value_problem(value, limits.string_chars)
                or timestamp_problem(ts, now, limits.future_tolerance)
                or _times_problem(recv, server_ts)
            )
            if problem is not None:
                rule, reason = problem
        if reason is not None:
            rejected += 1
            out.rejected_by_rule[rule] = out.rejected_by_rule.get(rule, 0) + 1
            if len(out.rejections) < MAX_REJECTIONS_LISTED:
                out.rejections.append(
                    f"{where} sample {i}: {_cut(key[0])}/{_cut(key[1])}: {reason}"
                )
            continue
        rows.append(i)
        series.append(tags)  # type: ignore[arg-type]
    out.rejected_samples = rejected
    if rejected > len(out.rejections):
        out.rejections.append(f"{where}: {rejected - len(out.rejections)} more samples rejected")
    for event in batch.liveness:
        if event.source != EDGE_SOURCE and event.source not in plant_sources:
            out.rejections.append(f"{where}: liveness for unknown source {shown(event.source)}")
            continue
        bad_ts = timestamp_problem(event.ts, now, limits.future_tolerance)
        if bad_ts is not None:
            out.rejections.append(f"{where}: liveness of {event.source}: {bad_ts.message}")
            continue
        if len(event.detail) > limits.string_chars:
            # A detail is a human explanation, not a measurement: cut, and say so.
            cut = event.detail[: limits.string_chars]
            event = event.model_copy(update={"detail": f"{cut}… (cut at {limits.string_chars})"})
        out.liveness.append(event)
    return out
