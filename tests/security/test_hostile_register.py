"""Hand-crafted hostile register files: each fails fast with RegisterError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.register_loader import RegisterError, parse_register


def billion_laughs(levels: int) -> bytes:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (billion_laughs(9), "aliases expand it to more than 1000000 nodes"),
        (b"a: &a [*a]", "alias refers to its own anchor"),
        (b"a: &a {b: *a}", "alias refers to its own anchor"),
        (b"[" * 20_000, "nested too deeply"),
        (b"{a: " * 3_000, "nested too deeply"),
        (b"a: " + b"[" * 900 + b"]" * 900, "nested too deeply"),
        (b"\xff\xfe", "not UTF-8"),
        (b"!!python/object/apply:os.system [echo hi]", "invalid YAML"),
        (b"? [a, b]\n: 1\n", "invalid YAML"),
        (b"a: 1\n---\nb: 2\n", "invalid YAML"),
    ],
)
def test_hostile_register_is_refused_by_name(raw: bytes, reason: str) -> None:
    with pytest.raises(RegisterError, match=reason) as caught:
        parse_register(raw, Path("hostile.yaml"))
    assert str(caught.value).startswith("hostile.yaml")
