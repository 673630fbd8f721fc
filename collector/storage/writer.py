"""Send line protocol to InfluxDB: ``V1Writer`` (``/write``) and ``V2Writer`` (influxdb-client).

Both split a ``write()`` into requests of at most 5,000 lines (InfluxDB's guidance) and
turn every failure into a typed error (see ``collector.storage.errors``); nothing is only
logged. The writer does not retry: the caller owns the data and decides (keep it and
retry on :class:`WriteUnavailable`, dead-letter it on :class:`WriteRejected`).

If one request of a ``write()`` is rejected (400), the remaining requests are still sent,
because their points are unrelated and would otherwise be lost with the bad one; the first
rejection is raised at the end. Any other failure stops the call at once: the next request
would fail the same way.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

import aiohttp
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write_api_async import WriteApiAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from collector.storage.errors import (
    WriteError,
    WriteRejected,
    WriteUnavailable,
    classify_write_failure,
    server_message,
)
from collector.storage.http import LazySession
from collector.storage.influxql import ResponseError, parse_chunk, quote_ident
from collector.storage.settings import InfluxSettings

log = logging.getLogger(__name__)

MAX_LINES_PER_REQUEST = 5000
# The library declares its precision constants as plain str.
_NS = cast(WritePrecision, WritePrecision.NS)


@dataclass
class WriterStats:
    lines_written: int = 0
    """Lines in requests the server accepted in full."""
    batches_written: int = 0
    """Accepted HTTP requests (a ``write()`` call sends one per 5,000 lines)."""
    lines_rejected: int = 0
    """Lines in requests answered 400 (InfluxDB may still have stored the valid ones)."""
    failures: Counter[str] = field(default_factory=Counter)
    """Failed requests by kind: rejected, database_missing, unavailable, unauthorized."""

    def as_dict(self) -> dict[str, int]:
        out = {
            "lines_written": self.lines_written,
            "batches_written": self.batches_written,
            "lines_rejected": self.lines_rejected,
        }
        out.update({f"failures_{kind}": n for kind, n in sorted(self.failures.items())})
        return out


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """Lines cut into requests, with each request's body where the writer builds it (v1:
    gzip); made by ``prepare`` while an earlier write is still in flight."""

    chunks: list[Sequence[str]]
    bodies: list[bytes] | None = None


class InfluxWriter(Protocol):
    settings: InfluxSettings
    stats: WriterStats

    async def write(self, lines: Sequence[str]) -> None:
        """Store the lines or raise a ``WriteError`` subclass."""

    async def prepare(self, lines: Sequence[str]) -> PreparedWrite:
        """The requests ``write`` would send for ``lines``, built ahead (it sends nothing)."""

    async def write_prepared(self, prepared: PreparedWrite) -> None:
        """``write`` of what ``prepare`` made; may be sent again after a failure."""

    async def ensure_database(self) -> bool:
        """Create the database if the server lets us; True when it confirmed it exists."""

    async def close(self) -> None: ...


class _ChunkingWriter:
    """Chunking, error accounting and the shared ``/query`` call of both writers."""

    def __init__(self, settings: InfluxSettings, *, max_lines: int = MAX_LINES_PER_REQUEST):
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, got {max_lines}")
        self.settings = settings
        self.stats = WriterStats()
        self.max_lines = max_lines
        self._target = settings.describe()
        self._session = LazySession(settings)
        self._warned_bucket = False

    async def write(self, lines: Sequence[str]) -> None:
        await self.write_prepared(await self.prepare(lines))

    async def prepare(self, lines: Sequence[str]) -> PreparedWrite:
        chunks = [
            lines[start : start + self.max_lines] for start in range(0, len(lines), self.max_lines)
        ]
        return PreparedWrite(chunks, await self._bodies(chunks))

    async def _bodies(self, chunks: list[Sequence[str]]) -> list[bytes] | None:
        """The request bodies, for a writer that builds its own."""
        return None

    async def write_prepared(self, prepared: PreparedWrite) -> None:
        rejection: WriteRejected | None = None
        written = 0
        bodies = prepared.bodies
        for k, chunk in enumerate(prepared.chunks):
            try:
                await self._send(chunk, None if bodies is None else bodies[k])
            except WriteError as exc:
                self.stats.failures[exc.kind] += 1
                if isinstance(exc, WriteRejected):
                    self.stats.lines_rejected += len(chunk)
                    rejection = rejection or exc
                    continue
                exc.written = written
                raise
            written += len(chunk)
            self.stats.lines_written += len(chunk)
            self.stats.batches_written += 1
        if rejection is not None:
            rejection.written = written
            raise rejection

    async def _send(self, chunk: Sequence[str], body: bytes | None) -> None:
        raise NotImplementedError

    def _http(self) -> aiohttp.ClientSession:
        return self._session.get()

    async def ensure_database(self) -> bool:
        query = f"CREATE DATABASE {quote_ident(self.settings.database)}"
        try:
            async with self._http().post(
                f"{self.settings.url}/query", data={"q": query}
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WriteUnavailable(self._target, f"cannot reach the server: {exc!r}") from exc
        if status >= 500:
            message = server_message(body, f"HTTP {status}")
            raise WriteUnavailable(self._target, f"server error ({status}): {message}")
        if status == 200:
            try:
                parse_chunk(body.decode(errors="replace"), [])
            except (ResponseError, ValueError) as exc:
                self._refused_create(status, str(exc))
                return False
            log.info("%s: database ensured", self._target)
            return True
        self._refused_create(status, server_message(body, f"HTTP {status}"))
        return False

    def _refused_create(self, status: int, message: str) -> None:
        # Once per writer: callers may retry this at every reconnect; one warning says it.
        if self._warned_bucket:
            return
        self._warned_bucket = True
        if self.settings.mode == "v2":
            log.warning(
                "%s: the server refused CREATE DATABASE over /query (%s: %s); the bucket %r "
                "must already exist (InfluxDB 2.x: create it, plus a DBRP mapping for reads)",
                self._target,
                status,
                message,
                self.settings.bucket,
            )
        else:
            log.warning(
                "%s: cannot create database %r (%s: %s); it must already exist, or writes "
                "will fail with DatabaseMissing",
                self._target,
                self.settings.database,
                status,
                message,
            )

    async def close(self) -> None:
        await self._session.close()


def _gzip_body(lines: Sequence[str]) -> bytes:
    # Level 1: most of the size win for a fraction of the CPU.
    return gzip.compress("\n".join(lines).encode(), compresslevel=1)


def _plain_body(lines: Sequence[str]) -> bytes:
    return "\n".join(lines).encode()


class V1Writer(_ChunkingWriter):
    """InfluxDB 1.x ``POST /write?db=&rp=&precision=ns``, the body gzipped unless the
    server is on this host (``InfluxSettings.gzip``)."""

    async def _bodies(self, chunks: list[Sequence[str]]) -> list[bytes] | None:
        if not self.settings.compresses:
            return [_plain_body(chunk) for chunk in chunks]
        # In a thread: zlib lets go of the GIL, so the event loop decodes the next batches
        # meanwhile (about 4 ms per 5,000 lines, docs/benchmarks.md "Collector ingest").
        return await asyncio.to_thread(lambda: [_gzip_body(chunk) for chunk in chunks])

    async def _send(self, chunk: Sequence[str], body: bytes | None) -> None:
        params = {"db": self.settings.database, "precision": "ns"}
        if self.settings.retention_policy:
            params["rp"] = self.settings.retention_policy
        assert body is not None  # _bodies built it in prepare
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.settings.compresses:
            headers["Content-Encoding"] = "gzip"
        try:
            async with self._http().post(
                f"{self.settings.url}/write", params=params, data=body, headers=headers
            ) as response:
                status = response.status
                text = await response.read() if status >= 300 else b""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WriteUnavailable(self._target, f"cannot reach the server: {exc!r}") from exc
        if status >= 300:
            raise classify_write_failure(
                self._target, status, server_message(text, f"HTTP {status}")
            )


class V2Writer(_ChunkingWriter):
    """InfluxDB 2.x ``/api/v2/write`` (or 1.8's compatibility API) through influxdb-client."""

    def __init__(self, settings: InfluxSettings, *, max_lines: int = MAX_LINES_PER_REQUEST):
        super().__init__(settings, max_lines=max_lines)
        self._client: InfluxDBClientAsync | None = None
        self._write_api: WriteApiAsync | None = None

    def _api(self) -> WriteApiAsync:
        if self._write_api is None:
            token = self.settings.token
            self._client = InfluxDBClientAsync(
                url=self.settings.url,
                token=token.get_secret_value() if token else "",
                org=self.settings.org,
                timeout=int(self.settings.timeout * 1000),
                enable_gzip=self.settings.compresses,
            )
            self._write_api = self._client.write_api()
        return self._write_api

    async def _send(self, chunk: Sequence[str], body: bytes | None) -> None:
        # The client builds (and gzips, unless told not to) its own request.
        try:
            await self._api().write(
                bucket=self.settings.bucket,
                org=self.settings.org,
                record=list(chunk),
                write_precision=_NS,
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            message = server_message(exc.body, str(exc.reason or f"HTTP {status}"))
            if status == 0:
                raise WriteUnavailable(self._target, f"request failed: {message}") from exc
            raise classify_write_failure(self._target, status, message) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WriteUnavailable(self._target, f"cannot reach the server: {exc!r}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
            self._write_api = None
        await super().close()


def make_writer(
    settings: InfluxSettings, *, max_lines: int = MAX_LINES_PER_REQUEST
) -> InfluxWriter:
    if settings.mode == "v2":
        return V2Writer(settings, max_lines=max_lines)
    return V1Writer(settings, max_lines=max_lines)
