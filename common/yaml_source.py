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
        _check_expanded_size(node, path)
        data = yaml.safe_load(text)
        lines = _line_index(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise YamlSourceError(
            f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from exc
    except RecursionError:
        raise YamlSourceError(f"{path}: invalid YAML: nested too deeply") from None
    return YamlDocument(path, data, lines)


MAX_EXPANDED_NODES = 1_000_000
"""Far above any real file; aliases of aliases ("billion laughs") expand beyond it."""


def _check_expanded_size(root: yaml.Node | None, path: Path) -> None:
    """Refuse a document whose aliases expand to more nodes than MAX_EXPANDED_NODES: every
    later step (line index, validation) walks the expanded tree."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            mark = node.start_mark
            raise YamlSourceError(
                f"{path}:{mark.line + 1}: invalid YAML: an alias refers to its own anchor"
            )
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        open_nodes.discard(id(node))
        sizes[id(node)] = min(total, MAX_EXPANDED_NODES + 1)
        return sizes[id(node)]

    if root is not None and size(root) > MAX_EXPANDED_NODES:
        raise YamlSourceError(
            f"{path}: invalid YAML: aliases expand it to more than {MAX_EXPANDED_NODES} nodes"
        )


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
