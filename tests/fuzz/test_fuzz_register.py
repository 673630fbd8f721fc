"""Property: the register loader raises RegisterError for any bad file, nothing else.

Arbitrary text, YAML token soup, and the demo register with one subtree replaced by
arbitrary data: each either loads or fails with the documented error type.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from common.register_loader import RegisterError, parse_register
from tests.fuzz.profiles import fuzz, fuzz_slow
from tests.fuzz.strategies import deep_nesting

DEMO = Path(__file__).parents[2] / "examples" / "demo" / "register.yaml"
DEMO_DATA = yaml.safe_load(DEMO.read_text())
PATH = Path("fuzz.yaml")


def check(raw: bytes) -> None:
    try:
        parse_register(raw, PATH)
    except RegisterError as exc:
        assert str(exc), "a register error must say something"


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["1s", "-1s", "0", "opcua", "mqtt", "nsu=urn:x;s=a", "#", "*", "${X}"]),
)
yaml_values: st.SearchStrategy[Any] = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), children, max_size=3),
    ),
    max_leaves=10,
)

YAML_TOKENS = [
    "a: 1\n",
    "- x\n",
    "  ",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary aGk=\n",
    "!!python/object:os.system\n",
    "? [a, b]\n: 1\n",
    "{",
    "}",
    "[",
    "]",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    '"\\ud800"',
    "\t",
    ":",
    "plants:\n",
    "enterprise:\n",
]


@fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(raw)


@fuzz
@given(st.lists(st.sampled_from(YAML_TOKENS), max_size=25).map("".join))
def test_yaml_token_soup(text: str) -> None:
    check(text.encode())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


DEMO_PATHS = _paths(DEMO_DATA)[1:]


@fuzz_slow
@given(st.sampled_from(DEMO_PATHS), yaml_values)
def test_demo_register_with_one_part_replaced(where: tuple[Any, ...], replacement: Any) -> None:
    data = copy.deepcopy(DEMO_DATA)
    parent = data
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = replacement
    check(yaml.safe_dump(data, allow_unicode=True).encode())


@fuzz_slow
@given(st.sampled_from(DEMO_PATHS), st.text(max_size=20), yaml_values)
def test_demo_register_with_a_key_added(where: tuple[Any, ...], key: str, value: Any) -> None:
    data = copy.deepcopy(DEMO_DATA)
    parent = data
    for part in where:
        parent = parent[part]
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        parent.append(value)
    check(yaml.safe_dump(data, allow_unicode=True).encode())


@fuzz_slow
@given(deep_nesting(max_depth=5_000))  # PyYAML scans slowly; recursion ends near 1,000
def test_deep_nesting(text: str) -> None:
    check(text.encode())
