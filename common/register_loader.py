"""The single place that reads a register file.

Errors name the file, the line, the field path and the reason, e.g.::

    plant.yaml:42: plants[0].lines[1].processes[2].signals[0].interval:
        '1 sec' is not a duration (examples: 500ms, 1s, 5m, 1h)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from common.register import Line, Plant, Process, Register, Signal


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
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RegisterError(f"{path}: cannot read register: {exc.strerror}") from exc
    return parse_register(raw, path)


def parse_register(raw: bytes, path: Path) -> LoadedRegister:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegisterError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise RegisterError(f"{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise RegisterError(
            f"{path}: the register must be a mapping with 'enterprise' and 'plants'"
        )
    lines = _line_index(node)
    try:
        model = Register.model_validate(data)
    except ValidationError as exc:
        raise RegisterError(_format_errors(path, exc, lines)) from None
    signals = {
        (process.id, signal.id): SignalRef(plant, line, process, signal)
        for plant in model.plants
        for line in plant.lines
        for process in line.processes
        for signal in process.signals
    }
    return LoadedRegister(model, path, hashlib.sha256(raw).hexdigest(), signals)


def _format_errors(path: Path, exc: ValidationError, lines: dict[tuple[Any, ...], int]) -> str:
    messages = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        line = _nearest_line(loc, lines)
        where = f"{path}:{line}" if line else str(path)
        field_path = _render_loc(loc) or "(top level)"
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown key (check the spelling; unknown keys are not ignored)"
        messages.append(f"{where}: {field_path}: {reason}")
    return "invalid register\n  " + "\n  ".join(messages)


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the discriminator value ('opcua', 'mqtt') into union locations.
    return part in ("opcua", "mqtt")


def _render_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nearest_line(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _line_index(node: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """Map each field path to the 1-based line where it starts in the YAML text."""
    index: dict[tuple[Any, ...], int] = {}

    def walk(current: yaml.Node, path: tuple[Any, ...]) -> None:
        index[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                child = (*path, key.value)
                index[child] = key.start_mark.line + 1
                walk(value, child)
                index[child] = key.start_mark.line + 1
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return index
