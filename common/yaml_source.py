"""YAML files that people write: parsed with a line for every field, for errors that say
``file:line: field.path: reason``. Used by the register loader and the scenario loader."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from common.garbage import garbage_collector_paused
from common.limits import REGISTER_MAX_BYTES

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

    def validation_messages(
        self,
        exc: ValidationError,
        ignore: Iterable[Any] = (),
        problem: Callable[[Loc, str], str] | None = None,
    ) -> list[str]:
        """One line per pydantic error; ``ignore`` drops union tags pydantic adds to paths;
        ``problem`` places an error (default: this file's line of its location)."""
        place = problem or self.problem
        skipped = set(ignore)
        messages = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if part not in skipped)
            reason = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                reason = "unknown key (check the spelling; unknown keys are not ignored)"
            messages.append(place(loc, reason))
        return messages


def render_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path, what: str) -> YamlDocument:
    return parse_yaml(read_limited(path, what), path)


def read_limited(path: Path, what: str) -> bytes:
    """The file's bytes, refused by its size before a byte is read when it is larger than
    REGISTER_MAX_BYTES: loading takes about 80 times the file's size in memory."""
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > REGISTER_MAX_BYTES:
                raise YamlSourceError(_too_large(path, f"{size:,} bytes"))
            # What fstat says, plus a byte to see whether there is more: read(n) allocates
            # n bytes up front, so asking for the limit would take 64 MiB for any file. A
            # pipe reports size 0 and a file may grow after fstat: then the rest, up to the
            # limit plus one byte for parse_yaml to notice and refuse.
            raw = file.read(size + 1)
            if len(raw) == size + 1:
                raw += file.read(REGISTER_MAX_BYTES + 1 - len(raw))
    except OSError as exc:
        raise YamlSourceError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    return raw


def _too_large(path: Path, size: str) -> str:
    return (
        f"{path}: the file is {size}, larger than the limit of {REGISTER_MAX_BYTES:,} bytes "
        f"({REGISTER_MAX_BYTES / 1024**2:g} MiB, common.limits.REGISTER_MAX_BYTES); "
        "refused before parsing"
    )


def parse_yaml(raw: bytes, path: Path) -> YamlDocument:
    if len(raw) > REGISTER_MAX_BYTES:
        # At least: read_limited stops one byte past the limit.
        raise YamlSourceError(_too_large(path, f"at least {len(raw):,} bytes"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSourceError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        with garbage_collector_paused():
            return _parse_text(text, path)
    except yaml.YAMLError as exc:
        raise YamlSourceError(_invalid_yaml(exc, path)) from exc
    except RecursionError:
        raise YamlSourceError(f"{path}: invalid YAML: nested too deeply") from None
    except YamlSourceError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # yaml's constructors raise these for a value its explicit tag cannot hold
        # (`!!int abc`, `!!bool maybe`, `!!timestamp abc`).
        raise YamlSourceError(
            f"{path}: invalid YAML: a value does not fit its explicit tag (!!int, !!bool, "
            f"!!timestamp, …): {type(exc).__name__} {exc}"
        ) from None


if TYPE_CHECKING or yaml.__with_libyaml__:
    from yaml import CSafeLoader as _SafeLoader
else:  # PyYAML built without libyaml: the same result, several times slower
    from yaml import SafeLoader as _SafeLoader

_STR_TAG = "tag:yaml.org,2002:str"


class _Loader(_SafeLoader):
    """yaml's safe loader, taking plain strings (most of a register) straight from their
    node: the constructor's general path (cache, tag lookup) builds the same value,
    node.value, and made construction twice as slow."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
            return node.value
        return super().construct_object(node, deep)


def _parse_text(text: str, path: Path) -> YamlDocument:
    """Compose once, check the node tree, then construct the data from that same tree."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(path, None, {})
        if "*" in text:  # an alias is written *name: without one, nothing expands
            _check_alias_expansion(root, path)
        lines = _line_index(root, path, _KeyIdentity(loader))
        return YamlDocument(path, loader.construct_document(root), lines)
    finally:
        loader.dispose()


def _invalid_yaml(exc: yaml.YAMLError, path: Path) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or exc
    if problem == "exceeded maximum nesting depth":  # libyaml's words for it
        problem = "nested too deeply"
    return f"{where}: invalid YAML: {problem}"


MAX_ALIAS_NODES = 1_000_000
"""Nodes that aliases may add to a document: far above any real file, far below what
aliases of aliases ("billion laughs") expand to. Plain size is REGISTER_MAX_BYTES's job."""


def _check_alias_expansion(root: yaml.Node, path: Path) -> None:
    """Refuse a document whose aliases add more than MAX_ALIAS_NODES nodes to it: every
    later step (line index, validation) walks the expanded tree. Also refuse an alias
    inside its own anchor, which expands for ever. Visits each node once."""
    sizes: dict[int, int] = {}
    """Expanded size of each node seen, capped (an alias bomb's sizes grow exponentially)."""
    open_nodes: set[int] = set()
    added = 0

    def size(node: yaml.Node) -> int:
        nonlocal added
        known = sizes.get(id(node))
        if known is not None:
            # Only an alias reaches a node twice: it adds another copy of the node's tree.
            added += known
            if added > MAX_ALIAS_NODES:
                raise YamlSourceError(
                    f"{path}: invalid YAML: aliases expand it to more than "
                    f"{MAX_ALIAS_NODES} nodes beyond those written in the file"
                )
            return known
        if id(node) in open_nodes:
            raise YamlSourceError(
                f"{path}:{node.start_mark.line + 1}: invalid YAML: "
                "an alias refers to its own anchor"
            )
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                total += size(key) + size(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
        open_nodes.discard(id(node))
        sizes[id(node)] = min(total, MAX_ALIAS_NODES + 1)
        return sizes[id(node)]

    size(root)


class _KeyIdentity:
    """A mapping key as the constructor will build it, so that keys Python's dict would
    merge (``yes`` and ``true``, ``1`` and ``0x1``) are found as duplicates too."""

    _AS_WRITTEN = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")
    """``<<`` and ``=``: no constructor of their own (the mapping's constructor reads them)."""

    def __init__(self, loader: _Loader) -> None:
        self._loader = loader

    def __call__(self, key: yaml.ScalarNode) -> object:
        if key.tag == _STR_TAG:
            return key.value
        if key.tag in self._AS_WRITTEN:
            return (key.tag, key.value)
        # The constructor keeps what it built, so building the key here costs nothing later.
        built = self._loader.construct_object(key)
        # e.g. ``!!map x``: the constructor refuses it later, with the line.
        return built if isinstance(built, Hashable) else id(key)


MAX_NESTING = 100
"""Levels of nested mappings and sequences: a register needs about 10. Deeper files are
refused by name, whichever parser is used, before anything recurses through them."""


def _line_index(
    root: yaml.Node, path: Path, identity: Callable[[yaml.ScalarNode], object]
) -> dict[Loc, int]:
    """Map each field path to the 1-based line where it starts in the YAML text, refusing
    nesting deeper than MAX_NESTING and a mapping that has a key twice: YAML would keep
    only the last (a whole ``signals:`` list could vanish unnoticed)."""
    index: dict[Loc, int] = {}

    def walk(current: yaml.Node, loc: Loc) -> None:
        index[loc] = current.start_mark.line + 1
        if len(loc) > MAX_NESTING:
            raise YamlSourceError(
                f"{path}:{index[loc]}: invalid YAML: nested too deeply "
                f"(more than {MAX_NESTING} levels)"
            )
        if isinstance(current, yaml.MappingNode):
            first_lines: dict[object, int] = {}
            for key, value in current.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue  # a list or mapping as a key: the constructor refuses it
                line = key.start_mark.line + 1
                same_key = identity(key)
                first = first_lines.get(same_key)
                if first is not None:
                    raise YamlSourceError(_duplicate_key(path, line, loc, key, first))
                first_lines[same_key] = line
                child = (*loc, key.value)
                walk(value, child)
                index[child] = line
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                walk(item, (*loc, i))

    walk(root, ())
    return index


def _duplicate_key(path: Path, line: int, loc: Loc, key: yaml.ScalarNode, first: int) -> str:
    where = render_loc(loc) or "(top level)"
    return f"{path}:{line}: {where}: duplicate key {key.value!r} (first at line {first})"
