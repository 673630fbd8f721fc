"""The register snippets of a protocol's README (``edge/sources/<kind>/README.md``), as the
tests that keep the docs from drifting load them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests import registers

ROOT = Path(__file__).parents[2]
_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.M | re.S)


def readme(kind: str) -> Path:
    return ROOT / "edge" / "sources" / kind / "README.md"


def snippets(kind: str) -> list[dict[str, Any]]:
    """The README's YAML blocks that show a plant's ``sources:`` (and its signals)."""
    blocks = [yaml.safe_load(text) for text in _YAML_BLOCK.findall(readme(kind).read_text())]
    return [block for block in blocks if isinstance(block, dict) and "sources" in block]


def as_register(snippet: dict[str, Any]) -> str:
    """A snippet as the plant of a register. The snippets show sources and signals; a
    process's name, key and industry are the register's own, filled in where left out."""
    lines = []
    for line in snippet.get("lines", []):
        processes = [
            {"name": p["id"], "key": True, "industry": "discrete", **p}
            for p in line.get("processes", [])
        ]
        lines.append({**line, "processes": processes})
    plant = registers.plant("readme-plant", snippet["sources"], lines)
    return registers.to_yaml(registers.document([plant]))
