"""The InfluxQL the report reads, and reading it: stored results only (``kpi_rate`` and
``process_status``, docs/schema.md), selected by InfluxDB.

The report reads the stored windows that **tile** the period: with evaluation windows of
length ``L`` (1 h by default, ``COLLECTOR_KPI__WINDOW``), the first stored window ending in
each ``L``-long bucket ``[start + k·L, start + (k+1)·L)``, k = 1 … n — normally the window
ending exactly at ``start + k·L``, which covers ``[start + (k-1)·L, start + k·L)``. InfluxDB
picks them (``first(…) … GROUP BY time(L, offset)``) and answers one row per hour and key
process, not the 60 windows an hour stored by the live loop. The counts of every scope are
made of these stored verdicts (``process_status``), exactly as the live loop made its
``kpi_rate`` points of them; the enterprise's own stored ``kpi_rate`` tiles are read beside
them to check that the two agree. InfluxDB 1.x reads about 3 million points per second and
field, so the ``process_status`` scan is split by plant (one statement each, concurrent).

Every statement is kept with its text so the report prints exactly what it read (its
"how to reproduce" section). Nothing here reads a raw sample. The statements are sent
concurrently, one request each.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from collector.storage.influxql import Series, quote_ident, quote_literal, time_range
from collector.storage.reader import InfluxQLReader
from collector.storage.schema import KPI_RATE, PROCESS_STATUS

__all__ = [
    "ProcessKey",
    "ProcessTile",
    "RateTile",
    "Span",
    "Statement",
    "Stored",
    "read_stored",
    "tiles_range",
]

CONCURRENT_STATEMENTS = 4
"""Statements in flight at once: InfluxDB answers them on its cores in parallel."""

ProcessKey = tuple[str, str, str, str]
"""``(plant, line, process, industry)``: the tags of a ``process_status`` series."""


class RateTile(NamedTuple):
    end_ns: int
    """The tile's nominal end (its bucket's start): it covers ``[end - L, end)``."""
    numerator: int
    denominator: int
    not_scheduled: int
    provisional: int


class ProcessTile(NamedTuple):
    end_ns: int
    status: str
    reasons: str
    """Comma-separated codes, as stored."""


@dataclass(frozen=True)
class Statement:
    purpose: str
    """What it answers, in a few English words (the report's sections say it in the
    reader's language)."""
    text: str


@dataclass(frozen=True)
class Span:
    """The first and last stored window (their ends, ns) carrying one value."""

    first_ns: int
    last_ns: int


@dataclass
class Stored:
    """What InfluxDB answered, barely reshaped (``figures.py`` makes the figures of it)."""

    window_ns: int
    enterprise: list[RateTile] = field(default_factory=list)
    """The enterprise's own stored ``kpi_rate`` tiles (industry ``all``)."""
    processes: dict[ProcessKey, list[ProcessTile]] = field(default_factory=dict)
    register_versions: dict[str, Span] = field(default_factory=dict)
    thresholds: dict[str, Span] = field(default_factory=dict)
    window_s: list[float] = field(default_factory=list)
    """Lengths of the stored windows in the period (normally one: ``window_ns``)."""
    statements: list[Statement] = field(default_factory=list)
    """Everything read, in order."""


def tiles_range(start_ns: int, end_ns: int, window_ns: int) -> tuple[int, int, int]:
    """``(from, to, offset)``: the windows ending in ``[start + L, end + L)``, bucketed by
    ``GROUP BY time(L, offset)`` so that buckets begin at ``start + k·L``."""
    return start_ns + window_ns, end_ns + window_ns, start_ns % window_ns


def _ident(*names: str) -> str:
    return ", ".join(quote_ident(n) for n in names)


def _firsts(*names: str) -> str:
    return ", ".join(f"first({quote_ident(n)}) AS {quote_ident(n)}" for n in names)


class _Plan:
    def __init__(self, enterprise: str, start_ns: int, end_ns: int, window_ns: int) -> None:
        lower, upper, offset = tiles_range(start_ns, end_ns, window_ns)
        self.time = time_range(lower, upper)
        self.group = f"GROUP BY time({window_ns}ns, {offset}ns)"
        self.enterprise = f"{quote_ident('enterprise')} = {quote_literal(enterprise)}"
        self.all = f"{quote_ident('industry')} = {quote_literal('all')}"
        self.own = (
            f"{quote_ident('scope')} = {quote_literal('enterprise')} AND "
            f"{quote_ident('scope_id')} = {quote_literal(enterprise)}"
        )

    def rates(self) -> Statement:
        return Statement(
            "per tile: the enterprise's stored counts (kpi_rate), to check the processes' sums",
            f"SELECT {_firsts('numerator', 'denominator', 'not_scheduled', 'provisional')} "
            f"FROM {quote_ident(KPI_RATE.name)} WHERE {self.own} AND {self.all} AND "
            f"{self.time} {self.group} fill(none)",
        )

    def processes(self, plants: Sequence[str], others: bool = False) -> Statement:
        """The tiles of the key processes of ``plants`` (of every other plant with
        ``others``): one statement per plant lets InfluxDB use a core for each."""
        pattern = "|".join(re.escape(p) for p in plants)
        if others:
            where, purpose = f"{quote_ident('plant')} !~ /^({pattern})$/", "other plants"
        else:
            where = " OR ".join(f"{quote_ident('plant')} = {quote_literal(p)}" for p in plants)
            purpose = ", ".join(plants)
        return Statement(
            f"per tile: the stored status and reasons of every key process ({purpose})",
            f"SELECT {_firsts('status', 'reasons')} FROM {quote_ident(PROCESS_STATUS.name)} "
            f"WHERE {self.enterprise} AND ({where}) AND {self.time} "
            f"{self.group}, {_ident('plant', 'line', 'process', 'industry')} fill(none)",
        )

    def distinct(self, name: str) -> Statement:
        return Statement(
            f"the {name} values stored in the period",
            f"SELECT distinct({quote_ident(name)}) FROM {quote_ident(KPI_RATE.name)} "
            f"WHERE {self.own} AND {self.all} AND {self.time}",
        )

    def edge(self, name: str, value: str, selector: str) -> Statement:
        return Statement(
            f"{selector} window stored with this {name}",
            f"SELECT {selector}({quote_ident('denominator')}) FROM {quote_ident(KPI_RATE.name)} "
            f"WHERE {self.own} AND {self.all} AND {quote_ident(name)} = {quote_literal(value)} "
            f"AND {self.time}",
        )


async def _run(
    reader: InfluxQLReader, statements: Sequence[Statement], limit: asyncio.Semaphore
) -> list[list[Series]]:
    async def one(statement: Statement) -> list[Series]:
        async with limit:
            return await reader.query(statement.text)

    return list(await asyncio.gather(*(one(s) for s in statements)))


def _int(value: Any) -> int:
    return int(value or 0)


def _distinct(found: list[Series]) -> list[Any]:
    return [row["distinct"] for series in found for row in series.rows()]


def _time(found: list[Series]) -> int | None:
    for series in found:
        for row in series.rows():
            return int(row["time"])
    return None


def _rate_tiles(found: list[Series]) -> list[RateTile]:
    tiles: list[RateTile] = []
    for series in found:
        i = {name: n for n, name in enumerate(series.columns)}
        tiles.extend(
            RateTile(
                int(row[i["time"]]),
                _int(row[i["numerator"]]),
                _int(row[i["denominator"]]),
                _int(row[i["not_scheduled"]]),
                _int(row[i["provisional"]]),
            )
            for row in series.values
        )
    return sorted(tiles)


def _process_tiles(found: Sequence[list[Series]]) -> dict[ProcessKey, list[ProcessTile]]:
    out: dict[ProcessKey, list[ProcessTile]] = {}
    for series in (s for statement in found for s in statement):
        tags = series.tags
        key = (
            tags.get("plant", ""),
            tags.get("line", ""),
            tags.get("process", ""),
            tags.get("industry", ""),
        )
        tiles = out.setdefault(key, [])
        i_time, i_status, i_reasons = (
            series.columns.index(n) for n in ("time", "status", "reasons")
        )
        tiles.extend(
            ProcessTile(int(row[i_time]), str(row[i_status] or ""), str(row[i_reasons] or ""))
            for row in series.values
        )
    return out


async def read_stored(
    reader: InfluxQLReader,
    enterprise: str,
    plants: Sequence[str],
    start_ns: int,
    end_ns: int,
    *,
    window_ns: int,
    concurrency: int = CONCURRENT_STATEMENTS,
) -> Stored:
    """The stored results of ``enterprise`` (whose register names ``plants``) that tile
    ``[start, end)`` with windows of ``window_ns``, and the register versions, thresholds and
    window lengths stored."""
    plan = _Plan(enterprise, start_ns, end_ns, window_ns)
    limit = asyncio.Semaphore(concurrency)
    per_plant = [plan.processes([p]) for p in plants]
    first = [
        *per_plant,
        plan.processes(plants, others=True),
        plan.rates(),
        plan.distinct("register_versions"),
        plan.distinct("thresholds"),
        plan.distinct("window_s"),
    ]
    found = await _run(reader, first, limit)
    processes = found[: len(per_plant) + 1]
    rates, versions, thresholds, window_s = found[len(per_plant) + 1 :]
    out = Stored(
        window_ns=window_ns,
        enterprise=_rate_tiles(rates),
        processes=_process_tiles(processes),
        window_s=sorted({float(v) for v in _distinct(window_s) if v is not None}),
        statements=list(first),
    )
    edges = [
        (name, value, selector)
        for name, values in (("register_versions", versions), ("thresholds", thresholds))
        for value in sorted(str(v) for v in _distinct(values) if v is not None)
        for selector in ("first", "last")
    ]
    second = [plan.edge(*e) for e in edges]
    times = [_time(f) for f in await _run(reader, second, limit)]
    out.statements += second
    for i in range(0, len(edges), 2):
        name, value, _ = edges[i]
        first_ns, last_ns = times[i], times[i + 1]
        if first_ns is None or last_ns is None:
            continue
        spans = out.register_versions if name == "register_versions" else out.thresholds
        spans[value] = Span(first_ns, last_ns)
    return out
