"""The register (plant model): enterprise → plants → lines → processes → signals.

One YAML file per enterprise, validated strictly: unknown keys are errors, every reference
is checked, and a bad file fails at start-up with the file, line, field path and reason
(see ``common.register_loader``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, model_validator

from common.durations import Duration
from common.languages import Names
from common.protocols import BY_KIND, PROTOCOLS
from common.register_base import Id, SignalBinding, SourceConfig, Strict, WrittenAs
from common.state_models import state_model

if TYPE_CHECKING:
    Source = SourceConfig
    Binding = SignalBinding
else:
    # Every protocol of the registry: pydantic picks the model by ``kind``, and its errors
    # name the field of that model (common/register_loader.py drops the tag from the path).
    Source = Annotated[Union[tuple(p.source for p in PROTOCOLS)], Field(discriminator="kind")]  # noqa: UP007
    Binding = Annotated[Union[tuple(p.binding for p in PROTOCOLS)], Field(discriminator="kind")]  # noqa: UP007


class IndustryType(StrEnum):
    DISCRETE = "discrete"
    PROCESS = "process"


class SignalRole(StrEnum):
    STATE = "state"
    """Machine state (running/idle/fault/...): proves the process is under digital control."""
    MODE = "mode"
    """Control mode (auto/manual); used by rule R6."""
    PARAMETER = "parameter"
    """A key process parameter (spindle speed, temperature, ...)."""


PERIODIC_HOLD_FACTOR = 3.0
"""A periodic sample stays known for this many expected intervals (KPI.md; the default of
the KPI's ``periodic_hold_factor``)."""
ON_CHANGE_MAX_HOLD = 43200.0
"""Seconds an on-change sample stays known while its source is alive (the default of the
KPI's ``on_change_max_hold``)."""


class UpdateKind(StrEnum):
    PERIODIC = "periodic"
    """A new sample arrives every expected interval (polled, or published on a timer)."""
    ON_CHANGE = "on_change"
    """Reported by exception: may stay silent while the value is unchanged."""


MANUAL = "manual"


class Signal(Strict):
    id: Id
    """Unique within its process; names the signal in storage and in the KPI's evidence."""
    role: SignalRole
    """``state`` (the machine's state: proves the process runs under digital control),
    ``mode`` (automatic or manual, rule R6) or ``parameter`` (a process value)."""
    key: bool = True
    """For parameters: whether it is a key parameter the KPI requires."""
    source: str | None = None
    """A source id of this plant, ``manual`` for values typed in by people, or absent (unbound)."""
    interval: Duration = 1.0
    """Expected sampling interval."""
    update: UpdateKind = UpdateKind.PERIODIC
    """``periodic``: a sample every ``interval``; ``on_change``: only when the value changes
    (an on-change sample stays known much longer, see docs/kpi.md)."""
    unit: str | None = None
    """For people: shown with the values."""
    manual_values: tuple[str | int | bool, ...] = ("MANUAL",)
    """For a ``mode`` signal: the values that mean manual control."""
    profile: str | None = None
    """The standard model the values follow (``MachineOperationMode``, ``CncOperationMode``,
    ``ControllerMode``, … listed in docs/register-reference.md): for a ``mode`` signal it
    gives ``manual_values`` (then not written)."""
    numbering: Annotated[tuple[tuple[str, int], ...], WrittenAs("mapping of text to integer")] = ()
    """With ``profile``: the server's number for the model's names, written as a mapping
    (``{Production: 1, Maintenance: 2, Manual: 3}``) from its EnumStrings or EnumValues
    (``plantkpi-edge browse`` writes it). Replaces the standard's numbers; needed where the
    standard fixes none (PackML) and the values arrive as numbers."""

    binding: Binding | None = None
    """How an automated signal is read: its source's protocol's fields (``node``, ``topic``,
    ``address``, …), written flat on the signal and gathered here by the plant."""

    @model_validator(mode="before")
    @classmethod
    def _values_of_the_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("profile") is None:
            if data.get("numbering"):
                raise ValueError("numbering given without a profile: it numbers a profile's names")
            return data
        model = state_model(str(data["profile"]), str(data.get("role")))
        if "manual_values" in data:
            raise ValueError(
                f"manual_values given with profile {model.name}: the profile says which "
                "values are manual (drop one of them)"
            )
        numbering = _numbering(data.get("numbering"))
        if numbering is not None:
            model.check_numbering(numbering)
            data = {**data, "numbering": tuple(sorted(numbering.items(), key=lambda i: i[1]))}
        if model.role == "mode":
            return {**data, "manual_values": model.manual_values(numbering)}
        return data

    @model_validator(mode="before")
    @classmethod
    def _no_binding_without_source(cls, data: Any) -> Any:
        # Automated signals were bound by their plant: only the others are looked at here.
        if not isinstance(data, dict) or data.get("source") not in (None, MANUAL):
            return data
        loose = sorted(map(str, data.keys() - cls.model_fields.keys()))
        if loose and data.get("binding") is None:
            binding_fields = _binding_fields()
            if any(key in binding_fields for key in loose):
                what = (
                    "a manual signal"
                    if data.get("source") == MANUAL
                    else "a signal without a source"
                )
                raise ValueError(
                    f"{', '.join(loose)} given for {what}: name the source it is read from "
                    "(a manual signal is typed in by people and has no address)"
                )
        return data

    @model_validator(mode="after")
    def _binding_has_a_source(self) -> Signal:
        if not self.is_automated and self.binding is not None:
            raise ValueError("a binding but no source to read it from")
        return self

    @property
    def is_automated(self) -> bool:
        return self.source not in (None, MANUAL)

    def hold(
        self,
        periodic_factor: float = PERIODIC_HOLD_FACTOR,
        on_change_max: float = ON_CHANGE_MAX_HOLD,
    ) -> float:
        """Seconds a sample of this signal stays known: ``periodic_factor`` expected
        intervals for a periodic signal, ``on_change_max`` for an on-change one (the KPI's
        thresholds; the edge flags a signal silent for longer)."""
        if self.update is UpdateKind.PERIODIC:
            return periodic_factor * self.interval
        return on_change_max


def _numbering(raw: object) -> dict[str, int] | None:
    """``numbering`` as written (a mapping name → number) or as loaded (pairs)."""
    if raw is None or raw == ():
        return None
    if isinstance(raw, Mapping):
        pairs: list[Any] = list(raw.items())
    elif isinstance(raw, list | tuple):
        pairs = list(raw)
    else:
        pairs = [raw]
    try:
        numbering = {str(name): number for name, number in pairs}
    except (TypeError, ValueError):
        raise ValueError("numbering must be a mapping of names to numbers") from None
    for name, number in numbering.items():
        if not isinstance(number, int) or isinstance(number, bool):
            raise ValueError(f"numbering of {name}: {number!r} is not a whole number")
    return numbering


class Downtime(Strict):
    """A planned downtime window: the line is not scheduled from start to end."""

    start: datetime
    """With a time zone: ``2026-11-28T08:00:00Z`` or ``2026-11-28T16:00:00+08:00``."""
    end: datetime
    """After ``start``."""
    reason: str = ""
    """For people (maintenance, refurbishment)."""

    @model_validator(mode="after")
    def _ordered(self) -> Downtime:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("downtime start and end need a time zone (e.g. 2026-11-28T08:00:00Z)")
        if self.end <= self.start:
            raise ValueError("downtime end must be after its start")
        return self


class Process(Strict):
    id: Id
    """Unique in the enterprise's register."""
    name: str
    """For people, as the plant calls it."""
    names: Names = Field(default_factory=dict)
    """The name per language (``{en: …, zh: …}``): pages and reports show the reader's
    language, else ``name``, else the other language."""
    key: bool
    """A key process (关键工序): counted in the rate's denominator."""
    industry: IndustryType
    """``discrete`` (machining, assembly) or ``process`` (chemicals, heat treatment): the
    rate is also reported per industry."""
    equipment: str = ""
    """What the process runs on, for people."""
    equipment_names: Names = Field(default_factory=dict)
    """``equipment`` per language, like ``names``."""
    signals: tuple[Signal, ...] = ()
    """What proves it is under digital control: a state, its key parameters, a mode."""

    @model_validator(mode="after")
    def _unique_signals(self) -> Process:
        _require_unique("signal", [s.id for s in self.signals])
        return self

    def signals_with_role(self, role: SignalRole) -> tuple[Signal, ...]:
        return tuple(s for s in self.signals if s.role is role)


class Line(Strict):
    id: Id
    """Unique in its plant."""
    name: str = ""
    """For people."""
    names: Names = Field(default_factory=dict)
    """The name per language (``{en: …, zh: …}``): pages and reports show the reader's
    language, else ``name``, else the other language."""
    downtime: tuple[Downtime, ...] = ()
    """Planned downtime: the line's processes are not scheduled then (not judged)."""
    processes: tuple[Process, ...] = ()
    """Its processes, key or not."""


class Plant(Strict):
    id: Id
    """Unique in the register; one edge agent reads one plant (``EDGE_PLANT``)."""
    name: str = ""
    """For people."""
    names: Names = Field(default_factory=dict)
    """The name per language (``{en: …, zh: …}``): pages and reports show the reader's
    language, else ``name``, else the other language."""
    sources: tuple[Source, ...] = ()
    """The servers, brokers and devices its edge agent reads (see the protocols below)."""
    lines: tuple[Line, ...] = ()
    """Its production lines."""

    @model_validator(mode="before")
    @classmethod
    def _bindings_by_source_kind(cls, data: Any) -> Any:
        """Gather each signal's protocol fields (written flat: ``node:``, ``topic:``) into its
        ``binding``, of its source's kind. Anything else (an unknown source, a source of no
        known kind, a layout that is not a register) is left for validation to name."""
        if not isinstance(data, dict) or not isinstance(data.get("lines"), list | tuple):
            return data
        sources = data.get("sources")
        kinds = {
            source.get("id"): source.get("kind")
            for source in (sources if isinstance(sources, list | tuple) else ())
            # An id or kind that is no text (a list, a mapping) is for validation to name.
            if isinstance(source, dict) and isinstance(source.get("id"), str)
        }
        return {**data, "lines": [_bind_line(line, kinds) for line in data["lines"]]}

    @model_validator(mode="after")
    def _references_resolve(self) -> Plant:
        _require_unique("source", [s.id for s in self.sources])
        _require_unique("line", [line.id for line in self.lines])
        by_id = {s.id: s for s in self.sources}
        processes = frozenset(p.id for line in self.lines for p in line.processes)
        for source in self.sources:
            source.check_processes(self.id, processes)
        for line in self.lines:
            for process in line.processes:
                for signal in process.signals:
                    _check_binding(self.id, line.id, process.id, signal, by_id)
        return self

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)


def _binding_fields() -> frozenset[str]:
    """Every field a protocol's binding adds to a signal."""
    return frozenset(
        name for protocol in PROTOCOLS for name in protocol.binding.model_fields if name != "kind"
    )


def _bind_line(line: Any, kinds: Mapping[Any, Any]) -> Any:
    if not isinstance(line, dict) or not isinstance(line.get("processes"), list | tuple):
        return line
    processes = []
    for process in line["processes"]:
        if isinstance(process, dict) and isinstance(process.get("signals"), list | tuple):
            process = {**process, "signals": [_bind(s, kinds) for s in process["signals"]]}
        processes.append(process)
    return {**line, "processes": processes}


def _bind(signal: Any, kinds: Mapping[Any, Any]) -> Any:
    if not isinstance(signal, dict) or "binding" in signal:
        return signal
    source = signal.get("source")
    if source in (None, MANUAL) or not isinstance(source, str):
        return signal  # Signal itself refuses an address without a source
    kind = kinds.get(source)
    core = Signal.model_fields
    kept: dict[Any, Any] = {}
    binding: dict[Any, Any] = {"kind": kind}
    for key, value in signal.items():  # one pass: a register may hold 100,000 signals
        (kept if key in core else binding)[key] = value
    if not isinstance(kind, str) or kind not in BY_KIND:
        # The source is undeclared or of no known kind: that is the error to report, not
        # each of its fields.
        return kept
    kept["binding"] = binding
    return kept


def _check_binding(
    plant: str, line: str, process: str, signal: Signal, sources: dict[str, Source]
) -> None:
    where = f"plant {plant}, line {line}, process {process}, signal {signal.id}"
    if not signal.is_automated:
        return
    assert signal.source is not None
    source = sources.get(signal.source)
    if source is None:
        raise ValueError(
            f"{where}: source {signal.source!r} is not declared in this plant's sources "
            f"(declared: {sorted(sources) or 'none'}; or use 'manual')"
        )
    if signal.binding is None or signal.binding.kind != source.kind:
        raise ValueError(
            f"{where}: source {source.id!r} is {source.kind}, the signal's binding is not"
        )
    try:
        source.check_binding(signal.binding, process)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


class Enterprise(Strict):
    id: Id
    """The enterprise's id: one register file per enterprise."""
    name: str = ""
    """For people."""
    names: Names = Field(default_factory=dict)
    """The name per language (``{en: …, zh: …}``): pages and reports show the reader's
    language, else ``name``, else the other language."""
    region: str
    """The region the rate is reported to (a province, a city): the region's rates pool
    every enterprise with this region."""
    above_designated_size: bool
    """An enterprise above designated size (规模以上): the official regional rate counts
    only these."""
    declared_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    """The rate declared in the enterprise's self-assessment, shown beside the measured one."""


class Register(Strict):
    version: str | None = None
    """Declared version; when absent the content digest is the version."""
    enterprise: Enterprise
    """Who the register is of."""
    plants: tuple[Plant, ...]
    """Its plants."""

    @model_validator(mode="after")
    def _unique_ids(self) -> Register:
        _require_unique("plant", [p.id for p in self.plants])
        _require_unique(
            "process", [proc.id for p in self.plants for ln in p.lines for proc in ln.processes]
        )
        return self


def _require_unique(kind: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"duplicate {kind} id {item!r}")
        seen.add(item)
