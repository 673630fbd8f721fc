"""docs/register-reference.md, generated from the register's models: every field of every
part of a register file and of every protocol's sources and signals, with its type, its
default and what it means (the models' attribute docstrings). A test holds the committed
page to this output, so the reference cannot drift from the code.

    python -m onboarding.reference > docs/register-reference.md
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from common.protocols import PROTOCOLS
from common.register import Downtime, Enterprise, Line, Plant, Process, Register, Signal
from common.register_base import SourceConfig, WrittenAs
from common.register_classes import EquipmentClass
from common.state_models import MODELS

HEADER = """\
# Register reference

Generated from the models by `python -m onboarding.reference` (a test compares this page
with its output). A register is one YAML file per enterprise; unknown keys are errors, and
every error names the file, the line and the field. `plantkpi register check FILE` lists
every error and warning at once. Durations are written `500ms`, `1s`, `5m`, `1h`. A
complete example: `examples/demo/register.yaml`; each protocol's README
(`edge/sources/<kind>/README.md`) has a register snippet of its own.
"""

INSTANCES = """\
## process written from a class

A process entry with `class: <id>` takes the class's signals and its `equipment`,
`industry` and `key` (its own fields win), and adds:

| field | type | default | meaning |
|---|---|---|---|
| `class` | text | required | The equipment class (an id of `equipment_classes`). |
| `params` | mapping of text to text or integer | `{}` | Values of the class's placeholders: `{machine}` in a string is replaced by `params.machine`; `{base+4}` adds 4 to a whole-number parameter (a value that is only a placeholder keeps its type: `address: "{base+4}"` is a number). `{plant}`, `{line}` and `{process}` are the ids; `{{` and `}}` are braces. |
| `source` | text | — | The source of the class's signals that name none. |
| `signals` | list of signal entries | `[]` | Overrides merged into the class's signal of the same `id` (any field), or new signals. |

The loaded register is the expanded one: the KPI, storage and the register version see the
processes as if written out by hand. An error in an expanded signal names the process's
place and the class field it came from.
"""

PARTS: tuple[tuple[str, type[BaseModel], str], ...] = (
    ("register (the file)", Register, ""),
    ("enterprise", Enterprise, "`enterprise:`"),
    ("plant", Plant, "an item of `plants:`"),
    ("line", Line, "an item of a plant's `lines:`"),
    ("downtime", Downtime, "an item of a line's `downtime:` (planned: not scheduled)"),
    ("process", Process, "an item of a line's `processes:`"),
    ("signal", Signal, "an item of a process's `signals:`"),
    ("equipment class", EquipmentClass, "an entry of the file's `equipment_classes:`"),
)


def render() -> str:
    out = [HEADER]
    for title, model, where in PARTS:
        out.append(_section(f"## {title}", model, where, skip={"binding"}))
    out.append(INSTANCES)
    out.append(_state_models())
    out.append(
        "## Protocols\n\nA source's `kind` selects its protocol; a signal of that source adds "
        "the protocol's binding fields, written flat on the signal (a field of another "
        "protocol is an unknown key).\n"
    )
    for protocol in PROTOCOLS:
        kind = protocol.kind
        out.append(
            _section(
                f"### `kind: {kind}`: source",
                protocol.source,
                f"an item of a plant's `sources:` (`edge/sources/{kind}/README.md`)",
                skip=set(),
            )
        )
        out.append(
            _section(
                f"### `kind: {kind}`: signal fields",
                protocol.binding,
                f"on a signal whose `source` is a {kind} source",
                skip={"kind"},
            )
        )
    return "\n".join(out).rstrip() + "\n"


def _state_models() -> str:
    lines = [
        "## Machine state and mode models (`profile`)",
        "",
        "A signal's `profile` names the standard its values follow; for a `mode` signal it "
        "gives `manual_values` (the names, and the numbers where the standard fixes them: "
        "an OPC UA server reports the number, an MQTT device or MTConnect agent the name). "
        "A server's own numbering comes first: `numbering` (the server's EnumStrings or "
        "EnumValues, written by `plantkpi-edge browse`) replaces the standard's numbers. "
        "PackML fixes none (OPC 30050 and OPC 30060 number the states differently): a "
        "server reporting PackML numbers needs `numbering`.",
        "",
        "| profile | role | standard | values | manual for R6 | why |",
        "|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        values = ", ".join(
            f"{name}={number}" if number is not None else name for name, number in model.values
        )
        manual = ", ".join(f"`{v}`" for v in model.manual_values()) or "—"
        lines.append(
            f"| `{model.name}` | {model.role} | {_cell(model.standard)} | {_cell(values)} | "
            f"{manual} | {_cell(model.why) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def _section(title: str, model: type[BaseModel], where: str, skip: set[str]) -> str:
    lines = [title, ""]
    doc = (model.__doc__ or "").strip()
    if doc and not doc.startswith(("Usage docs", "A base class")):
        lines += [" ".join(doc.split()), ""]
    if where:
        lines += [f"Where: {where}.", ""]
    lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        lines.append(
            f"| `{name}` | {_type_of(info)} | {_default(info)} | {_cell(info.description or '')} |"
        )
    return "\n".join(lines) + "\n"


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "—"
    value = info.default
    if value is PydanticUndefined or value is None:
        return "—"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, tuple | list):
        if not value and any(isinstance(m, WrittenAs) for m in info.metadata):
            return "—"
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if value == "":
        return '`""`'
    return f"`{value}`"


def _type_of(info: FieldInfo) -> str:
    written = [m.text for m in info.metadata if isinstance(m, WrittenAs)]
    return _cell(written[0]) if written else _type(info.annotation)


def _type(annotation: Any) -> str:
    return _cell(_name(annotation))


def _name(annotation: Any) -> str:
    if annotation is Any:
        return "value"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _name(args[0])
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        if all(isinstance(a, type) and issubclass(a, SourceConfig) for a in args):
            return "a source (its `kind`: see Protocols)"
        names = [_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" (optional)" if type(None) in args else "")
    if origin in (tuple, list):
        inner = args[0] if args else Any
        return f"list of {_name(inner)}"
    if origin is dict:
        return f"mapping of {_name(args[0])} to {_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " or ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__.lower()
    name = getattr(annotation, "__name__", None) or str(annotation)
    return {"float": "number", "int": "integer", "str": "text", "bool": "true/false"}.get(
        name, name
    )


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    print(render(), end="")
