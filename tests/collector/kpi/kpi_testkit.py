"""Hand-made sample series, windows and runs for the KPI tests (registers: ``tests.registers``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.kpi import SignalSamples, Thresholds, Window
from common.quality import GOOD

S = 1_000_000_000
"""One second in ns."""
T0 = 1_795_852_800 * S
"""2026-11-28T08:00:00Z: window starts are offsets from here."""


def at(seconds: float) -> int:
    return T0 + round(seconds * S)


def window(start_s: float = 0, end_s: float = 100) -> Window:
    return Window(at(start_s), at(end_s))


DEFAULTS = Thresholds()


def series(
    start_s: float,
    end_s: float,
    every_s: float = 1.0,
    status: int = GOOD,
    value: Any = 1.0,
) -> SignalSamples:
    """Samples every ``every_s`` seconds from ``start_s`` (inclusive) to ``end_s`` (exclusive)."""
    ts: list[int] = []
    t = at(start_s)
    end = at(end_s)
    step = round(every_s * S)
    while t < end:
        ts.append(t)
        t += step
    return SignalSamples(ts, [status] * len(ts), [value] * len(ts))


def points(*items: tuple[float, int] | tuple[float, int, Any]) -> SignalSamples:
    """Samples at given offsets: ``(seconds, status)`` or ``(seconds, status, value)``."""
    ts = [at(item[0]) for item in items]
    status = [item[1] for item in items]
    value = [item[2] if len(item) > 2 else 1.0 for item in items]
    return SignalSamples(ts, status, value)


def concat(*parts: SignalSamples) -> SignalSamples:
    ts: list[int] = []
    status: list[int] = []
    value: list[Any] = []
    for part in parts:
        ts += part.ts
        status += part.status
        value += part.value
    return SignalSamples(ts, status, value)


def on_change_state(start_s: float = -10.0, value: Any = "RUNNING") -> SignalSamples:
    """One good state sample before the window: held for the whole window."""
    return points((start_s, GOOD, value))


def iso(seconds: float) -> str:
    """The instant ``at(seconds)`` as ISO 8601 text for register downtime entries."""
    return (datetime(2026, 11, 28, 8, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()
