"""The seeded fault schedule: which component is killed when, and for how long (pure).

A stream of ``stream_s`` seconds is cut into one slot per fault, after a quiet warm-up
(the pipeline must be flowing before the first kill, or the first fault tests start-up,
not recovery) and before a quiet tail (the last restart must happen while the stream
still runs, so recovery is exercised under load). Each fault happens at a random moment
of its slot and lasts a random pause; a fault always ends before the next slot starts,
so at most one component is down at a time and each failure is attributable.
Targets come in rounds: every round kills each target once, in a random order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Target = Literal["collector", "edge", "central_mosquitto", "influxd"]
TARGETS: tuple[Target, ...] = ("collector", "edge", "central_mosquitto", "influxd")

WARMUP_S = 5.0
"""No fault in the first seconds of the stream."""
TAIL_S = 3.0
"""No fault in the last seconds of the stream."""
MIN_PAUSE_S, MAX_PAUSE_S = 0.5, 4.0
"""How long a killed component stays down."""
RESTART_ALLOWANCE_S = 4.0
"""Kept free after a pause inside a slot: restarting a process takes a few seconds."""


@dataclass(frozen=True)
class Fault:
    target: Target
    at_s: float
    """When the kill happens, seconds after the stream started."""
    pause_s: float
    """How long the target stays down before it is restarted."""

    def describe(self) -> str:
        return f"{self.target} @ {self.at_s:.1f}s for {self.pause_s:.1f}s"


def make_schedule(seed: int, stream_s: float, n_faults: int) -> list[Fault]:
    """The faults of one run; the same seed gives the same schedule."""
    if n_faults < 1:
        raise ValueError(f"n_faults must be at least 1, got {n_faults}")
    usable = stream_s - WARMUP_S - TAIL_S
    slot = usable / n_faults
    if slot < MIN_PAUSE_S + RESTART_ALLOWANCE_S:
        raise ValueError(
            f"a {stream_s:g}s stream has no room for {n_faults} faults: each needs at least "
            f"{MIN_PAUSE_S + RESTART_ALLOWANCE_S:g}s after the {WARMUP_S:g}s warm-up "
            f"and before the {TAIL_S:g}s tail"
        )
    rng = random.Random(seed)
    order: list[Target] = []
    while len(order) < n_faults:
        round_ = list(TARGETS)
        rng.shuffle(round_)
        order += round_
    faults = []
    for i, target in enumerate(order[:n_faults]):
        pause = rng.uniform(MIN_PAUSE_S, min(MAX_PAUSE_S, slot - RESTART_ALLOWANCE_S))
        start = WARMUP_S + i * slot
        latest = start + slot - pause - RESTART_ALLOWANCE_S
        faults.append(Fault(target, round(rng.uniform(start, latest), 3), round(pause, 3)))
    return faults
