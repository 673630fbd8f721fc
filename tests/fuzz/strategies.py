"""Hostile values for the property suites: what a broken or malicious sender can put in JSON."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

LONE_SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\udc80" * 3])

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(min_size=1020, max_size=1030),  # around the string limit
    LONE_SURROGATES,
    st.sampled_from(["\x00", "a\nb\r", 'quote " and \\ backslash', "é中文\u2028", "🙂" * 3]),
)

hostile_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308]),
)

hostile_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), hostile_numbers, hostile_text
)

json_values: st.SearchStrategy[Any] = st.recursive(
    hostile_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["value", "ts", "quality", "x", ""]), children, max_size=4),
    ),
    max_leaves=12,
)

TOKENS = [
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    '"value"',
    '"ts"',
    '"quality"',
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "9" * 5000,
    '"\\ud800"',
    "null",
    "true",
    "1.5",
    '"good"',
    '"2026-11-28T10:00:00Z"',
    '"0001-01-01T00:00:00+14:00"',
    '"9999-12-31T23:59:59-14:00"',
]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)
"""Almost-JSON: the tokens parsers trip on, in any order."""


@st.composite
def deep_nesting(draw: st.DrawFn, max_depth: int = 200_000) -> str:
    depth = draw(st.integers(1, max_depth))
    opener = draw(st.sampled_from(["[", '{"value":', '{"a":[']))
    return opener * depth
