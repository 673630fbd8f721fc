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
them to check that the two agree. The register versions are those the tiles' verdicts were
stored with (``process_status.register_version``, the enterprise's own: a ``kpi_rate`` point's
``register_versions`` lists every register the collector evaluated in that window, other
enterprises' too). InfluxDB 1.x reads about 3 million points per second and
field, so the ``process_status`` scan is split by plant (one statement each, concurrent).

Every statement is kept with its text so the report prints exactly what it read (its
"how to reproduce" section), and with its purpose, a catalogue text the report shows in the
reader's language. Nothing here reads a raw sample. The statements are sent
concurrently, one request each.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from collector.i18n.catalogue import N_
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
    register_version: str = ""
    """The version of the register the verdict was made with, as stored."""


@dataclass(frozen=True)
class Statement:
    purpose: str
    """What it answers, in a few English words: a catalogue text (``N_``), which the report
    shows in the reader's language (the statement says which plant or value it reads)."""
    text: str


RATES = N_("per tile: the enterprise's stored counts (kpi_rate), to check the processes' sums")
PROCESSES = N_(
    "per tile: the stored status, reasons and register version of every key process of one "
    "plant (named in the statement)"
)
OTHER_PLANTS = N_(
    "per tile: the stored status, reasons and register version of every key process of the "
    "plants not in the register"
)
DISTINCT = {
    "thresholds": N_("the thresholds stored in the period"),
    "window_s": N_("the window lengths stored in the period"),
}
EDGES = {
    "first": N_("the first window stored with these thresholds"),
    "last": N_("the last window stored with these thresholds"),
}


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
    """The register versions of the tiles' stored verdicts: the (nominal) end of the first
    and last tile carrying each."""
    thresholds: dict[str, Span] = field(default_factory=dict)
    """The thresholds of the enterprise's stored ``kpi_rate`` points (the collector's, the
    same for every enterprise): the end of the first and last stored window carrying each."""
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
            RATES,
            f"SELECT {_firsts('numerator', 'denominator', 'not_scheduled', 'provisional')} "
            f"FROM {quote_ident(KPI_RATE.name)} WHERE {self.own} AND {self.all} AND "
            f"{self.time} {self.group} fill(none)",
        )

    def processes(self, plants: Sequence[str], others: bool = False) -> Statement:
        """The tiles of the key processes of ``plants`` (of every other plant with
        ``others``): one statement per plant lets InfluxDB use a core for each."""
        pattern = "|".join(re.escape(p) for p in plants)
        if others:
            where, purpose = f"{quote_ident('plant')} !~ /^({pattern})$/", OTHER_PLANTS
        else:
            where = " OR ".join(f"{quote_ident('plant')} = {quote_literal(p)}" for p in plants)
            purpose = PROCESSES
        fields = _firsts("status", "reasons", "register_version")
        return Statement(
            purpose,
            f"SELECT {fields} FROM {quote_ident(PROCESS_STATUS.name)} "
            f"WHERE {self.enterprise} AND ({where}) AND {self.time} "
            f"{self.group}, {_ident('plant', 'line', 'process', 'industry')} fill(none)",
        )

    def distinct(self, name: str) -> Statement:
        return Statement(
            DISTINCT[name],
            f"SELECT distinct({quote_ident(name)}) FROM {quote_ident(KPI_RATE.name)} "
            f"WHERE {self.own} AND {self.all} AND {self.time}",
        )

    def edge(self, value: str, selector: str) -> Statement:
        """The first or last window stored with these thresholds."""
        return Statement(
            EDGES[selector],
            f"SELECT {selector}({quote_ident('denominator')}) FROM {quote_ident(KPI_RATE.name)} "
            f"WHERE {self.own} AND {self.all} AND {quote_ident('thresholds')} = "
            f"{quote_literal(value)} AND {self.time}",
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
        i_time, i_status, i_reasons, i_version = (
            series.columns.index(n) for n in ("time", "status", "reasons", "register_version")
        )
        tiles.extend(
            ProcessTile(
                int(row[i_time]),
                str(row[i_status] or ""),
                str(row[i_reasons] or ""),
                str(row[i_version] or ""),
            )
            for row in series.values
        )
    return out


def _versions(processes: dict[ProcessKey, list[ProcessTile]]) -> dict[str, Span]:
    """Each register version of the tiles' verdicts, with its first and last tile."""
    spans: dict[str, Span] = {}
    for tiles in processes.values():
        for tile in tiles:
            if not tile.register_version:
                continue
            span = spans.get(tile.register_version)
            if span is None:
                spans[tile.register_version] = Span(tile.end_ns, tile.end_ns)
            elif not span.first_ns <= tile.end_ns <= span.last_ns:
                first, last = min(span.first_ns, tile.end_ns), max(span.last_ns, tile.end_ns)
                spans[tile.register_version] = Span(first, last)
    return spans


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
    ``[start, end)`` with windows of ``window_ns``: the key processes' verdicts (with the
    register versions they were made with) and the enterprise's counts; and the thresholds
    and window lengths stored."""
    plan = _Plan(enterprise, start_ns, end_ns, window_ns)
    limit = asyncio.Semaphore(concurrency)
    per_plant = [plan.processes([p]) for p in plants]
    first = [
        *per_plant,
        plan.processes(plants, others=True),
        plan.rates(),
        plan.distinct("thresholds"),
        plan.distinct("window_s"),
    ]
    found = await _run(reader, first, limit)
    processes = _process_tiles(found[: len(per_plant) + 1])
    rates, thresholds, window_s = found[len(per_plant) + 1 :]
    out = Stored(
        window_ns=window_ns,
        enterprise=_rate_tiles(rates),
        processes=processes,
        register_versions=_versions(processes),
        window_s=sorted({float(v) for v in _distinct(window_s) if v is not None}),
        statements=list(first),
    )
    values = sorted(str(v) for v in _distinct(thresholds) if v is not None)
    second = [plan.edge(value, selector) for value in values for selector in ("first", "last")]
    times = [_time(f) for f in await _run(reader, second, limit)]
    out.statements += second
    for i, value in enumerate(values):
        first_ns, last_ns = times[2 * i], times[2 * i + 1]
        if first_ns is not None and last_ns is not None:
            out.thresholds[value] = Span(first_ns, last_ns)
    return out
