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

from collector.storage.lineprotocol import StoredSample
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
    samples: list[StoredSample] = field(default_factory=list)
    liveness: list[LivenessEvent] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    """Why samples were rejected, naming edge, batch and signal (the first few, then a count)."""
    rejected_samples: int = 0
    samples_unstorable: int = 0
    """Accepted here but refused by the line-protocol serializer (counted by the pipeline)."""
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    """Rejected samples by rule (``unknown_signal``, ``nonfinite``, ``ts_future``, ...)."""


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


def resolve_batch(
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
    out = Resolved()
    rejected = 0
    for i in range(len(cols)):
        ref = register.signal(cols.process[i], cols.signal[i])
        reason = None
        rule = ""
        if ref is None:
            rule, reason = "unknown_signal", "unknown signal"
        elif ref.plant.id != batch.plant:
            rule, reason = "foreign_signal", f"belongs to plant {ref.plant.id}"
        else:
            problem = (
                value_problem(cols.value[i], limits.string_chars)
                or timestamp_problem(cols.ts[i], now, limits.future_tolerance)
                or _times_problem(cols.recv[i], cols.server_ts[i])
            )
            if problem is not None:
                rule, reason = problem
        if reason is not None or ref is None:
            rejected += 1
            out.rejected_by_rule[rule] = out.rejected_by_rule.get(rule, 0) + 1
            if len(out.rejections) < MAX_REJECTIONS_LISTED:
                out.rejections.append(
                    f"{where} sample {i}: {_cut(cols.process[i])}/{_cut(cols.signal[i])}: {reason}"
                )
            continue
        out.samples.append(
            StoredSample(
                enterprise=batch.enterprise,
                plant=batch.plant,
                line=ref.line.id,
                process=ref.process.id,
                signal=ref.signal.id,
                ts_ns=cols.ts[i],
                value=cols.value[i],
                status=cols.status[i],
                recv_ns=cols.recv[i],
                server_ts_ns=cols.server_ts[i],
                edge=batch.edge,
                seq=batch.seq,
            )
        )
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
