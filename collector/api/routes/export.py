"""CSV exports of the stored per-process statuses and per-scope rates, streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from collector.api import csv_rows
from collector.api.errors import ApiError
from collector.api.runtime import Runtime, reader_of
from collector.api.timerange import check_range, iso
from collector.history import HOUR, iter_points
from collector.i18n import DEFAULT_LANG, Lang, parse_lang
from collector.settings import ApiSettings
from collector.storage.reader import PointRow
from collector.storage.schema import KPI_RATE, PROCESS_STATUS

_START = Query(description="ISO 8601 with a time zone, e.g. 2026-11-28T00:00:00Z")
_END = Query(description="ISO 8601 with a time zone; the range is [start, end)")
_LANG = Query(
    description="zh: column headers in Simplified Chinese for people; absent or en: the "
    "stored names (what integrations read). Cells (codes, ids) are the same in both."
)


def _header_lang(lang: str | None) -> Lang:
    # Only an explicit ?lang= changes a machine-readable header, never Accept-Language.
    if not lang:
        return DEFAULT_LANG
    try:
        return parse_lang(lang)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"lang: {exc}", field="lang") from None


async def _stream(
    first: list[PointRow],
    rest: AsyncIterator[list[PointRow]],
    tags: Sequence[str],
    fields: Sequence[str],
    lang: Lang,
) -> AsyncIterator[str]:
    yield csv_rows.header(tags, fields, lang)
    yield csv_rows.rows(first, tags, fields)
    async for chunk in rest:
        yield csv_rows.rows(chunk, tags, fields)


async def _csv(
    runtime: Runtime,
    measurement: str,
    start_ns: int,
    end_ns: int,
    tags: Sequence[str],
    fields: Sequence[str],
    filename: str,
    lang: Lang,
) -> StreamingResponse:
    slices = iter_points(
        reader_of(runtime), measurement, start_ns, end_ns, slice_ns=HOUR, fields=fields
    )
    # The first slice is read before the response starts, so an unreachable InfluxDB is
    # a 503 JSON error rather than a 200 with a cut-off file.
    first = await anext(slices)
    return StreamingResponse(
        _stream(first, slices, tags, fields, lang),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _name(kind: str, start_ns: int, end_ns: int) -> str:
    def stamp(ns: int) -> str:
        return iso(ns).replace(":", "").replace("-", "")[:15]

    return f"{kind}_{stamp(start_ns)}_{stamp(end_ns)}.csv"


def router(runtime: Runtime, settings: ApiSettings) -> APIRouter:
    r = APIRouter(prefix="/api/v1/export", tags=["export"])

    @r.get("/processes.csv", response_class=StreamingResponse)
    async def processes_csv(
        start: Annotated[datetime, _START],
        end: Annotated[datetime, _END],
        lang: Annotated[str | None, _LANG] = None,
    ) -> StreamingResponse:
        """Every stored ``process_status`` point in ``[start, end)`` (one row per key
        process per evaluation window), with a header row; streamed hour by hour."""
        start_ns, end_ns = check_range(start, end, settings.max_range, "an export")
        return await _csv(
            runtime,
            PROCESS_STATUS.name,
            start_ns,
            end_ns,
            csv_rows.PROCESS_TAGS,
            csv_rows.PROCESS_FIELDS,
            _name("processes", start_ns, end_ns),
            _header_lang(lang),
        )

    @r.get("/rates.csv", response_class=StreamingResponse)
    async def rates_csv(
        start: Annotated[datetime, _START],
        end: Annotated[datetime, _END],
        lang: Annotated[str | None, _LANG] = None,
    ) -> StreamingResponse:
        """Every stored ``kpi_rate`` point in ``[start, end)`` (one row per scope and
        industry split per evaluation window), with a header row; streamed hour by hour."""
        start_ns, end_ns = check_range(start, end, settings.max_range, "an export")
        return await _csv(
            runtime,
            KPI_RATE.name,
            start_ns,
            end_ns,
            csv_rows.RATE_TAGS,
            csv_rows.RATE_FIELDS,
            _name("rates", start_ns, end_ns),
            _header_lang(lang),
        )

    return r
