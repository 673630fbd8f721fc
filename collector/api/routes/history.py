"""The past: the stored trend (``/history``), reports computed per hour / shift / day from
the raw samples (``/report``), and the recomputation of any window (``/recompute``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from collector.api.errors import ApiError, excerpt
from collector.api.models import (
    BucketHistoryOut,
    RecomputeOut,
    ReportOut,
    ReportPlanOut,
    WindowHistoryOut,
)
from collector.api.runtime import Runtime, reader_of
from collector.api.scopes import (
    check_industry,
    check_scope,
    declared_rates,
    known_scope_ids,
    rate_dict,
    unknown_scope_id,
)
from collector.api.timerange import check_range, iso
from collector.history import Grid, Period, rate_trend, report_windows
from collector.kpi.inputs import Window
from collector.kpi.service import KpiResult
from collector.settings import ApiSettings
from common.durations import parse_duration

_PERIOD_SECONDS = {"hour": 3600, "day": 86400}
_START = Query(description="ISO 8601 with a time zone, e.g. 2026-11-28T08:00:00Z")
_END = Query(description="ISO 8601 with a time zone; the range is [start, end)")


def grid_of(settings: ApiSettings) -> Grid:
    return Grid(settings.shift_start_s, int(settings.shift_length))


def parse_period(text: str, settings: ApiSettings) -> Period:
    """``hour``/``shift``/``day``, or a length equal to one of them (``1h``, ``8h``, ``1d``)."""
    if text in ("hour", "shift", "day"):
        return text  # type: ignore[return-value]
    lengths = {**_PERIOD_SECONDS, "shift": settings.shift_length}
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = -1.0
    for name, length in lengths.items():
        if seconds == length:
            return name  # type: ignore[return-value]
    allowed = f"hour, shift, day, 1h, {settings.shift_length / 3600:g}h, 1d"
    raise ApiError(
        422, "invalid_request", f"window {excerpt(text)}: use one of {allowed}", field="window"
    )


def _report_entry(
    result: KpiResult,
    partial: bool,
    scope: str | None,
    industry: str | None,
    declared: dict[str, float | None],
) -> dict[str, Any]:
    window = result.window
    return {
        "window": window.to_dict(),
        "start": iso(window.start_ns),
        "end": iso(window.end_ns),
        "partial": partial,
        "register_versions": sorted({e.register_version for e in result.evaluations}),
        "thresholds": result.evaluations[0].thresholds if result.evaluations else None,
        "rates": [
            rate_dict(r, declared)
            for r in result.rates
            if (scope is None or r.scope == scope) and (industry is None or r.industry == industry)
        ],
        "processes": [
            {
                "process_id": p.process_id,
                "plant_id": p.plant_id,
                "line_id": p.line_id,
                "industry": p.industry,
                "status": str(p.status),
                "reasons": [str(x) for x in p.reasons],
            }
            for e in result.evaluations
            for p in e.processes
        ],
    }


def router(runtime: Runtime, settings: ApiSettings) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["history"])
    grid = grid_of(settings)

    @r.get("/history")
    async def history(
        scope: Annotated[
            str, Query(description="line, plant, enterprise, region_official, region_pooled")
        ],
        scope_id: Annotated[str, Query(description="line, plant or enterprise id, or region")],
        start: Annotated[datetime, _START],
        end: Annotated[datetime, _END],
        industry: Annotated[str, Query(description="all, discrete or process")] = "all",
        resolution: Annotated[
            Literal["window", "hour", "shift", "day"],
            Query(description="window: every stored point; hour/shift/day: aggregated"),
        ] = "window",
        plant: Annotated[str | None, Query(description="for a line: its plant")] = None,
    ) -> WindowHistoryOut | BucketHistoryOut:
        """The stored trend of one scope's rate (``kpi_rate`` points the live loop wrote).

        ``window`` returns every stored point (one per evaluation, stamped with its
        window's end); ``hour``/``shift``/``day`` average them per bucket on the shift
        grid. For the rate *of* a shift or day use ``/report``, which computes that window
        from the raw samples.
        """
        check_scope(scope)
        check_industry(industry)
        start_ns, end_ns = check_range(start, end, settings.max_range, "history")
        points = await rate_trend(
            reader_of(runtime),
            start_ns,
            end_ns,
            scope=scope,
            scope_id=scope_id,
            industry=industry,
            resolution=resolution,
            grid=grid,
            plant=plant,
        )
        if not points and scope_id not in known_scope_ids(runtime.kpi.registers)[scope]:
            # A scope no longer in the register still has its stored history; an id that
            # has neither is a typo worth saying so.
            raise unknown_scope_id(scope, scope_id, runtime.kpi.registers)
        for point in points:
            point["time"] = iso(point["time_ns"])
        model = WindowHistoryOut if resolution == "window" else BucketHistoryOut
        return model.model_validate(
            {
                "scope": scope,
                "scope_id": scope_id,
                "industry": industry,
                "resolution": resolution,
                "start_ns": start_ns,
                "end_ns": end_ns,
                "source": "stored kpi_rate points",
                "points": points,
            }
        )

    def _plan(start: datetime, end: datetime, window: str) -> tuple[list[Window], Period]:
        period = parse_period(window, settings)
        start_ns, end_ns = check_range(start, end, settings.max_range, "a report")
        length, _ = grid.period(period)
        if length / 1e9 > settings.max_recompute:
            raise ApiError(
                422,
                "invalid_request",
                f"a {period} is longer than one recomputation may cover "
                f"({settings.max_recompute:g}s, COLLECTOR_API__MAX_RECOMPUTE)",
                field="window",
            )
        windows = report_windows(start_ns, end_ns, period, grid)
        if len(windows) > settings.report_max_windows:
            raise ApiError(
                422,
                "too_many_windows",
                f"{len(windows)} {period} windows between start and end; one request computes "
                f"at most {settings.report_max_windows} (split the range, or use a longer window)",
                field="end",
                windows=len(windows),
                max_windows=settings.report_max_windows,
            )
        return windows, period

    @r.get("/report/windows")
    async def report_plan(
        start: Annotated[datetime, _START],
        end: Annotated[datetime, _END],
        window: Annotated[str, Query(description="hour, shift or day (or 1h, 8h, 1d)")] = "shift",
    ) -> ReportPlanOut:
        """The windows ``/report`` would compute for this range, without computing them
        (the ``kpi report`` CLI requests them one by one to show progress)."""
        windows, period = _plan(start, end, window)
        length, _ = grid.period(period)
        return ReportPlanOut.model_validate(
            {
                "period": period,
                "windows": [
                    {
                        **w.to_dict(),
                        "start": iso(w.start_ns),
                        "end": iso(w.end_ns),
                        "partial": w.duration_ns != length,
                    }
                    for w in windows
                ],
            }
        )

    @r.get("/report")
    async def report(
        start: Annotated[datetime, _START],
        end: Annotated[datetime, _END],
        window: Annotated[str, Query(description="hour, shift or day (or 1h, 8h, 1d)")] = "shift",
        scope: Annotated[str | None, Query(description="only rates of this scope kind")] = None,
        industry: Annotated[str | None, Query(description="only this industry split")] = None,
    ) -> ReportOut:
        """The KPI per hour / shift / day, each window what ``/recompute`` gives for it:
        auditable figures, not an average of the live windows. Whole windows on the hour
        grid are combined from the hourly partials the live loop stored; others (and hours
        not stored) are computed from the raw samples.

        Windows sit on the grid (shifts and days start at ``COLLECTOR_API__SHIFT_START``,
        UTC); the first and last are clipped to ``[start, end)`` and marked ``partial``.
        """
        if scope is not None:
            check_scope(scope)
        if industry is not None:
            check_industry(industry)
        windows, period = _plan(start, end, window)
        length, _ = grid.period(period)
        entries = []
        declared = declared_rates(runtime.kpi.registers)
        for w, result in zip(windows, await runtime.kpi.report(windows), strict=True):
            entries.append(
                _report_entry(result, w.duration_ns != length, scope, industry, declared)
            )
        return ReportOut.model_validate({"period": period, "windows": entries})

    @r.get("/recompute")
    async def recompute(
        start: Annotated[datetime, _START], end: Annotated[datetime, _END]
    ) -> RecomputeOut:
        """Recompute a past window from the raw samples stored in InfluxDB (nothing is
        written): the same read and evaluation the live loop runs, so it gives the live
        answer for a live window."""
        start_ns, end_ns = check_range(start, end, settings.max_recompute, "a recomputation")
        result = await runtime.kpi.compute(Window(start_ns, end_ns))
        return RecomputeOut.model_validate(result.to_dict())

    return r
