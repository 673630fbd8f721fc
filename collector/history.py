"""Read the stored KPI results (``kpi_rate``, ``process_status``) back from InfluxDB.

Two different questions, kept apart on purpose:

* *How has the rate moved?* — :func:`rate_trend` reads the points the live loop stored,
  one per evaluation window, as they are (``window``) or averaged per hour / shift / day
  with InfluxQL ``GROUP BY time``. The live windows slide (1 h evaluated every minute), so
  an hourly figure here is a mean of overlapping windows: a trend, not an audit figure.
* *What was the rate of shift 2 on Tuesday?* — that is one window of that length computed
  from the raw samples (``KpiService.compute``); :func:`report_windows` lays those windows
  on the hour / shift / day grid. The API's ``/report`` does the computing.

Times are int ns since the epoch, UTC; shifts and production days start at a configured
UTC time of day.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from collector.kpi.inputs import Window
from collector.storage.influxql import quote_ident, tag_filter, time_range
from collector.storage.reader import InfluxQLReader, PointRow
from collector.storage.schema import KPI_RATE

__all__ = [
    "Grid",
    "Resolution",
    "iter_points",
    "rate_points",
    "rate_trend",
    "report_windows",
]

S = 1_000_000_000
HOUR = 3600 * S
DAY = 86400 * S

Resolution = Literal["window", "hour", "shift", "day"]
Period = Literal["hour", "shift", "day"]

RATE_FIELDS = tuple(KPI_RATE.fields)


@dataclass(frozen=True)
class Grid:
    """Where hours, shifts and production days begin (UTC)."""

    shift_start_s: int = 0
    shift_length_s: int = 8 * 3600

    def period(self, period: Period) -> tuple[int, int]:
        """``(length_ns, offset_ns)``: cells are ``[k·length + offset, (k+1)·length + offset)``."""
        length = {"hour": HOUR, "shift": self.shift_length_s * S, "day": DAY}[period]
        return length, (self.shift_start_s * S) % length

    def floor(self, ts_ns: int, period: Period) -> int:
        length, offset = self.period(period)
        return (ts_ns - offset) // length * length + offset


def report_windows(start_ns: int, end_ns: int, period: Period, grid: Grid) -> list[Window]:
    """The grid cells that meet ``[start, end)``, clipped to it (first and last may be
    partial: a report covers exactly the range asked for, never data outside it)."""
    length, _ = grid.period(period)
    windows = []
    cell = grid.floor(start_ns, period)
    while cell < end_ns:
        windows.append(Window(max(cell, start_ns), min(cell + length, end_ns)))
        cell += length
    return windows


def _decode(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if isinstance(out.get("reasons"), str):
        # Stored as compact JSON (a Pareto: code → processes); give it back as an object.
        out["reasons"] = json.loads(out["reasons"])
    for name in KPI_RATE.fields_of_type("integer"):
        if name in out:
            out[name] = int(out[name])
    for name in KPI_RATE.fields_of_type("float"):
        if name in out:
            out[name] = float(out[name])  # JSON drops the ".0" of whole floats
    return out


def _scope_tags(
    scope: str, scope_id: str, industry: str, plant: str | None = None
) -> dict[str, str]:
    tags = {"scope": scope, "scope_id": scope_id, "industry": industry}
    if plant:
        tags["plant"] = plant
    return tags


async def rate_points(
    reader: InfluxQLReader,
    start_ns: int,
    end_ns: int,
    *,
    scope: str,
    scope_id: str,
    industry: str = "all",
    plant: str | None = None,
) -> list[dict[str, Any]]:
    """Every stored ``kpi_rate`` point of one scope in ``[start, end)``, as written.

    A point's time is its window's end; ``rate`` is absent when the denominator was 0.
    """
    rows = await reader.points(
        KPI_RATE.name,
        start_ns,
        end_ns,
        tags=_scope_tags(scope, scope_id, industry, plant),
        fields=RATE_FIELDS,
    )
    return [
        {
            "time_ns": row.ts_ns,
            "enterprise": row.tags.get("enterprise") or None,
            "plant": row.tags.get("plant") or None,
            "rate": None,
            **_decode(row.fields),
        }
        for row in rows
    ]


async def rate_trend(
    reader: InfluxQLReader,
    start_ns: int,
    end_ns: int,
    *,
    scope: str,
    scope_id: str,
    industry: str,
    resolution: Resolution,
    grid: Grid,
    plant: str | None = None,
) -> list[dict[str, Any]]:
    """Stored points of one scope, as they are or aggregated per hour / shift / day.

    Aggregated buckets carry ``rate_mean`` / ``rate_min`` / ``rate_max`` over the stored
    windows whose *end* falls in the bucket, ``points`` (stored windows), and
    ``numerator`` / ``denominator`` summed over them with ``rate_pooled`` = their ratio.
    ``time_ns`` is the bucket's start on the grid (the first bucket may start before
    ``start``; only points inside the range are counted).
    """
    if resolution == "window":
        return await rate_points(
            reader,
            start_ns,
            end_ns,
            scope=scope,
            scope_id=scope_id,
            industry=industry,
            plant=plant,
        )
    length, offset = grid.period(resolution)
    where = " AND ".join(
        [tag_filter(_scope_tags(scope, scope_id, industry, plant)), time_range(start_ns, end_ns)]
    )
    rate, num, den = quote_ident("rate"), quote_ident("numerator"), quote_ident("denominator")
    q = (
        f"SELECT mean({rate}) AS rate_mean, min({rate}) AS rate_min, max({rate}) AS rate_max, "
        f"count({den}) AS points, sum({num}) AS numerator, sum({den}) AS denominator "
        f"FROM {quote_ident(KPI_RATE.name)} WHERE {where} "
        f"GROUP BY time({length}ns, {offset}ns), {quote_ident('enterprise')}, "
        f"{quote_ident('plant')} fill(none)"
    )
    out: list[dict[str, Any]] = []
    for series in await reader.query(q):
        for row in series.rows():
            numerator = int(row["numerator"] or 0)
            denominator = int(row["denominator"] or 0)
            out.append(
                {
                    "time_ns": int(row["time"]),
                    "bucket_s": length // S,
                    "enterprise": series.tags.get("enterprise") or None,
                    "plant": series.tags.get("plant") or None,
                    "points": int(row["points"]),
                    "rate_mean": _float(row["rate_mean"]),
                    "rate_min": _float(row["rate_min"]),
                    "rate_max": _float(row["rate_max"]),
                    "numerator": numerator,
                    "denominator": denominator,
                    "rate_pooled": numerator / denominator if denominator else None,
                }
            )
    out.sort(key=lambda r: (r["time_ns"], r["enterprise"] or "", r["plant"] or ""))
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def iter_points(
    reader: InfluxQLReader,
    measurement: str,
    start_ns: int,
    end_ns: int,
    *,
    slice_ns: int = HOUR,
    fields: Sequence[str] | None = None,
) -> AsyncIterator[list[PointRow]]:
    """Points of ``measurement`` in ``[start, end)`` one time slice at a time, so an export
    of a month streams in hour-sized reads instead of holding the month in memory."""
    t = start_ns
    while t < end_ns:
        upper = min(t + slice_ns, end_ns)
        yield await reader.points(measurement, t, upper, fields=fields)
        t = upper
