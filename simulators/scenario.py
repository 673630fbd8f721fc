"""The scenario file: how each simulated machine behaves, and the KPI outcome it should produce.

Validated strictly, like the register: unknown keys are errors, and every process, line,
plant, enterprise and signal id is checked against the register. Errors name the file, the
line, the field and the reason::

    scenario.yaml:7: machines.a9-milling: no process 'a9-milling' in register.yaml
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.durations import Duration
from common.register import Process, SignalRole
from common.register_loader import LoadedRegister, RegisterError, load_register
from common.yaml_source import YamlSourceError, read_yaml
from simulators.machine import QUALITY_STATUS, Behaviour, BehaviourPlan


class ScenarioError(Exception):
    """A scenario that cannot be used. The message names file, line, field and reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MachineSpec(_Strict):
    behaviour: Behaviour = Behaviour.HEALTHY
    after: Duration | None = None
    """When the behaviour begins, from the simulator's start (required for stops_updating)."""
    period: Duration | None = None
    """intermittent only: the cycle length."""
    duty: float | None = Field(default=None, gt=0.0, lt=1.0)
    """intermittent only: the fraction of each period during which the machine reports."""
    signals: tuple[str, ...] | None = None
    """Restrict the behaviour to these signals of the process."""

    @model_validator(mode="after")
    def _fields_fit_behaviour(self) -> MachineSpec:
        b = self.behaviour
        if b is Behaviour.STOPS_UPDATING and self.after is None:
            raise ValueError("stops_updating needs 'after' (when the values freeze)")
        if b is Behaviour.INTERMITTENT and (self.period is None or self.duty is None):
            raise ValueError("intermittent needs 'period' and 'duty'")
        if b is not Behaviour.INTERMITTENT and (self.period is not None or self.duty is not None):
            raise ValueError(f"'period' and 'duty' only apply to intermittent, not {b.value}")
        if b is Behaviour.HEALTHY and (self.after is not None or self.signals is not None):
            raise ValueError("healthy takes no 'after' or 'signals'")
        return self

    def plan(self) -> BehaviourPlan:
        return BehaviourPlan(
            self.behaviour,
            self.after or 0.0,
            self.period,
            self.duty,
            frozenset(self.signals) if self.signals is not None else None,
        )


class ProcessOutcome(StrEnum):
    DIGITALIZED = "DIGITALIZED"
    NOT_DIGITALIZED = "NOT_DIGITALIZED"
    NOT_SCHEDULED = "NOT_SCHEDULED"


# The reason codes of docs KPI.md (rules R1-R6).
ReasonCode = Literal[
    "NO_STATE_SIGNAL",
    "PARAM_UNBOUND",
    "MANUAL_SOURCE",
    "LOW_COVERAGE",
    "STALE_DATA",
    "BAD_QUALITY",
    "UNCERTAIN",
    "OVERRIDDEN",
    "MANUAL_MODE",
]


class ExpectedProcess(_Strict):
    status: ProcessOutcome
    reasons: tuple[ReasonCode, ...] = ()
    """Every one of these must be reported."""
    may_also: tuple[ReasonCode, ...] = ()
    """These may be reported too (timing-dependent); nothing else may."""

    @model_validator(mode="after")
    def _consistent(self) -> ExpectedProcess:
        if self.status is not ProcessOutcome.NOT_DIGITALIZED and (self.reasons or self.may_also):
            raise ValueError(f"a {self.status.value} process has no reasons")
        both = sorted(set(self.reasons) & set(self.may_also))
        if both:
            raise ValueError(f"{both} listed in both reasons and may_also")
        return self


Rate = float | None


class ExpectedRates(_Strict):
    line: dict[str, Rate] = Field(default_factory=dict)
    plant: dict[str, Rate] = Field(default_factory=dict)
    enterprise: dict[str, Rate] = Field(default_factory=dict)
    """A rate in [0, 1], or null when nothing is in scope (all not scheduled)."""

    @model_validator(mode="after")
    def _in_range(self) -> ExpectedRates:
        for scope in ("line", "plant", "enterprise"):
            for key, rate in getattr(self, scope).items():
                if rate is not None and not 0.0 <= rate <= 1.0:
                    raise ValueError(f"{scope} {key}: rate {rate} is outside 0..1")
        return self


class Expected(_Strict):
    processes: dict[str, ExpectedProcess] = Field(default_factory=dict)
    rates: ExpectedRates = Field(default_factory=ExpectedRates)


class Scenario(_Strict):
    seed: int = 0
    register_file: str | None = Field(default=None, alias="register")
    """``register:`` the register file, relative to the scenario file."""
    machines: dict[str, MachineSpec] = Field(default_factory=dict)
    """Behaviour by process id; processes not listed are healthy."""
    expected: Expected = Field(default_factory=Expected)


@dataclass(frozen=True)
class LoadedScenario:
    model: Scenario
    path: Path
    register: LoadedRegister

    @property
    def seed(self) -> int:
        return self.model.seed

    def plan(self, process_id: str) -> BehaviourPlan:
        spec = self.model.machines.get(process_id)
        return spec.plan() if spec is not None else BehaviourPlan()


def load_scenario(path: str | Path, register: str | Path | None = None) -> LoadedScenario:
    """Read and check a scenario and its register.

    ``register`` overrides the scenario's ``register`` (a path as given, not relative to
    the scenario). Raises ScenarioError naming the file, line, field and reason.
    """
    path = Path(path)
    try:
        document = read_yaml(path, "scenario")
    except YamlSourceError as exc:
        raise ScenarioError(str(exc)) from None
    data = document.data if document.data is not None else {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a mapping (seed, register, machines, ...)")
    try:
        model = Scenario.model_validate(data)
    except ValidationError as exc:
        messages = document.validation_messages(exc)
        raise ScenarioError("invalid scenario\n  " + "\n  ".join(messages)) from None

    if register is not None:
        register_path = Path(register)
    elif model.register_file is not None:
        register_path = path.parent / model.register_file
    else:
        raise ScenarioError(f"{path}: register: missing (name the register file, or pass one)")
    try:
        loaded = load_register(register_path)
    except RegisterError as exc:
        raise ScenarioError(f"{document.where(('register',))}: register: {exc}") from None

    problems = _check_references(model, loaded)
    if problems:
        messages = [document.problem(loc, msg) for loc, msg in problems]
        raise ScenarioError("invalid scenario\n  " + "\n  ".join(messages))
    return LoadedScenario(model, path, loaded)


def simulated_signals(process: Process) -> tuple[str, ...]:
    """The signals of a process the simulators produce: those bound to OPC UA or MQTT."""
    return tuple(s.id for s in process.signals if s.is_automated)


Problem = tuple[tuple[Any, ...], str]


def _check_references(model: Scenario, register: LoadedRegister) -> list[Problem]:
    processes = {
        proc.id: proc
        for plant in register.model.plants
        for line in plant.lines
        for proc in line.processes
    }
    where_register = register.path.name
    problems: list[Problem] = []

    for pid, spec in model.machines.items():
        loc: tuple[Any, ...] = ("machines", pid)
        process = processes.get(pid)
        if process is None:
            problems.append((loc, f"no process {pid!r} in {where_register}"))
            continue
        problems.extend(_check_machine(loc, process, spec))

    for pid in model.expected.processes:
        loc = ("expected", "processes", pid)
        process = processes.get(pid)
        if process is None:
            problems.append((loc, f"no process {pid!r} in {where_register}"))
        elif not process.key:
            problems.append((loc, f"process {pid!r} is not a key process; the KPI ignores it"))

    known = {
        "line": {line.id for plant in register.model.plants for line in plant.lines},
        "plant": {plant.id for plant in register.model.plants},
        "enterprise": {register.enterprise_id},
    }
    rates = model.expected.rates
    for scope, ids in known.items():
        for key in getattr(rates, scope):
            if key not in ids:
                problems.append(
                    (("expected", "rates", scope, key), f"no {scope} {key!r} in {where_register}")
                )
    return problems


def _check_machine(loc: tuple[Any, ...], process: Process, spec: MachineSpec) -> list[Problem]:
    simulated = simulated_signals(process)
    behaviour = spec.behaviour
    if behaviour is Behaviour.HEALTHY:
        return []
    if not simulated:
        return [(loc, f"process {process.id!r} has no signal bound to OPC UA or MQTT to simulate")]
    by_id = {s.id: s for s in process.signals}
    if spec.signals is not None:
        problems: list[Problem] = []
        for sid in spec.signals:
            if sid not in by_id:
                problems.append(
                    ((*loc, "signals"), f"process {process.id!r} has no signal {sid!r}")
                )
            elif sid not in simulated:
                problems.append(
                    ((*loc, "signals"), f"signal {sid!r} is not bound to OPC UA or MQTT")
                )
        if problems:
            return problems
        targets = [by_id[sid] for sid in spec.signals]
    else:
        targets = [by_id[sid] for sid in simulated]
    if behaviour is Behaviour.MANUAL_MODE and not any(s.role is SignalRole.MODE for s in targets):
        return [(loc, f"manual_mode: process {process.id!r} has no automated mode signal")]
    if (
        behaviour in QUALITY_STATUS
        and spec.signals is None
        and not any(s.role is SignalRole.PARAMETER for s in targets)
    ):
        return [(loc, f"{behaviour.value}: process {process.id!r} has no automated parameter")]
    return []
