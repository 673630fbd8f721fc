"""Equipment classes: a machine type written once, instantiated per machine (pure).

A register may define ``equipment_classes``: per class its signals (roles, intervals,
update kinds, units, ``manual_values``, and addresses with placeholders such as
``nsu=urn:plant;s={machine}.Spindle``, ``plant/{line}/{machine}/state`` or a Modbus
``address: "{base+4}"``), and defaults for the process (``equipment``, ``industry``,
``key``, ``params``). A process names its ``class`` and its ``params``, a ``source`` for
the class's signals that name none, and may override any field of any signal (``signals``
entries are merged into the class's by ``id``; new ids are added).

Expansion happens on the file's data before the register is validated, so the loaded
register — what the KPI, storage and the register version see — is the expanded one, as
if written out by hand. An error in an expanded signal gives the line where the field was
written (the class's signal, or the instance's override), its expanded location and the
class field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from common.languages import Names
from common.register_base import Strict
from common.yaml_source import Loc, YamlDocument, render_loc

CLASSES = "equipment_classes"
INSTANCE_KEYS = ("class", "params", "source")
"""What a process written from a class adds to a process's own fields."""
BUILT_IN = ("plant", "line", "process")
"""Placeholders every instance has: the ids of its plant, line and process."""
_PLACEHOLDER = re.compile(
    r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\s*(?:([+-])\s*(\d+))?\}|(\{[^{}]*\})"
)
"""``{{`` / ``}}`` (a brace), ``{name}`` / ``{name+N}``, or (last group) anything else in
braces: an error, never left in an address as text."""
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ParamValue = str | int


class ClassError(ValueError):
    """A class or an instance that cannot be expanded; the message names where."""


class EquipmentClass(Strict):
    """A machine type: what every machine of it reads, with placeholders for what differs."""

    equipment: str = ""
    """What the machines of the class are, for people (an instance may override it)."""
    equipment_names: Names = Field(default_factory=dict)
    """``equipment`` per language (``{en: …, zh: …}``)."""
    industry: str | None = None
    """``discrete`` or ``process``, unless the instance says."""
    key: bool | None = None
    """Whether its processes are key processes, unless the instance says."""
    params: dict[str, ParamValue] = Field(default_factory=dict)
    """Default values of placeholders (an instance's ``params`` override them); names are
    letters, digits and ``_``."""
    signals: tuple[dict[str, Any], ...]
    """Signal entries as on a process, strings may hold ``{param}`` or ``{param+N}``."""


@dataclass(frozen=True)
class Origin:
    """Where an expanded signal's fields were written."""

    written: Loc
    """The class's signal (or the instance's own new signal)."""
    overridden: dict[str, Loc]
    """Field → the instance's override entry that set it."""
    cls: str


Origins = dict[Loc, Origin]
"""Location of an expanded signal → where its fields were written."""


def expand(document: YamlDocument) -> tuple[Any, Origins]:
    """The document's data with every class instance written out, and where each expanded
    signal came from. ClassError names the culprit with its file and line."""
    data = document.data
    if not isinstance(data, dict) or CLASSES not in data:
        return data, {}
    data = dict(data)
    raw_classes = data.pop(CLASSES)
    classes = _classes(raw_classes, document)
    origins: Origins = {}
    plants = data.get("plants")
    if not isinstance(plants, list):
        return data, origins
    data["plants"] = plants = copy.deepcopy(plants)
    for p, plant in enumerate(plants):
        lines = plant.get("lines") if isinstance(plant, dict) else None
        for li, line in enumerate(lines if isinstance(lines, list) else []):
            processes = line.get("processes") if isinstance(line, dict) else None
            if not isinstance(processes, list):
                continue
            for pi, process in enumerate(processes):
                if isinstance(process, dict) and "class" in process:
                    loc: Loc = ("plants", p, "lines", li, "processes", pi)
                    processes[pi] = _instance(process, loc, plant, line, classes, document, origins)
    return data, origins


def _classes(raw: Any, document: YamlDocument) -> dict[str, tuple[EquipmentClass, Loc]]:
    if not isinstance(raw, dict):
        raise ClassError(document.problem((CLASSES,), "a mapping of class id to its definition"))
    classes: dict[str, tuple[EquipmentClass, Loc]] = {}
    for name, definition in raw.items():
        loc: Loc = (CLASSES, name)
        try:
            classes[str(name)] = (EquipmentClass.model_validate(definition), loc)
        except ValidationError as exc:
            raise ClassError(
                "invalid equipment class\n  "
                + "\n  ".join(
                    document.problem((*loc, *error["loc"]), error["msg"]) for error in exc.errors()
                )
            ) from None
        cls = classes[str(name)][0]
        for param in cls.params:
            _check_param_name(param, document, (*loc, "params", param))
        for si, signal in enumerate(cls.signals):
            if not isinstance(signal.get("id"), str):
                raise ClassError(document.problem((*loc, "signals", si), "a signal needs an id"))
    return classes


def _check_param_name(name: str, document: YamlDocument, loc: Loc) -> None:
    if not _PARAM_NAME.match(name):
        raise ClassError(
            document.problem(loc, f"parameter name {name!r}: letters, digits and _ only")
        )
    if name in BUILT_IN:
        raise ClassError(
            document.problem(loc, f"{{{name}}} is always the {name}'s id: not a parameter")
        )


def _used_names(cls: EquipmentClass) -> set[str]:
    """The placeholders the class's signals use."""
    names: set[str] = set()
    for signal in cls.signals:
        for value in signal.values():
            if isinstance(value, str):
                names |= {m.group(1) for m in _PLACEHOLDER.finditer(value) if m.group(1)}
    return names


def _instance(
    process: dict[str, Any],
    loc: Loc,
    plant: dict[str, Any],
    line: dict[str, Any],
    classes: Mapping[str, tuple[EquipmentClass, Loc]],
    document: YamlDocument,
    origins: Origins,
) -> dict[str, Any]:
    name = process["class"]
    found = classes.get(str(name))
    if found is None:
        known = ", ".join(sorted(classes)) or "none"
        raise ClassError(
            document.problem((*loc, "class"), f"no equipment class {name!r} (classes: {known})")
        )
    cls, class_loc = found
    label = f"{name}, for process {process.get('id')} ({document.where(loc)})"
    params_raw = _instance_params(process, loc, cls, str(name), document)
    params: dict[str, ParamValue] = {
        "plant": str(plant.get("id", "")),
        "line": str(line.get("id", "")),
        "process": str(process.get("id", "")),
        **cls.params,
        **params_raw,
    }
    out = {k: v for k, v in process.items() if k not in (*INSTANCE_KEYS, "signals")}
    for field in ("equipment", "equipment_names", "industry", "key"):
        default = getattr(cls, field)
        if field not in out and default not in (None, "", {}):
            out[field] = default
    overrides = process.get("signals", [])
    if not isinstance(overrides, list):
        raise ClassError(document.problem((*loc, "signals"), "a list of signal entries"))
    by_id = _overrides(overrides, loc, document)
    source = process.get("source")
    signals: list[dict[str, Any]] = []
    for si, written in enumerate(cls.signals):
        where: Loc = (*class_loc, "signals", si)
        signal = _substitute(written, params, document, where, label)
        fields_from: dict[str, Loc] = {}
        override = by_id.pop(written["id"], None)
        if override is not None:
            oi, fields = override
            at: Loc = (*loc, "signals", oi)
            signal.update(_substitute(fields, params, document, at, label))
            fields_from = dict.fromkeys(fields, at)
        if source is not None and "source" not in signal:
            signal["source"] = source
        origins[(*loc, "signals", len(signals))] = Origin(where, fields_from, str(name))
        signals.append(signal)
    for oi, fields in by_id.values():
        where = (*loc, "signals", oi)
        signal = _substitute(fields, params, document, where, label)
        if source is not None and "source" not in signal:
            signal["source"] = source
        origins[(*loc, "signals", len(signals))] = Origin(where, {}, str(name))
        signals.append(signal)
    out["signals"] = signals
    return out


def _instance_params(
    process: dict[str, Any], loc: Loc, cls: EquipmentClass, name: str, document: YamlDocument
) -> dict[str, ParamValue]:
    """The instance's ``params``, checked: names the class declares or uses, text or whole
    numbers (a misspelt name would otherwise fall back to the class's default)."""
    params_raw = process.get("params", {})
    if not isinstance(params_raw, dict):
        raise ClassError(document.problem((*loc, "params"), "a mapping of name to value"))
    declared = set(cls.params) | _used_names(cls)
    for key, value in params_raw.items():
        where_param: Loc = (*loc, "params", key)
        _check_param_name(str(key), document, where_param)
        if str(key) not in declared:
            raise ClassError(
                document.problem(
                    where_param,
                    f"class {name} has no parameter {key!r} (its parameters: "
                    f"{', '.join(sorted(declared - set(BUILT_IN))) or 'none'})",
                )
            )
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ClassError(
                document.problem(where_param, f"{value!r}: a parameter is text or a whole number")
            )
    return {str(k): v for k, v in params_raw.items()}


def _overrides(
    overrides: list[Any], loc: Loc, document: YamlDocument
) -> dict[str, tuple[int, dict[str, Any]]]:
    """The instance's signal entries by id: each a mapping with an id, no id twice."""
    by_id: dict[str, tuple[int, dict[str, Any]]] = {}
    for oi, entry in enumerate(overrides):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ClassError(document.problem((*loc, "signals", oi), "a signal entry with an id"))
        if entry["id"] in by_id:
            raise ClassError(
                document.problem(
                    (*loc, "signals", oi, "id"),
                    f"signal {entry['id']!r} is overridden twice (also entry "
                    f"{by_id[entry['id']][0]})",
                )
            )
        by_id[entry["id"]] = (oi, entry)
    return by_id


def _substitute(
    fields: Mapping[str, Any],
    params: Mapping[str, ParamValue],
    document: YamlDocument,
    loc: Loc,
    class_name: object,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        out[key] = (
            _fill(value, params, document, (*loc, key), class_name)
            if isinstance(value, str)
            else copy.deepcopy(value)
        )
    return out


def _fill(
    text: str, params: Mapping[str, ParamValue], document: YamlDocument, loc: Loc, cls: object
) -> ParamValue:
    """``text`` with its placeholders filled; a value that is one ``{param}`` or
    ``{param+N}`` keeps the parameter's type (an address stays a number)."""
    whole = _PLACEHOLDER.fullmatch(text)
    if whole is not None and whole.group(1):
        return _value(whole, params, document, loc, cls)

    def one(match: re.Match[str]) -> str:
        if match.group(4):
            raise ClassError(
                document.problem(
                    loc,
                    f"class {cls}: {match.group(4)} is not a placeholder ({{name}} or "
                    "{name+N}, name of letters, digits and _; {{ and }} for braces)",
                )
            )
        if match.group(0) == "{{":
            return "{"
        if match.group(0) == "}}":
            return "}"
        return str(_value(match, params, document, loc, cls))

    return _PLACEHOLDER.sub(one, text)


def _value(
    match: re.Match[str],
    params: Mapping[str, ParamValue],
    document: YamlDocument,
    loc: Loc,
    cls: object,
) -> ParamValue:
    name, sign, number, _ = match.groups()
    if name not in params:
        known = ", ".join(sorted(params))
        raise ClassError(
            document.problem(
                loc, f"class {cls}: no parameter {name!r} for {match.group(0)} (known: {known})"
            )
        )
    value = params[name]
    if sign is None:
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise ClassError(
            document.problem(
                loc, f"class {cls}: {match.group(0)} adds to {name}={value!r}, not a whole number"
            )
        )
    return value + int(number) if sign == "+" else value - int(number)


def locate(document: YamlDocument, origins: Origins, loc: Loc, reason: str) -> str:
    """A validation error of the expanded register, told where it was written: for a
    signal that came from a class, the line of the class's field, or of the instance's
    override when the instance set that field."""
    for end in range(len(loc), 0, -1):
        origin = origins.get(loc[:end])
        if origin is not None:
            rest = loc[end:]
            written = origin.overridden.get(rest[0], origin.written) if rest else origin.written
            field = (*written, *rest)
            return (
                f"{document.where(field)}: {render_loc(loc)} "
                f"(class {origin.cls}: {render_loc(field)}): {reason}"
            )
    return document.problem(loc, reason)
