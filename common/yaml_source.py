"""YAML files that people write: parsed with a line for every field, for errors that say
``file:line: field.path: reason``. Used by the register loader and the scenario loader."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

Loc = tuple[Any, ...]


class YamlSourceError(ValueError):
    """The file cannot be read or is not YAML; the message names file and line."""


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    data: Any
    lines: dict[Loc, int]

    def where(self, loc: Loc) -> str:
        """``file:line`` of the field at ``loc``, or of its nearest parent that has one."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return f"{self.path}:{line}"
        return str(self.path)

    def problem(self, loc: Loc, reason: str) -> str:
        return f"{self.where(loc)}: {render_loc(loc) or '(top level)'}: {reason}"

    def validation_messages(self, exc: ValidationError, ignore: Iterable[Any] = ()) -> list[str]:
        """One line per pydantic error; ``ignore`` drops union tags pydantic adds to paths."""
        skipped = set(ignore)
        messages = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if part not in skipped)
            reason = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                reason = "unknown key (check the spelling; unknown keys are not ignored)"
            messages.append(self.problem(loc, reason))
        return messages


def render_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path, what: str) -> YamlDocument:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlSourceError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    return parse_yaml(raw, path)


def parse_yaml(raw: bytes, path: Path) -> YamlDocument:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSourceError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise YamlSourceError(
            f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from exc
    return YamlDocument(path, data, _line_index(node))


def _line_index(node: yaml.Node | None) -> dict[Loc, int]:
    """Map each field path to the 1-based line where it starts in the YAML text."""
    index: dict[Loc, int] = {}

    def walk(current: yaml.Node, path: Loc) -> None:
        index[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                child = (*path, key.value)
                walk(value, child)
                index[child] = key.start_mark.line + 1
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return index
