"""InfluxQL text: quoting of identifiers and string literals, and the ``/query`` JSON.

Every name or value put into a query goes through :func:`quote_ident` or
:func:`quote_literal`, so a tag value such as ``x' OR '1'='1`` stays a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

_ESCAPES = {"\\": "\\\\", "\n": "\\n"}
_READ = re.compile(r"^\s*(SELECT|SHOW)\b", re.IGNORECASE)
_INTO = re.compile(r"\bINTO\b", re.IGNORECASE)


def quote_ident(name: str) -> str:
    """A double-quoted identifier (measurement, tag key, field key, database)."""
    return '"' + _escape(name).replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """A single-quoted string literal (a tag value in a WHERE clause)."""
    return "'" + _escape(value).replace("'", "\\'") + "'"


def _escape(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"expected a string for InfluxQL, got {type(text).__name__} {text!r}")
    for raw, escaped in _ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def is_read_only(q: str) -> bool:
    """Whether every statement only reads (SELECT/SHOW without INTO): those may use GET.

    Splitting on ``;`` may cut a string literal; at worst a read is then sent as POST,
    which the server always allows.
    """
    statements = [part for part in q.split(";") if part.strip()]
    return bool(statements) and all(_READ.match(p) for p in statements) and not _INTO.search(q)


def time_range(start_ns: int, end_ns: int) -> str:
    """``time >= start AND time < end`` (half-open, integer ns: no parsing ambiguity)."""
    for name, value in (("start", start_ns), ("end", end_ns)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be int nanoseconds, got {value!r}")
    return f"time >= {start_ns} AND time < {end_ns}"


def tag_filter(tags: dict[str, str]) -> str:
    return " AND ".join(f"{quote_ident(k)} = {quote_literal(v)}" for k, v in sorted(tags.items()))


@dataclass
class Series:
    """One series of one statement's result, as InfluxDB returns it."""

    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)
    statement_id: int = 0

    def rows(self) -> Iterator[dict[str, Any]]:
        for row in self.values:
            yield dict(zip(self.columns, row, strict=False))


class ResponseError(ValueError):
    """The statement-level error InfluxDB reported (HTTP 200 with ``"error"``)."""


def parse_chunk(text: bytes | str, into: list[Series]) -> None:
    """Add the series of one JSON response (or one chunk of a chunked response).

    A chunked response splits a long series over several chunks (``"partial": true``);
    consecutive pieces with the same statement, name and tags are joined.

    Decoded with orjson: the standard library's decoder was 38 % of the live KPI loop's
    CPU at 30,000 signals (docs/benchmarks.md). Raises ``ValueError`` on bad JSON.
    """
    data = orjson.loads(text)
    if "error" in data:
        raise ResponseError(str(data["error"]))
    for result in data.get("results", []):
        if "error" in result:
            raise ResponseError(str(result["error"]))
        statement = int(result.get("statement_id", 0))
        for raw in result.get("series", []):
            series = Series(
                name=raw.get("name", ""),
                columns=list(raw.get("columns", [])),
                values=list(raw.get("values", [])),
                tags=dict(raw.get("tags") or {}),
                statement_id=statement,
            )
            last = into[-1] if into else None
            if last is not None and (last.statement_id, last.name, last.tags, last.columns) == (
                series.statement_id,
                series.name,
                series.tags,
                series.columns,
            ):
                last.values.extend(series.values)
            else:
                into.append(series)
