"""What the evaluator is fed: a window, columnar samples per signal and source liveness events.

Both the live loop and a recomputation from storage build these same values, so the
evaluator sees identical inputs either way. Timestamps are int nanoseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.wire import EDGE_SOURCE

__all__ = [
    "EDGE_SOURCE",
    "Liveness",
    "SampleKey",
    "Samples",
    "SignalSamples",
    "SourceEvent",
    "SourceKey",
    "Window",
]


@dataclass(frozen=True)
class Window:
    """The half-open evaluation window ``[start_ns, end_ns)``."""

    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        for name in ("start_ns", "end_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"window {name} must be int nanoseconds, got {value!r}")
        if self.end_ns <= self.start_ns:
            raise ValueError(
                f"window end {self.end_ns} must be after its start {self.start_ns} (ns since epoch)"
            )

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def to_dict(self) -> dict[str, int]:
        return {"start_ns": self.start_ns, "end_ns": self.end_ns}


@dataclass(frozen=True)
class SignalSamples:
    """Samples of one signal as parallel columns, ``ts`` sorted ascending.

    Besides the samples inside the window, include the last sample before the window
    start (query it with a lookback of the signal's hold limit): it tells the value at
    the window start. Older samples are harmless but unused.
    """

    ts: list[int]
    status: list[int]
    """Raw OPC UA status codes."""
    value: list[Any] = field(default_factory=list)
    """Values; only mode signals (rule R6) look at them. May be left empty for others."""
    recv: list[int] = field(default_factory=list)
    """When the edge received each sample (may be left empty). A value re-sent after an
    outage keeps its source time; a receive time after a down event re-confirms it."""
    reconfirmed: list[tuple[int, int]] = field(default_factory=list)
    """Every stored receipt of a re-sent value: ``(receive time, source time of the sample
    it re-sends)``, sorted. Unlike ``recv``, which keeps only the last receipt, these
    survive any number of re-sends (``collector/kpi/reconfirm.py``)."""

    def __post_init__(self) -> None:
        n = len(self.ts)
        if (
            len(self.status) != n
            or (self.value and len(self.value) != n)
            or (self.recv and len(self.recv) != n)
        ):
            raise ValueError(
                f"sample columns differ in length: ts {n}, status {len(self.status)}, "
                f"value {len(self.value)}, recv {len(self.recv)}"
            )

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True)
class SourceEvent:
    """A source (or the edge agent itself, source id ``EDGE_SOURCE``) went up or down."""

    ts: int
    up: bool
    detail: str = ""
    """Why, as the edge (or the collector, for the agent's own events) said it."""
    boot: int = 0
    """Edge agent events only: the agent's boot, its uplink connection number and whether it
    said goodbye (``common.wire.EdgeState``); 0/0/False for legacy events and sources."""
    link: int = 0
    shutdown: bool = False


SampleKey = tuple[str, str]
"""``(process_id, signal_id)``."""
SourceKey = tuple[str, str]
"""``(plant_id, source_id)``; the edge agent is ``(plant_id, EDGE_SOURCE)``."""
Samples = Mapping[SampleKey, SignalSamples]
Liveness = Mapping[SourceKey, Sequence[SourceEvent]]
