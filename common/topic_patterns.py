"""MQTT topic patterns of the register: filter levels plus named levels that give ids.

``plant/+/{process}/{signal}`` subscribes ``plant/+/+/+``; a message on
``plant/l2/press1/torque`` then names process ``press1`` and signal ``torque``. Pure: used
when the register is loaded (validation, so a bad pattern fails at start-up) and by the
edge (matching every message).
"""

from __future__ import annotations

from dataclasses import dataclass

NAMES = ("process", "signal")
"""The named levels a pattern may hold, each at most once, each a whole level."""


@dataclass(frozen=True)
class TopicPattern:
    text: str
    levels: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        """Raise ValueError naming the pattern and the bad level."""
        if not text:
            raise ValueError("topic pattern is empty")
        if "\x00" in text:
            raise ValueError(f"topic pattern {text!r} contains a NUL character")
        levels = tuple(text.split("/"))
        seen: set[str] = set()
        for index, level in enumerate(levels):
            if level == "#":
                if index != len(levels) - 1:
                    raise ValueError(f"topic pattern {text!r}: '#' must be the last level")
                continue
            if level == "+":
                continue
            if level.startswith("{") and level.endswith("}"):
                name = level[1:-1]
                if name not in NAMES:
                    raise ValueError(
                        f"topic pattern {text!r}: unknown named level {level!r} "
                        f"(use {', '.join('{' + n + '}' for n in NAMES)})"
                    )
                if name in seen:
                    raise ValueError(f"topic pattern {text!r}: {level!r} appears twice")
                seen.add(name)
                continue
            if any(c in level for c in "+#{}"):
                raise ValueError(
                    f"topic pattern {text!r}: level {level!r} mixes text with '+', '#' or "
                    "'{…}' (each must be a whole level)"
                )
        if "signal" not in seen:
            raise ValueError(
                f"topic pattern {text!r} has no {{signal}} level: it must say which level "
                "of the topic is the signal id"
            )
        return cls(text, levels)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(lv[1:-1] for lv in self.levels if lv.startswith("{"))

    @property
    def filter(self) -> str:
        """The MQTT subscription filter: named levels become ``+``."""
        return "/".join("+" if lv.startswith("{") else lv for lv in self.levels)

    def match(self, topic: str) -> dict[str, str] | None:
        """The named levels' values if ``topic`` matches, else None."""
        first = self.levels[0]
        if topic.startswith("$") and (first in ("+", "#") or first.startswith("{")):
            return None  # MQTT: wildcards at the first level never match $SYS-style topics
        parts = topic.split("/")
        found: dict[str, str] = {}
        for index, level in enumerate(self.levels):
            if level == "#":
                return found
            if index >= len(parts):
                return None
            if level.startswith("{"):
                found[level[1:-1]] = parts[index]
            elif level != "+" and level != parts[index]:
                return None
        return found if len(parts) == len(self.levels) else None


def filters_overlap(a: str, b: str) -> bool:
    """Whether some topic matches both MQTT filters (so the broker could deliver it twice)."""
    return _overlap(a.split("/"), b.split("/"))


def _overlap(a: list[str], b: list[str]) -> bool:
    if (a and a[0] == "#") or (b and b[0] == "#"):
        return True
    if not a or not b:
        return not a and not b
    if a[0] == "+" or b[0] == "+" or a[0] == b[0]:
        return _overlap(a[1:], b[1:])
    return False
