"""Read stored samples, liveness and KPI points back with InfluxQL over ``/query``.

Used to recompute a past window, so it must return exactly what the live path saw: the
samples inside ``[start, end)`` plus, per signal, the last sample before ``start`` (it
says what the value was when the window opened). The latter is a ``ORDER BY time DESC
LIMIT 1`` query per signal over the lookback, so a long lookback costs one point per
signal, not every point in it.

Responses are requested chunked, which streams past the server's ``max-row-limit``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp

from collector.storage.errors import QueryError, QueryUnavailable, server_message
from collector.storage.http import LazySession
from collector.storage.influxql import (
    ResponseError,
    Series,
    is_read_only,
    parse_chunk,
    quote_ident,
    quote_literal,
    tag_filter,
    time_range,
)
from collector.storage.schema import KPI_REPLICA, LIVENESS, RECONFIRM, SAMPLE, WATERMARK
from collector.storage.settings import InfluxSettings
from common.garbage import garbage_collector_paused
from common.quality import BAD
from common.wire import EDGE_SOURCE

_SAMPLE_FIELDS = ", ".join(
    quote_ident(f) for f in ("value", "value_bool", "value_str", "status", "recv_ns")
)
CHUNK_SIZE = 10_000
YIELD_BYTES = 1 << 20
"""A long response is decoded in steps of about this many bytes, the event loop run in
between (InfluxDB sends a chunk per series: yielding after each cost more than decoding)."""

Value = float | bool | str | None


@dataclass
class SignalColumns:
    """One signal's samples as parallel columns, sorted by ``ts`` (source time, ns)."""

    ts: list[int] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    value: list[Value] = field(default_factory=list)
    """The stored value: float (numbers), bool, str, or None when only a status was sent."""
    recv: list[int] = field(default_factory=list)
    """When the edge (last) received each sample: a value a source re-sends after an
    outage keeps its source time, and its later receive time says it was re-confirmed."""

    def __len__(self) -> int:
        return len(self.ts)

    def extend(self, other: SignalColumns) -> None:
        self.ts.extend(other.ts)
        self.status.extend(other.status)
        self.value.extend(other.value)
        self.recv.extend(other.recv)


class LivenessRow(NamedTuple):
    """One stored up/down event of a source (or of the edge agent, source ``_edge``)."""

    ts: int
    up: bool
    detail: str = ""
    boot: int = 0
    """The edge agent's boot, link and shutdown flag: for ``_edge`` events only (else 0)."""
    link: int = 0
    shutdown: bool = False


@dataclass(frozen=True)
class PointRow:
    ts_ns: int
    tags: dict[str, str]
    fields: dict[str, Any]
    """Non-null fields of the point."""


class InfluxQLReader:
    def __init__(self, settings: InfluxSettings, *, chunk_size: int = CHUNK_SIZE):
        self.settings = settings
        self.chunk_size = chunk_size
        self._target = settings.describe()
        self._session = LazySession(settings)

    # -- raw queries ----------------------------------------------------------------------

    async def query(self, q: str, params: Mapping[str, Any] | None = None) -> list[Series]:
        """Run InfluxQL (several statements may be joined with ``;``).

        ``params`` are InfluxQL bind parameters (``$name`` in the query). SELECT and SHOW
        go as GET, anything else as POST. Raises :class:`QueryError` (with the query text)
        or :class:`QueryUnavailable` when the server cannot be reached or answers 5xx.
        """
        args: dict[str, str] = {
            "q": q,
            "db": self.settings.database,
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": str(self.chunk_size),
        }
        if self.settings.retention_policy:
            args["rp"] = self.settings.retention_policy
        if params:
            args["params"] = json.dumps(dict(params))
        url = f"{self.settings.url}/query"
        try:
            session = self._http()
            request = (
                session.get(url, params=args) if is_read_only(q) else session.post(url, data=args)
            )
            async with request as response:
                status = response.status
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise QueryUnavailable(self._target, q, f"cannot reach the server: {exc!r}") from exc
        if status >= 500:
            message = server_message(body, f"HTTP {status}")
            raise QueryUnavailable(self._target, q, f"HTTP {status}: {message}", status=status)
        if status != 200:
            message = server_message(body, f"HTTP {status}")
            raise QueryError(self._target, q, f"HTTP {status}: {message}", status=status)
        series: list[Series] = []
        # Chunks are separated by b"\n" only: JSON escapes every control character inside
        # a string, so a raw newline byte is always a separator.
        chunks = [line for line in body.split(b"\n") if line.strip()]
        del body
        done = 0
        try:
            while done < len(chunks):
                if done:
                    await asyncio.sleep(0)  # a long response: other tasks run in between
                # The decoded rows stay alive and hold no cycles (common/garbage.py).
                with garbage_collector_paused():
                    decoded = 0
                    while done < len(chunks) and decoded < YIELD_BYTES:
                        parse_chunk(chunks[done], series)
                        decoded += len(chunks[done])
                        done += 1
        except ResponseError as exc:
            raise QueryError(self._target, q, str(exc)) from None
        except ValueError as exc:
            raise QueryError(self._target, q, f"unreadable response: {exc}") from None
        return series

    # -- the shapes the KPI evaluator needs ------------------------------------------------

    async def samples(
        self,
        start_ns: int,
        end_ns: int,
        lookback_ns: int,
        enterprise: str,
        plant: str | None = None,
        processes: Sequence[str] | None = None,
    ) -> dict[tuple[str, str], SignalColumns]:
        """Samples per ``(process, signal)`` in ``[start, end)``, preceded by the last one in
        ``[start - lookback, start)`` if there is one; of one plant with ``plant``, of some of
        its processes with ``processes`` (register ids)."""
        where = _scope(enterprise, plant)
        if processes is not None:
            where += f" AND {quote_ident('process')} =~ {_one_of(processes)}"
        group = f"GROUP BY {quote_ident('process')}, {quote_ident('signal')}"
        statements = [
            f"SELECT {_SAMPLE_FIELDS} FROM {quote_ident(SAMPLE.name)} "
            f"WHERE {where} AND {time_range(start_ns, end_ns)} {group}"
        ]
        if lookback_ns > 0:
            statements.append(
                f"SELECT {_SAMPLE_FIELDS} FROM {quote_ident(SAMPLE.name)} "
                f"WHERE {where} AND {time_range(start_ns - lookback_ns, start_ns)} {group} "
                "ORDER BY time DESC LIMIT 1"
            )
        out: dict[tuple[str, str], SignalColumns] = {}
        before: dict[tuple[str, str], SignalColumns] = {}
        found = await self.query("; ".join(statements))
        with garbage_collector_paused():  # rows become columns: no cycles, all alive
            for series in found:
                key = (series.tags.get("process", ""), series.tags.get("signal", ""))
                if not series.values:
                    if series.statement_id == 0:
                        out.setdefault(key, SignalColumns())
                    continue
                decoded = _sample_columns(series.columns, series.values)
                series.values = []  # the rows are freed as their columns are made
                if series.statement_id == 1:
                    before[key] = decoded  # ORDER BY time DESC LIMIT 1: one row
                    continue
                columns = out.get(key)
                if columns is None:
                    out[key] = decoded
                else:
                    columns.extend(decoded)
        for key, first in before.items():
            columns = out.get(key)
            if columns is not None:
                first.extend(columns)
            out[key] = first
        for columns in out.values():
            _sort_columns(columns)
        return out

    async def liveness(
        self,
        start_ns: int,
        end_ns: int,
        enterprise: str,
        lookback_ns: int = 0,
        edge_until_ns: int | None = None,
        plant: str | None = None,
    ) -> dict[tuple[str, str], list[LivenessRow]]:
        """Up/down events per ``(plant, source)`` in ``[start, end)``, sorted by time,
        preceded by the last event in ``[start - lookback, start)`` when ``lookback_ns``;
        of one plant with ``plant``.

        With ``edge_until_ns``, the edge agents' own events (``_edge``) of
        ``[end, edge_until)`` are added, and the last one before ``start``: whether a Last
        Will meant a dead agent or an uplink gap is told by what the agent said after it,
        and a new boot by the event before it (``collector/kpi/edge_liveness.py``).
        """
        where = _scope(enterprise, plant)
        group = f"GROUP BY {quote_ident('plant')}, {quote_ident('source')}"
        fields = ", ".join(quote_ident(f) for f in ("up", "detail", "boot", "link", "shutdown"))
        select = f"SELECT {fields} FROM {quote_ident(LIVENESS.name)}"
        statements = [f"{select} WHERE {where} AND {time_range(start_ns, end_ns)} {group}"]
        if edge_until_ns is not None and edge_until_ns > end_ns:
            edge = f"{quote_ident('source')} = {quote_literal(EDGE_SOURCE)}"
            statements.append(
                f"{select} WHERE {where} AND {edge} AND {time_range(end_ns, edge_until_ns)} {group}"
            )
        if edge_until_ns is not None:
            edge = f"{quote_ident('source')} = {quote_literal(EDGE_SOURCE)}"
            statements.append(
                f"{select} WHERE {where} AND {edge} AND time < {int(start_ns)} {group} "
                "ORDER BY time DESC LIMIT 1"
            )
        if lookback_ns > 0:
            statements.append(
                f"{select} WHERE {where} AND {time_range(start_ns - lookback_ns, start_ns)} "
                f"{group} ORDER BY time DESC LIMIT 1"
            )
        found: dict[tuple[str, str], dict[int, LivenessRow]] = {}
        for series in await self.query("; ".join(statements)):
            key = (series.tags.get("plant", ""), series.tags.get("source", ""))
            index = {name: i for i, name in enumerate(series.columns)}
            events = found.setdefault(key, {})
            for row in series.values:
                event = _liveness_row(row, index)
                events[event.ts] = event  # two statements may return the same point
        out = {key: sorted(events.values(), key=lambda e: e.ts) for key, events in found.items()}
        return out

    async def reconfirmations(
        self,
        start_ns: int,
        end_ns: int,
        enterprise: str,
        plant: str | None = None,
        processes: Sequence[str] | None = None,
    ) -> dict[tuple[str, str], list[tuple[int, int]]]:
        """Receipts of re-sent values per ``(process, signal)`` in ``[start, end)``: pairs of
        (receive time, source time of the sample it re-confirms), sorted; filtered as
        ``samples`` is."""
        where = _scope(enterprise, plant)
        if processes is not None:
            where += f" AND {quote_ident('process')} =~ {_one_of(processes)}"
        group = f"GROUP BY {quote_ident('process')}, {quote_ident('signal')}"
        q = (
            f"SELECT {quote_ident('of_ns')} FROM {quote_ident(RECONFIRM.name)} "
            f"WHERE {where} AND {time_range(start_ns, end_ns)} {group}"
        )
        out: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for series in await self.query(q):
            key = (series.tags.get("process", ""), series.tags.get("signal", ""))
            i_time, i_of = series.columns.index("time"), series.columns.index("of_ns")
            pairs = out.setdefault(key, [])
            pairs.extend(
                (int(row[i_time]), int(row[i_of])) for row in series.values if row[i_of] is not None
            )
        for pairs in out.values():
            pairs.sort()
        return out

    async def watermarks(self, since_ns: int, enterprise: str) -> dict[str, int]:
        """Per plant, the latest watermark any of its edges stored at or after ``since_ns``:
        the edge-clock time before which everything it acquired is stored."""
        q = (
            f"SELECT last({quote_ident('seq')}) FROM {quote_ident(WATERMARK.name)} "
            f"WHERE {quote_ident('enterprise')} = {quote_literal(enterprise)} "
            f"AND time >= {int(since_ns)} GROUP BY {quote_ident('plant')}"
        )
        out: dict[str, int] = {}
        for series in await self.query(q):
            i_time = series.columns.index("time")
            for row in series.values:
                plant = series.tags.get("plant", "")
                out[plant] = max(out.get(plant, 0), int(row[i_time]))
        return out

    async def replicas(self, since_ns: int) -> set[int]:
        """The KPI replicas whose heartbeat is stored at or after ``since_ns``."""
        q = (
            f"SELECT last({quote_ident('replicas')}) FROM {quote_ident(KPI_REPLICA.name)} "
            f"WHERE time >= {int(since_ns)} GROUP BY {quote_ident('replica')}"
        )
        found: set[int] = set()
        for series in await self.query(q):
            if series.values and series.tags.get("replica", "").isdigit():
                found.add(int(series.tags["replica"]))
        return found

    async def revisions(
        self,
        measurement: str,
        since_ns: int,
        tags: Mapping[str, str],
        by: str,
        corrected_only: bool = False,
    ) -> dict[tuple[str, int], int]:
        """The ``revision`` field of the points of ``measurement`` at or after ``since_ns``
        whose tags equal ``tags``, per ``(value of tag by, time)``; with
        ``corrected_only`` only those above 0 (found by the server: few)."""
        conditions = [f"time >= {int(since_ns)}", tag_filter(dict(tags))]
        if corrected_only:
            conditions.append(f"{quote_ident('revision')} > 0")
        q = (
            f"SELECT {quote_ident('revision')} FROM {quote_ident(measurement)} "
            f"WHERE {' AND '.join(conditions)} GROUP BY {quote_ident(by)}"
        )
        out: dict[tuple[str, int], int] = {}
        for series in await self.query(q):
            key = series.tags.get(by, "")
            i_time, i_rev = series.columns.index("time"), series.columns.index("revision")
            for row in series.values:
                out[(key, int(row[i_time]))] = int(row[i_rev] or 0)
        return out

    async def points(
        self,
        measurement: str,
        start_ns: int,
        end_ns: int,
        tags: Mapping[str, str] | None = None,
        fields: Sequence[str] | None = None,
    ) -> list[PointRow]:
        """Points of any measurement in ``[start, end)`` whose tags equal ``tags``, sorted by
        time; each row carries its tags (``GROUP BY *``) and its non-null fields."""
        select = ", ".join(quote_ident(f) for f in fields) if fields else "*"
        conditions = [time_range(start_ns, end_ns)]
        if tags:
            conditions.append(tag_filter(dict(tags)))
        q = (
            f"SELECT {select} FROM {quote_ident(measurement)} "
            f"WHERE {' AND '.join(conditions)} GROUP BY *"
        )
        rows: list[PointRow] = []
        for series in await self.query(q):
            for row in series.rows():
                ts = int(row.pop("time"))
                values = {k: v for k, v in row.items() if v is not None}
                rows.append(PointRow(ts, dict(series.tags), values))
        rows.sort(key=lambda r: r.ts_ns)
        return rows

    # -- plumbing -------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        return self._session.get()

    async def close(self) -> None:
        await self._session.close()


def _scope(enterprise: str, plant: str | None) -> str:
    where = f"{quote_ident('enterprise')} = {quote_literal(enterprise)}"
    if plant is not None:
        where += f" AND {quote_ident('plant')} = {quote_literal(plant)}"
    return where


def _one_of(ids: Sequence[str]) -> str:
    """An InfluxQL regex literal matching exactly these ids (register ids: letters, digits,
    ``_.-``; escaped all the same)."""
    alternatives = "|".join(re.escape(i).replace("/", "\\/") for i in ids)
    return f"/^(?:{alternatives})$/"


def _sample_columns(names: list[str], rows: list[list[Any]]) -> SignalColumns:
    """One series' rows of ``sample`` fields as columns. Column by column, not row by row:
    per-row decoding was a quarter of the live KPI loop's CPU at 30,000 signals."""
    index = {name: i for i, name in enumerate(names)}
    by_column = list(zip(*rows, strict=True))
    absent = (None,) * len(rows)

    def column(name: str) -> tuple[Any, ...]:
        i = index.get(name)
        return absent if i is None else by_column[i]

    ts = [int(t) for t in by_column[index["time"]]]
    # The stored value: the float field, else the bool, else the string one (one is set).
    numbers, flags, texts = column("value"), column("value_bool"), column("value_str")
    value: list[Value] = [
        None if x is None else float(x)  # JSON drops the ".0" of whole floats
        for x in numbers
    ]
    if flags is not absent or texts is not absent:
        for i, x in enumerate(value):
            if x is None:
                if flags[i] is not None:
                    value[i] = bool(flags[i])
                elif texts[i] is not None:
                    value[i] = str(texts[i])
    # Every sample is written with its status; should one lack it, never call it Good.
    status = [BAD if s is None else int(s) for s in column("status")]
    recv = [t if r is None else int(r) for t, r in zip(ts, column("recv_ns"), strict=True)]
    return SignalColumns(ts, status, value, recv)


def _liveness_row(row: list[Any], index: dict[str, int]) -> LivenessRow:
    def get(name: str) -> Any:
        i = index.get(name)
        return row[i] if i is not None else None

    return LivenessRow(
        int(row[index["time"]]),
        bool(get("up")),
        str(get("detail") or ""),
        int(get("boot") or 0),
        int(get("link") or 0),
        bool(get("shutdown") or False),
    )


def _sort_columns(columns: SignalColumns) -> None:
    if all(a <= b for a, b in zip(columns.ts, columns.ts[1:], strict=False)):
        return
    order = sorted(range(len(columns.ts)), key=columns.ts.__getitem__)
    columns.ts[:] = [columns.ts[i] for i in order]
    columns.status[:] = [columns.status[i] for i in order]
    columns.value[:] = [columns.value[i] for i in order]
    columns.recv[:] = [columns.recv[i] for i in order]
