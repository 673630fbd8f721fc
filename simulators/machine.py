"""One simulated machine: a state machine, its parameters, and the behaviour it is told to show.

Pure: no I/O, no clock. ``step(now_ns)`` advances the simulation to ``now_ns`` and returns
the samples the machine reports. Every signal is sampled on a fixed grid
(``start_ns + k * interval``) and each sample carries its grid time as source timestamp,
so the values depend only on the seed and the start time, never on how often ``step`` is
called: the same seed gives the same sequence of values.

Emission rules (they make an OPC UA subscription deliver exactly what was written):

- periodic signals report at every grid point; a float reading never repeats the previous
  reported value (sensor noise, nudged by one resolution step when rounding made it equal);
- on-change signals are checked at every grid point and report only when (value, status)
  differs from the last reported one, plus once at start.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from common.quality import BAD, GOOD, GOOD_LOCAL_OVERRIDE, UNCERTAIN
from common.register import Signal, SignalRole, UpdateKind
from common.state_models import BY_NAME, StateModel, state_model
from simulators.dynamics import Dynamics, dynamics_for, is_counter
from simulators.standard_values import mode_name, state_name, unreportable

Value = float | int | str | bool


class Behaviour(StrEnum):
    HEALTHY = "healthy"
    """Runs and reports Good data on every signal."""
    OFFLINE = "offline"
    """Reports nothing (from ``after`` on)."""
    STOPS_UPDATING = "stops_updating"
    """Reports normally until ``after``, then nothing: the values freeze."""
    BAD_QUALITY = "bad_quality"
    """Parameters report status Bad (0x80000000); the value is still sent."""
    UNCERTAIN = "uncertain"
    """Parameters report status Uncertain (0x40000000)."""
    OVERRIDE = "override"
    """Parameters report Good_LocalOverride (0x00960000): a value forced by hand."""
    MANUAL_MODE = "manual_mode"
    """The mode signal reports manual; the machine still runs and reports Good data."""
    INTERMITTENT = "intermittent"
    """Reports only during the first ``duty`` fraction of every ``period``."""


QUALITY_STATUS: dict[Behaviour, int] = {
    Behaviour.BAD_QUALITY: BAD,
    Behaviour.UNCERTAIN: UNCERTAIN,
    Behaviour.OVERRIDE: GOOD_LOCAL_OVERRIDE,
}
"""Status codes of the behaviours that change the quality of the affected signals."""

SILENCING = frozenset({Behaviour.OFFLINE, Behaviour.STOPS_UPDATING, Behaviour.INTERMITTENT})
"""Behaviours that suppress reports of the affected signals (all signals by default)."""


@dataclass(frozen=True)
class BehaviourPlan:
    """What a machine does wrong, when it starts, and which signals it touches."""

    behaviour: Behaviour = Behaviour.HEALTHY
    after: float = 0.0
    """Seconds after the start at which the behaviour begins (healthy before)."""
    period: float | None = None
    """intermittent: the cycle length in seconds."""
    duty: float | None = None
    """intermittent: the fraction of each period during which the machine reports."""
    signals: frozenset[str] | None = None
    """The signals affected; None for the default set (see ``affects``)."""

    def __post_init__(self) -> None:
        if self.after < 0:
            raise ValueError(f"after must not be negative, got {self.after}")
        if self.behaviour is Behaviour.INTERMITTENT:
            if self.period is None or self.period <= 0:
                raise ValueError("intermittent needs a positive period")
            if self.duty is None or not 0.0 < self.duty < 1.0:
                raise ValueError("intermittent needs a duty strictly between 0 and 1")

    def affects(self, spec: SignalSpec) -> bool:
        """Whether this plan changes ``spec``: the listed signals, or by default the
        parameters (quality behaviours), the mode signals (manual_mode) or every signal
        (offline, stops_updating, intermittent)."""
        if self.behaviour is Behaviour.HEALTHY:
            return False
        if self.signals is not None:
            if self.behaviour is Behaviour.MANUAL_MODE:
                return spec.id in self.signals and spec.role is SignalRole.MODE
            return spec.id in self.signals
        if self.behaviour in QUALITY_STATUS:
            return spec.role is SignalRole.PARAMETER
        if self.behaviour is Behaviour.MANUAL_MODE:
            return spec.role is SignalRole.MODE
        return True


class MachineState(StrEnum):
    IDLE = "IDLE"
    RUNNING = "RUNNING"
    FAULT = "FAULT"
    MAINTENANCE = "MAINTENANCE"


AUTO = "AUTO"


@dataclass(frozen=True)
class SignalSpec:
    """What the machine needs to know about one of its signals."""

    id: str
    role: SignalRole
    interval: float = 1.0
    """Seconds between grid points."""
    update: UpdateKind = UpdateKind.PERIODIC
    manual_values: tuple[str | int | bool, ...] = ("MANUAL",)
    profile: str | None = None
    """The standard model a state or mode signal follows (``common/state_models.py``): the
    machine reports its states and modes in the model's words
    (``simulators/standard_values.py``) instead of ``MachineState`` / ``manual_values``."""
    numbering: tuple[tuple[str, int], ...] = ()
    """With ``profile``: the server's numbers for the model's names (else the standard's)."""
    numbered: bool = False
    """With ``profile``: report the model's numbers, not its names (its equipment serves an
    enumeration: ``simulators/opcua_machines.py``)."""

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"signal {self.id}: interval must be positive, got {self.interval}")
        if self.role is SignalRole.MODE and not self.manual_values:
            raise ValueError(f"mode signal {self.id}: manual_values is empty")
        if self.profile is None:
            if self.numbering or self.numbered:
                raise ValueError(f"signal {self.id}: numbering or numbered without a profile")
            return
        try:
            model = state_model(self.profile, str(self.role))
        except ValueError as exc:
            raise ValueError(f"signal {self.id}: {exc}") from None
        problem = unreportable(model, self.numbers)
        if problem is not None:
            raise ValueError(f"signal {self.id}: {problem}")

    @property
    def model(self) -> StateModel | None:
        """The profile's model."""
        return None if self.profile is None else BY_NAME[self.profile]

    @property
    def numbers(self) -> dict[str, int] | None:
        """The numbers a numbered signal reports for the model's names; None: names."""
        model = self.model
        return model.numbers(dict(self.numbering)) if model is not None and self.numbered else None

    @classmethod
    def from_register(cls, signal: Signal, *, numbered: bool = False) -> SignalSpec:
        """``numbered``: the equipment serves the signal's profile as an enumeration."""
        return cls(
            signal.id,
            signal.role,
            signal.interval,
            signal.update,
            signal.manual_values,
            signal.profile,
            signal.numbering,
            numbered,
        )


def value_type(spec: SignalSpec) -> type[str] | type[int] | type[float] | type[bool]:
    """The Python type of every value the machine reports for ``spec``."""
    if spec.profile is not None:
        return int if spec.numbered else str
    if spec.role is SignalRole.STATE:
        return str
    if spec.role is SignalRole.MODE:
        return type(spec.manual_values[0])
    return int if is_counter(spec.id) else float


def _word(spec: SignalSpec, name: str) -> str | int:
    """A profile's name as the signal reports it: the name, or its number."""
    numbered = spec.numbers
    return name if numbered is None else numbered[name]


def state_value(spec: SignalSpec, state: MachineState) -> str | int:
    """What a state signal reports for ``state``: the profile's name (or number) for it,
    else the state itself."""
    model = spec.model
    return state.value if model is None else _word(spec, state_name(model, state))


def manual_value(spec: SignalSpec) -> str | int | bool:
    """What a mode signal reports in manual control: the profile's first manual name (or
    its number), else the first of ``manual_values``."""
    model = spec.model
    if model is not None:
        return _word(spec, mode_name(model, True, spec.numbers))
    return spec.manual_values[0]


def auto_value(spec: SignalSpec) -> str | int | bool:
    """A mode value that is not manual: the profile's automatic name (or its number), else
    one of the same type as the manual ones."""
    model = spec.model
    if model is not None:
        return _word(spec, mode_name(model, False))
    manual = spec.manual_values[0]
    if isinstance(manual, bool):
        return not manual
    if isinstance(manual, int):
        return next(v for v in range(len(spec.manual_values) + 1) if v not in spec.manual_values)
    return AUTO if AUTO not in spec.manual_values else "AUTOMATIC"


class Sample(NamedTuple):
    signal: str
    value: Value
    status: int
    ts: int
    """Source timestamp, ns since the epoch."""


# Mean dwell time (s) and where the machine goes next, with probabilities.
_TRANSITIONS: dict[MachineState, tuple[float, tuple[tuple[MachineState, float], ...]]] = {
    MachineState.RUNNING: (
        90.0,
        ((MachineState.IDLE, 0.75), (MachineState.FAULT, 0.15), (MachineState.MAINTENANCE, 0.10)),
    ),
    MachineState.IDLE: (15.0, ((MachineState.RUNNING, 0.95), (MachineState.MAINTENANCE, 0.05))),
    MachineState.FAULT: (20.0, ((MachineState.IDLE, 1.0),)),
    MachineState.MAINTENANCE: (45.0, ((MachineState.IDLE, 1.0),)),
}
_MIN_DWELL_S = 3.0


def interval_ns(seconds: float) -> int:
    """Grid step in whole milliseconds, so timestamps survive MQTT's ms resolution."""
    return max(1, round(seconds * 1000)) * 1_000_000


class _Channel:
    __slots__ = ("affected", "dynamics", "index", "last", "spec", "step_ns")

    def __init__(self, spec: SignalSpec, index: int, dynamics: Dynamics | None, affected: bool):
        self.spec = spec
        self.index = index
        self.step_ns = interval_ns(spec.interval)
        self.dynamics = dynamics
        self.affected = affected
        self.last: tuple[Value, int] | None = None


class Machine:
    """A machine of one process, reporting on the signals given."""

    def __init__(
        self,
        process_id: str,
        signals: Sequence[SignalSpec],
        *,
        seed: int | str,
        start_ns: int,
        plan: BehaviourPlan | None = None,
        hint: str = "",
    ) -> None:
        """``seed`` with ``process_id`` seeds every random stream; ``hint`` (process name,
        equipment) picks realistic setpoints."""
        self.process_id = process_id
        self.start_ns = start_ns
        self.plan = plan or BehaviourPlan()
        ids = [s.id for s in signals]
        if len(set(ids)) != len(ids):
            raise ValueError(f"process {process_id}: duplicate signal ids in {ids}")
        if self.plan.signals is not None:
            unknown = sorted(self.plan.signals - set(ids))
            if unknown:
                raise ValueError(f"process {process_id}: behaviour names unknown signals {unknown}")
        self._active_from = start_ns + round(self.plan.after * 1e9)
        self._period_ns = round((self.plan.period or 0.0) * 1e9)
        self._on_ns = round((self.plan.duty or 0.0) * self._period_ns)
        self._quality = QUALITY_STATUS.get(self.plan.behaviour, GOOD)

        self._channels: list[_Channel] = []
        for index, spec in enumerate(signals):
            dynamics = None
            if spec.role is SignalRole.PARAMETER:
                dynamics = dynamics_for(
                    spec.id, random.Random(f"{seed}/{process_id}/{spec.id}"), hint
                )
            self._channels.append(_Channel(spec, index, dynamics, self.plan.affects(spec)))
        self._due: list[tuple[int, int]] = [(start_ns, c.index) for c in self._channels]
        heapq.heapify(self._due)

        self._state_rng = random.Random(f"{seed}/{process_id}/state")
        self._state = MachineState.RUNNING
        self._state_since = start_ns
        self._running_ns_before = 0
        self._next_transition = start_ns + self._dwell_ns(self._state)

    @property
    def signals(self) -> tuple[SignalSpec, ...]:
        return tuple(c.spec for c in self._channels)

    @property
    def state(self) -> MachineState:
        """The state as of the last grid point processed."""
        return self._state

    def step(self, now_ns: int) -> list[Sample]:
        """Process every grid point up to ``now_ns``; return what is reported, oldest first."""
        out: list[Sample] = []
        due = self._due
        while due and due[0][0] <= now_ns:
            t, index = heapq.heappop(due)
            channel = self._channels[index]
            heapq.heappush(due, (t + channel.step_ns, index))
            self._advance_state(t)
            sample = self._sample(channel, t)
            if sample is not None:
                out.append(sample)
                channel.last = (sample.value, sample.status)
        return out

    def _sample(self, channel: _Channel, t: int) -> Sample | None:
        spec = channel.spec
        active = channel.affected and t >= self._active_from
        value = self._value(channel, t, active)
        status = self._quality if active else GOOD
        if active and self._silenced(t):
            return None  # the machine keeps running; nobody hears about it
        if spec.update is UpdateKind.ON_CHANGE:
            if channel.last == (value, status):
                return None
        elif isinstance(value, float) and channel.last is not None and channel.last[0] == value:
            # Rounding made two readings equal: a real sensor's noise would differ.
            assert channel.dynamics is not None
            value = round(value + 10.0**-channel.dynamics.decimals, channel.dynamics.decimals)
        return Sample(spec.id, value, status, t)

    def _value(self, channel: _Channel, t: int, active: bool) -> Value:
        spec = channel.spec
        if spec.role is SignalRole.STATE:
            return state_value(spec, self._state)
        if spec.role is SignalRole.MODE:
            manual = active and self.plan.behaviour is Behaviour.MANUAL_MODE
            return manual_value(spec) if manual else auto_value(spec)
        assert channel.dynamics is not None
        running = self._state is MachineState.RUNNING
        return channel.dynamics.sample(t, running, self._running_ns(t) / 1e9)

    def _silenced(self, t: int) -> bool:
        behaviour = self.plan.behaviour
        if behaviour is Behaviour.INTERMITTENT:
            return (t - self._active_from) % self._period_ns >= self._on_ns
        return behaviour in SILENCING

    def _running_ns(self, t: int) -> int:
        if self._state is MachineState.RUNNING:
            return self._running_ns_before + (t - self._state_since)
        return self._running_ns_before

    def _advance_state(self, t: int) -> None:
        while self._next_transition <= t:
            at = self._next_transition
            if self._state is MachineState.RUNNING:
                self._running_ns_before += at - self._state_since
            self._state = self._next_state(self._state)
            self._state_since = at
            self._next_transition = at + self._dwell_ns(self._state)

    def _dwell_ns(self, state: MachineState) -> int:
        mean_s = _TRANSITIONS[state][0]
        return round(max(_MIN_DWELL_S, self._state_rng.expovariate(1.0 / mean_s)) * 1e9)

    def _next_state(self, state: MachineState) -> MachineState:
        draw = self._state_rng.random()
        for target, probability in _TRANSITIONS[state][1]:
            draw -= probability
            if draw < 0:
                return target
        return _TRANSITIONS[state][1][-1][0]
