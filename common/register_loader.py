"""The single place that reads a register file.

Errors name the file, the line, the field path and the reason, e.g.::

    plant.yaml:42: plants[0].lines[1].processes[2].signals[0].interval:
        '1 sec' is not a duration (examples: 500ms, 1s, 5m, 1h)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from common.garbage import garbage_collector_paused
from common.protocols import BY_KIND
from common.register import Line, Plant, Process, Register, Signal
from common.register_classes import ClassError, locate
from common.register_classes import expand as expand_classes
from common.yaml_source import YamlSourceError, parse_yaml, read_limited


class RegisterError(Exception):
    """A register file that cannot be used. The message names file, line, field and reason."""


@dataclass(frozen=True)
class SignalRef:
    """Where a signal sits in the plant model, resolved once at load time."""

    plant: Plant
    line: Line
    process: Process
    signal: Signal


@dataclass(frozen=True)
class LoadedRegister:
    model: Register
    path: Path
    digest: str
    """sha256 of the file's bytes: changes whenever the file does."""
    _signals: dict[tuple[str, str], SignalRef] = field(repr=False, compare=False)

    @property
    def version(self) -> str:
        """The declared version, or the digest's first 12 hex digits."""
        return self.model.version or f"sha256:{self.digest[:12]}"

    @property
    def enterprise_id(self) -> str:
        return self.model.enterprise.id

    def signal(self, process_id: str, signal_id: str) -> SignalRef | None:
        return self._signals.get((process_id, signal_id))

    def plant(self, plant_id: str) -> Plant:
        for plant in self.model.plants:
            if plant.id == plant_id:
                return plant
        known = ", ".join(p.id for p in self.model.plants)
        raise RegisterError(f"{self.path}: no plant {plant_id!r} (plants: {known})")

    def signals(self) -> list[SignalRef]:
        return list(self._signals.values())


def load_register(path: str | Path) -> LoadedRegister:
    """Read and check a register; a file over REGISTER_MAX_BYTES is refused unread."""
    path = Path(path)
    try:
        raw = read_limited(path, "register")
    except YamlSourceError as exc:
        raise RegisterError(str(exc)) from None
    return parse_register(raw, path)


def parse_register(raw: bytes, path: Path) -> LoadedRegister:
    with garbage_collector_paused():
        return _parse_register(raw, path)


def _parse_register(raw: bytes, path: Path) -> LoadedRegister:
    try:
        document = parse_yaml(raw, path)
    except YamlSourceError as exc:
        raise RegisterError(str(exc)) from None
    if not isinstance(document.data, dict):
        raise RegisterError(
            f"{path}: the register must be a mapping with 'enterprise' and 'plants'"
        )
    try:
        data, origins = expand_classes(document)
    except ClassError as exc:
        raise RegisterError(str(exc)) from None
    try:
        model = Register.model_validate(data)
    except ValidationError as exc:
        # pydantic puts the discriminator value ('opcua', 'mqtt', …) into the locations of a
        # source's and a binding's fields, and a binding's fields stand on the signal itself.
        messages = document.validation_messages(
            exc,
            ignore=("binding", *BY_KIND),
            problem=lambda loc, reason: locate(document, origins, loc, reason),
        )
        raise RegisterError("invalid register\n  " + "\n  ".join(messages)) from None
    signals = {
        (process.id, signal.id): SignalRef(plant, line, process, signal)
        for plant in model.plants
        for line in plant.lines
        for process in line.processes
        for signal in process.signals
    }
    return LoadedRegister(model, path, hashlib.sha256(raw).hexdigest(), signals)
