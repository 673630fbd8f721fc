"""What the edge and the collector accept from outside: size limits and hostile-value rules.

One place for the defaults and the rules, so the device payload parser (edge) and the
uplink resolver (collector) judge a value the same way. Pure: no I/O. The reasoning for
each rule and limit is in docs/hostile-input.md.

A rule returns a :class:`Problem` (a short stable code for counters, and a message naming
the value) or None; callers add the culprit (topic, edge, signal) and count the code.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from common.durations import Duration

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

DEVICE_PAYLOAD_MAX_BYTES = 64 * 1024
"""A device message larger than this is rejected unread (a sensor reading is a few bytes)."""
UPLINK_PAYLOAD_MAX_BYTES = 16 * 1024**2
"""An uplink batch larger than this is dead-lettered unread."""
BATCH_MAX_SAMPLES = 100_000
"""The edge's largest ``batch_max_samples``; a batch with more is dead-lettered."""
BATCH_MAX_LIVENESS = 10_000
STRING_MAX_CHARS = 1024
"""Longest string value stored; longer ones are rejected (never truncated: a cut string is
a different value)."""
FUTURE_TOLERANCE_S = 3600.0
"""How far ahead of the receiver's clock a source timestamp may be (clock skew)."""
MAX_EDGES = 1000
"""Distinct edge agents the collector keeps state for."""
REPORT_MAX_BYTES = 1024**2
"""An edge's health report or state message larger than this is ignored unread."""
REGISTER_MAX_BYTES = 64 * 1024**2
"""A register (or scenario) file larger than this is refused before it is read. A
20,000-process register is 5 to 20 MB; loading takes about 80 times the file's size in
memory (5 GB at this limit), so the limit bounds what a start-up can cost."""

_SHOWN_CHARS = 60


class Problem(NamedTuple):
    rule: str
    """Stable code, used as a counter label: ``nonfinite``, ``int_range``, ..."""
    message: str


def shown(value: object) -> str:
    """``repr`` cut short: hostile values must not make hostile log lines."""
    text = repr(value)
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}… ({len(text)} chars)"


def value_problem(value: object, max_string: int = STRING_MAX_CHARS) -> Problem | None:
    """Why ``value`` cannot be stored as a sample value, or None when it can."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return Problem("int_range", f"integer {shown(value)} does not fit in int64")
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return Problem("nonfinite", f"value {value} cannot be stored (NaN and ±inf are not)")
        return None
    if isinstance(value, str):
        if len(value) > max_string:
            return Problem(
                "string_length",
                f"string of {len(value)} characters is longer than the limit of {max_string}",
            )
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return Problem(
                    "string_encoding",
                    f"string {shown(value)} holds a lone surrogate and is not valid UTF-8",
                )
        return None
    return Problem("type", f"{type(value).__name__} {shown(value)} is not a number/bool/string")


def timestamp_problem(
    ts_ns: object, now_ns: int, future_tolerance_s: float = FUTURE_TOLERANCE_S
) -> Problem | None:
    """Why ``ts_ns`` is not a plausible source time when received at ``now_ns``, or None."""
    if isinstance(ts_ns, bool) or not isinstance(ts_ns, int):
        return Problem("ts_type", f"timestamp {shown(ts_ns)} is not integer nanoseconds")
    if ts_ns < 0:
        return Problem("ts_before_1970", f"timestamp {ts_ns} ns is before 1970")
    if ts_ns > min(now_ns + int(future_tolerance_s * 1e9), INT64_MAX - 1):
        return Problem(
            "ts_future",
            f"timestamp {shown(ts_ns)} ns is more than {future_tolerance_s:g}s ahead of "
            f"the receive time {now_ns}",
        )
    return None


class UplinkLimits(BaseModel):
    """The collector's limits on what edges send (``COLLECTOR_LIMITS__<NAME>``)."""

    model_config = ConfigDict(extra="forbid")

    payload_bytes: int = Field(UPLINK_PAYLOAD_MAX_BYTES, ge=1024)
    """Larger uplink messages are dead-lettered (first bytes only) and acknowledged."""
    batch_samples: int = Field(BATCH_MAX_SAMPLES, ge=1)
    """A batch with more samples is dead-lettered whole and acknowledged."""
    batch_liveness: int = Field(BATCH_MAX_LIVENESS, ge=1)
    """A batch with more liveness events is dead-lettered whole and acknowledged."""
    string_chars: int = Field(STRING_MAX_CHARS, ge=1)
    """A longer string value rejects its sample; a longer liveness detail is cut to it."""
    future_tolerance: Duration = FUTURE_TOLERANCE_S
    """A sample stamped further ahead of the collector's clock is rejected."""
    edges: int = Field(MAX_EDGES, ge=1)
    """Edge agents tracked (sequence, health); more are still ingested but not tracked."""
    report_bytes: int = Field(REPORT_MAX_BYTES, ge=1024)
    """Larger health reports and state messages are ignored (counted) and acknowledged."""
