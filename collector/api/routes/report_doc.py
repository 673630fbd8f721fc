"""``/report-doc``: the report an enterprise sends upward, as PDF, XLSX or its figures as
JSON (collector/report_doc, docs/report-doc.md).

At most :data:`CONCURRENT_REPORTS` reports are made at once; further requests wait their
turn (they hold no resource while waiting). Reading the stored results runs on the event
loop; the figures, their digest and the files are made in the report's own worker thread
(``collector/report_doc/worker.py``), never on the event loop nor in the default executor
the KPI loop shares.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from collector.api.language import lang_param
from collector.api.routes.history import grid_of
from collector.api.runtime import Runtime, reader_of
from collector.api.scopes import unknown_scope_id
from collector.api.timerange import check_range
from collector.i18n import Lang
from collector.report_doc import DIGEST_HEADER
from collector.report_doc.document import ApiLimits, ReportDoc, build_report
from collector.report_doc.pdf import render_pdf
from collector.report_doc.period import file_stem
from collector.report_doc.worker import in_worker
from collector.report_doc.xlsx import render_xlsx
from collector.settings import ApiSettings
from common.register_loader import LoadedRegister

PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CONCURRENT_REPORTS = 2
"""Reports made at once (one may read InfluxDB while the other renders in the worker)."""

_START = Query(description="ISO 8601 with a time zone, e.g. 2026-11-01T00:00:00+08:00")
_END = Query(description="ISO 8601 with a time zone; the period is [start, end)")


def _register(runtime: Runtime, enterprise: str) -> LoadedRegister:
    for register in runtime.kpi.registers:
        if register.enterprise_id == enterprise:
            return register
    raise unknown_scope_id("enterprise", enterprise, runtime.kpi.registers, field="enterprise")


def router(runtime: Runtime, settings: ApiSettings) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["report"])
    _, hour_offset = grid_of(settings).period("hour")
    limits = ApiLimits(
        max_range_s=settings.max_range,
        max_windows=settings.report_max_windows,
        hour_offset_ns=hour_offset,
    )
    slots = asyncio.Semaphore(CONCURRENT_REPORTS)

    @r.get(
        "/report-doc",
        response_model=ReportDoc,
        responses={
            200: {
                "description": "The figures as JSON, or the report as PDF or XLSX; "
                f"`{DIGEST_HEADER}` carries the figures' SHA-256 in every format.",
                "content": {PDF: {}, XLSX: {}},
            }
        },
    )
    async def report_doc(
        response: Response,
        enterprise: Annotated[str, Query(description="Enterprise id (the register's)")],
        start: Annotated[datetime, _START],
        end: Annotated[datetime, _END],
        language: Annotated[Lang, Depends(lang_param)],
        format: Annotated[
            Literal["json", "pdf", "xlsx"],
            Query(description="json: the figures with their digest; pdf or xlsx: the report"),
        ] = "json",
    ) -> ReportDoc | Response:
        """The key-process digitalization rate of one enterprise over a period (up to
        ``COLLECTOR_API__REPORT_DOC_MAX_RANGE``, a year): the measured rate per enterprise,
        plant and line beside the declared rate, each key process's status shares and
        reasons, the trend per day (per week beyond about three months), the register
        versions and thresholds in force, how to reproduce every number, and a SHA-256
        digest of the figures. Read from the stored results only (``kpi_rate``,
        ``process_status``), summed by InfluxDB; see docs/report-doc.md. At most two reports
        are made at once; a further request waits its turn."""
        register = _register(runtime, enterprise)
        start_ns, end_ns = check_range(start, end, settings.report_doc_max_range, "a report")
        offset = start.utcoffset() or timedelta(0)
        async with slots:
            doc = await build_report(
                reader_of(runtime),
                register,
                start_ns,
                end_ns,
                window_s=runtime.kpi.window_s,
                utc_offset_s=int(offset.total_seconds()),
                limits=limits,
            )
            if format == "json":
                response.headers[DIGEST_HEADER] = doc.digest
                return doc
            # WeasyPrint and openpyxl are CPU-bound and blocking: in the report's worker.
            if format == "pdf":
                content, media = await in_worker(render_pdf, doc, language), PDF
            else:
                content, media = await in_worker(render_xlsx, doc, language), XLSX
        stem = file_stem(enterprise, start, end, language)
        return Response(
            content,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="{stem}.{format}"',
                DIGEST_HEADER: doc.digest,
            },
        )

    return r
