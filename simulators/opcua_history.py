"""The history a simulated OPC UA server keeps of the variables it serves (OPC UA Part 11,
Historical Access), so that a client can read what changed while it was not subscribed
(HistoryReadRawModified), as from a PLC or SCADA server that historizes its tags.

One SQLite file per server, in asyncua's own ``HistorySQLite`` format (one table per
variable: ServerTimestamp, SourceTimestamp, StatusCode, the value as text and as its binary
Variant); asyncua's HistoryManager answers HistoryRead from it. Everything is kept (no
period, no count): a gap the edge backfills may be of any length, and asyncua's period
would run a ``DELETE`` scanning the whole table at every insert.

What is stored is what the server wrote, recorded by the server's own write path
(``OpcUaSourceServer.write`` calls ``record``), not by asyncua's internal monitored item
(``Server.historize_node_data_change``): that one triggers on a change of value or status
only, so the repeated values a polled source is written (same value, new source time)
would be missing, and it saves each value in a task of its own with a commit each. (Its
first notification, the value current when historizing starts, is here the initial
BadWaitingForInitialData of a variable not written when the server starts to listen, as
in the ledger.)

``HistorySQLite`` is subclassed, minimally, where asyncua 2.1 does not work for this:

- table names: asyncua's ``f"{ns}_{identifier!r}"`` puts quotes around a string
  identifier, which its own ``validate_table_name`` then rejects (string node ids cannot
  be historized at all), and a namespace index may change from run to run. Here: the
  node id with its namespace URI (``nsu=<uri>;s=<name>``), percent-encoded.
- timestamps: asyncua stores them with sqlite3's default adapter (``isoformat``, which
  leaves out ``.000000`` and adds ``+00:00``) and reads them with sqlite3's TIMESTAMP
  converter, which cannot parse a whole-second aware time: one such value makes every read
  of its variable fail. Here: UTC without offset, always with microseconds (still
  TIMESTAMP text, ordered as text in time order).
- NumValuesPerNode: asyncua cuts the answer there without a continuation point (it sets
  one only beyond its 10 000-value response limit). Here: a continuation point (the next
  value's source time, asyncua's stateless scheme) whenever values are left.
- writes: asyncua commits every value (a file sync each with SQLite's defaults). Here:
  WAL with ``synchronous=NORMAL`` (a commit survives the process being killed, not a power
  cut) and one transaction per batch, written on asyncua's aiosqlite thread while the
  simulator goes on, in one call there (``_insert``); a history read first writes what is
  pending, so it sees every value written before it.

On restart the file is opened again and asyncua's ``CREATE TABLE`` of each variable fails
with "already exists", which it logs (INFO) and ignores: the table and its rows are kept,
and new values are appended. A folder holds the history of one register's servers: a
variable is found again by its node id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from asyncua import ua
from asyncua.common.sql_injection import validate_table_name
from asyncua.common.utils import Buffer
from asyncua.server.history_sql import HistorySQLite
from asyncua.ua.ua_binary import variant_from_binary, variant_to_binary

log = logging.getLogger(__name__)

SUFFIX = ".sqlite"
"""A server's history file: ``<folder>/<source id>.sqlite``."""


def history_file(folder: Path, source_id: str) -> Path:
    return folder / f"{source_id}{SUFFIX}"


class SQLiteHistory(HistorySQLite):
    """asyncua's SQLite history of one server (see the module docstring for what differs).

    Give it to the server before ``Server.init`` (``iserver.history_manager.set_storage``),
    set ``namespaces`` once the server's namespaces are registered, then
    ``new_historized_node`` per variable and ``record`` per value written. asyncua's
    ``Server.stop`` stops it (after writing what is pending); ``stop`` may be called again.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        self.namespaces: Mapping[int, str] = {}
        """Namespace index → URI on this server: tables are named by URI."""
        self.saved = 0
        """Values written to the file since ``init``."""
        self._pending: list[tuple[ua.NodeId, ua.DataValue]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        """Held while pending values are written: one batch at a time, in order."""
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    async def init(self) -> None:
        try:
            await super().init()
        except sqlite3.Error as exc:
            raise OSError(f"cannot open the history file {self.path}: {exc}") from exc
        try:
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            await self._db.close()
            raise OSError(f"cannot use the history file {self.path}: {exc}") from exc
        self._writer = asyncio.create_task(self._write_loop(), name=f"history {self.path.name}")

    async def stop(self) -> None:
        """Write what is pending, close the file. Idempotent."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        self._closing = True
        self._wake.set()
        await writer
        async with self._lock:
            await self._write_pending()
        await super().stop()

    def record(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        """Keep ``datavalue``, just written to ``node_id`` (written to the file shortly)."""
        if self._closing:
            return
        self._pending.append((node_id, datavalue))
        self._wake.set()

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        # What asyncua's own monitored items call (historize_node_data_change): the same.
        self.record(node_id, datavalue)

    async def read_node_history(
        self, node_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], datetime | None]:
        """asyncua's raw read (source times in [start, end], in the order written; no start:
        newest first), with a continuation point whenever values are left."""
        table = self._get_table_name(node_id)
        first, last, order = _bounds(start, end)
        page = self.max_history_data_response_size
        if nb_values:
            page = min(page, nb_values)
        async with self._lock:
            await self._write_pending()
            try:
                validate_table_name(table)
                rows = await self._db.execute_fetchall(
                    "SELECT ServerTimestamp, SourceTimestamp, StatusCode, VariantBinary "  # noqa: S608 (a checked table name, from _get_table_name)
                    f'FROM "{table}" WHERE SourceTimestamp BETWEEN ? AND ? '
                    f"ORDER BY _Id {order} LIMIT ?",
                    (first, last, page + 1),
                )
            except sqlite3.Error as exc:  # typically: no such table (not a served variable)
                log.debug("history %s: reading %s: %s", self.path, node_id.to_string(), exc)
                return [], None
        values = [
            ua.DataValue(
                variant_from_binary(Buffer(row[3])),
                ua.StatusCode(row[2]),
                SourceTimestamp=row[1],
                ServerTimestamp=row[0],
            )
            for row in rows
        ]
        if len(values) > page:
            return values[:page], values[page].SourceTimestamp
        return values, None

    def _get_table_name(self, node_id: ua.NodeId) -> str:
        text = node_id.to_string()
        uri = self.namespaces.get(node_id.NamespaceIndex)
        if uri is not None and node_id.NamespaceIndex != 0:
            text = f"nsu={uri};{text.split(';', 1)[1]}"
        return quote(text, safe="")

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._lock:
                await self._write_pending()
            if self._closing:
                return

    async def _write_pending(self) -> None:
        """One transaction for everything recorded so far (held: ``_lock``)."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self._insert(batch)
        except Exception:  # the simulator goes on; the history has a hole, said here
            log.exception("history %s: %d values could not be written", self.path, len(batch))
            with contextlib.suppress(Exception):
                await self._db.rollback()
            return
        self.saved += len(batch)

    async def _insert(self, batch: list[tuple[ua.NodeId, ua.DataValue]]) -> None:
        """Insert ``batch`` and commit, in one call on aiosqlite's thread (rows built there
        too: the event loop only hands the batch over).

        aiosqlite's public calls (``executemany``, one per table) cost ~0.1 ms of CPU each,
        in the hand-over between the event loop and its thread: ~115 ms per second for 1 000
        variables at 1 s, against ~16 ms for the same inserts in one call. That call is
        aiosqlite's own ``_execute`` (what its public methods use, in every release since
        0.17), with its ``_conn`` used on its thread only; without them, the public calls.
        """

        def statements() -> list[tuple[str, list[tuple[Any, ...]]]]:
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for node_id, datavalue in batch:
                rows.setdefault(self._get_table_name(node_id), []).append(_row(datavalue))
            out = []
            for table, values in rows.items():
                validate_table_name(table)
                sql = f'INSERT INTO "{table}" VALUES (NULL, ?, ?, ?, ?, ?, ?)'  # noqa: S608 (as above)
                out.append((sql, values))
            return out

        db = self._db
        run = getattr(db, "_execute", None)
        if run is None or not hasattr(type(db), "_conn"):
            for sql, values in statements():
                await db.executemany(sql, values)
            await db.commit()
            return

        def insert() -> None:
            connection: sqlite3.Connection = db._conn  # noqa: SLF001 (on aiosqlite's thread)
            for sql, values in statements():
                connection.executemany(sql, values)
            connection.commit()

        await run(insert)


def _row(datavalue: ua.DataValue) -> tuple[Any, ...]:
    """A row of asyncua's table (its _Id left to SQLite)."""
    variant = datavalue.Value if datavalue.Value is not None else ua.Variant()
    status = datavalue.StatusCode.value if datavalue.StatusCode is not None else 0
    return (
        _sql_time(datavalue.ServerTimestamp),
        _sql_time(datavalue.SourceTimestamp),
        status,
        str(variant.Value),
        variant.VariantType.name,
        sqlite3.Binary(variant_to_binary(variant)),
    )


def _utc(dt: datetime) -> datetime:
    """Aware UTC (a naive time is taken as UTC, as asyncua encodes it)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _sql_time(dt: datetime | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC: sqlite3's TIMESTAMP converter reads it back
    (as a naive UTC datetime), and text order is time order."""
    if dt is None:
        return None
    return _utc(dt).replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def _bounds(start: datetime | None, end: datetime | None) -> tuple[str, str, str]:
    """asyncua's ``_get_bounds`` in this file's time format: (first, last, order)."""
    epoch = ua.get_win_epoch()
    order = "ASC"
    if start is None or _utc(start) == epoch:
        order = "DESC"
        start = epoch
    if end is None or _utc(end) == epoch:
        end = datetime.now(UTC) + timedelta(days=1)
    start, end = _utc(start), _utc(end)
    if start >= end:
        order = "DESC"
        start, end = end, start
    first, last = _sql_time(start), _sql_time(end)
    assert first is not None and last is not None
    return first, last, order
