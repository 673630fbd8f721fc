"""How one process parameter moves over time, chosen by the signal id.

Pure and seeded: each generator draws only from the ``random.Random`` it is given, so the
same seed and the same sample times give the same values. Measurement noise is added on
top of a smooth "true" value (first-order lag towards the setpoint of the current machine
state) so that noise never accumulates into drift.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol


class Dynamics(Protocol):
    decimals: int
    """Values are rounded to this many decimals (the sensor's resolution)."""

    def sample(self, t_ns: int, running: bool, running_s: float) -> float | int:
        """The reading at ``t_ns`` (non-decreasing between calls).

        ``running`` is whether the machine is RUNNING now; ``running_s`` the seconds it
        has run since the simulation started.
        """
        ...


@dataclass(frozen=True)
class Profile:
    """A parameter that follows a setpoint while running and settles elsewhere otherwise."""

    run_low: float
    run_high: float
    """The running setpoint is drawn once per machine from [run_low, run_high]."""
    idle_fraction: float
    """The level when not running, as a fraction of the setpoint (0 for speeds, ~1 for heat)."""
    tau_s: float
    """Time constant of the first-order lag towards the target."""
    noise: float
    """Standard deviation of the measurement noise while running."""
    idle_noise: float
    """Standard deviation of the measurement noise while not running."""
    decimals: int
    low: float = 0.0
    high: float = math.inf


PROFILES: dict[str, Profile] = {
    "spindle_speed": Profile(1200, 3000, 0.0, 2.0, 4.0, 0.4, 1),
    "feed_rate": Profile(150, 800, 0.0, 2.0, 2.0, 0.2, 1),
    "temperature": Profile(60, 250, 0.92, 120.0, 0.3, 0.3, 2, low=-50.0),
    "pressure": Profile(100, 400, 0.97, 10.0, 0.4, 0.3, 2),
    "torque": Profile(8, 25, 0.0, 0.5, 0.3, 0.05, 2),
    "press_force": Profile(15, 40, 0.0, 0.5, 0.25, 0.04, 2),
    "leak_rate": Profile(0.0002, 0.002, 1.0, 60.0, 0.00003, 0.00003, 6),
    "power": Profile(20, 50, 0.02, 1.0, 0.2, 0.05, 2),
    "film_thickness": Profile(60, 90, 1.0, 30.0, 0.8, 0.8, 2),
    "viscosity": Profile(120, 300, 1.0, 300.0, 1.5, 1.5, 1),
}

# Typical setpoints (°C) by what the process is: a quench tank is not a furnace.
_TEMPERATURE_HINTS: tuple[tuple[str, float], ...] = (
    ("furnace", 920.0),
    ("carburis", 920.0),
    ("quench", 70.0),
    ("temper", 200.0),
    ("dry", 170.0),
    ("oven", 180.0),
)

COUNTER_IDS = frozenset({"part_count"})


class LagDynamics:
    def __init__(self, profile: Profile, rng: random.Random, setpoint: float | None = None):
        self._p = profile
        self._rng = rng
        self.decimals = profile.decimals
        self._setpoint = (
            setpoint if setpoint is not None else rng.uniform(profile.run_low, profile.run_high)
        )
        self._true = self._setpoint
        self._t_ns: int | None = None

    def sample(self, t_ns: int, running: bool, running_s: float) -> float:
        p = self._p
        target = self._setpoint if running else self._setpoint * p.idle_fraction
        if self._t_ns is not None:
            dt = (t_ns - self._t_ns) / 1e9
            self._true = target + (self._true - target) * math.exp(-dt / p.tau_s)
        self._t_ns = t_ns
        reading = self._true + self._rng.gauss(0.0, p.noise if running else p.idle_noise)
        if p.low == 0.0:
            reading = abs(reading)  # a speed or force at rest jitters around 0, never below
        return round(min(max(reading, p.low), p.high), p.decimals)


class RandomWalk:
    """Any parameter we have no model for: a bounded random walk in [0, 100]."""

    decimals = 3

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._x = rng.uniform(20.0, 80.0)

    def sample(self, t_ns: int, running: bool, running_s: float) -> float:
        x = self._x + self._rng.gauss(0.0, 1.0)
        if x < 0.0:
            x = -x
        if x > 100.0:
            x = 200.0 - x
        self._x = x
        return round(x, self.decimals)


class PartCounter:
    """A monotonic counter that counts one part per cycle time of running."""

    decimals = 0

    def __init__(self, rng: random.Random):
        self._base = rng.randint(1_000, 50_000)  # real counters are rarely reset
        self._cycle_s = rng.uniform(4.0, 12.0)

    def sample(self, t_ns: int, running: bool, running_s: float) -> int:
        return self._base + int(running_s // self._cycle_s)


def dynamics_for(signal_id: str, rng: random.Random, hint: str = "") -> Dynamics:
    """Pick the model for a parameter by its id (exact, else the first known id it contains).

    ``hint`` (process id, name, equipment) picks a realistic temperature setpoint.
    """
    key = _known_id(signal_id)
    if key in COUNTER_IDS:
        return PartCounter(rng)
    if key is None:
        return RandomWalk(rng)
    profile = PROFILES[key]
    setpoint = None
    if key == "temperature":
        lowered = hint.lower()
        for word, value in _TEMPERATURE_HINTS:
            if word in lowered:
                setpoint = value * rng.uniform(0.98, 1.02)
                break
    return LagDynamics(profile, rng, setpoint)


def is_counter(signal_id: str) -> bool:
    return _known_id(signal_id) in COUNTER_IDS


def _known_id(signal_id: str) -> str | None:
    lowered = signal_id.lower()
    if lowered in PROFILES or lowered in COUNTER_IDS:
        return lowered
    for key in (*PROFILES, *COUNTER_IDS):
        if key in lowered:
            return key
    return None
