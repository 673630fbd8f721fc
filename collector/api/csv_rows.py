"""CSV text of stored ``process_status`` and ``kpi_rate`` points (pure).

One header row, then one row per stored point; ``time`` is ISO 8601 UTC and ``time_ns``
the exact stored timestamp (the window's end). Empty cells are absent fields (``rate``
with no key process in scope, ``manual_share`` without a mode signal). JSON-valued
fields (``reasons`` of a rate, ``thresholds``) stay JSON text inside their cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from collector.api.timerange import iso
from collector.storage.reader import PointRow
from collector.storage.schema import KPI_RATE, PROCESS_STATUS

PROCESS_TAGS = PROCESS_STATUS.tags
PROCESS_FIELDS = tuple(f for f in PROCESS_STATUS.fields if f not in ("evidence", "outages"))
"""The per-signal evidence and the outages are JSON documents: the API shows them, a
spreadsheet row does not."""
RATE_TAGS = KPI_RATE.tags
RATE_FIELDS = tuple(KPI_RATE.fields)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float
    return str(value)


def _text(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def header(tags: Sequence[str], fields: Sequence[str]) -> str:
    return _text([["time", "time_ns", *tags, *fields]])


def rows(points: Iterable[PointRow], tags: Sequence[str], fields: Sequence[str]) -> str:
    return _text(
        [
            iso(p.ts_ns),
            str(p.ts_ns),
            *(p.tags.get(t, "") for t in tags),
            *(_cell(p.fields.get(f)) for f in fields),
        ]
        for p in points
    )
