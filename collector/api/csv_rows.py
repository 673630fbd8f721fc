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
from collector.i18n import DEFAULT_LANG, Lang, translator
from collector.i18n.catalogue import N_
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


COLUMN_LABELS: dict[str, str] = {
    "time": N_("time (UTC)"),
    "time_ns": N_("time (ns since 1970, UTC)"),
    "enterprise": N_("enterprise"),
    "plant": N_("plant"),
    "line": N_("line"),
    "process": N_("process"),
    "industry": N_("industry type"),
    "scope": N_("scope"),
    "scope_id": N_("scope id"),
    "status": N_("status"),
    "counted": N_("counted"),
    "reasons": N_("reasons"),
    "coverage_min": N_("lowest coverage"),
    "longest_gap_s": N_("longest gap (s)"),
    "manual_share": N_("manual mode share"),
    "scheduled_s": N_("scheduled (s)"),
    "window_s": N_("window (s)"),
    "register_version": N_("register version"),
    "register_versions": N_("register versions"),
    "register_digest": N_("register digest"),
    "thresholds": N_("thresholds"),
    "complete": N_("complete"),
    "revision": N_("revision"),
    "rate": N_("rate"),
    "numerator": N_("digitalized key processes"),
    "denominator": N_("key processes"),
    "not_scheduled": N_("not scheduled"),
    "enterprises": N_("enterprises"),
    "provisional": N_("provisional"),
}
"""Column headers for people (``?lang=zh``); in English the headers are the stored names,
which integrations read."""


def header(tags: Sequence[str], fields: Sequence[str], lang: Lang = DEFAULT_LANG) -> str:
    names = ["time", "time_ns", *tags, *fields]
    if lang == DEFAULT_LANG:
        return _text([names])
    _ = translator(lang)
    names = [_(COLUMN_LABELS[name]) if name in COLUMN_LABELS else name for name in names]
    # A byte-order mark: Excel on a Chinese Windows reads a CSV without one as GBK.
    return "\ufeff" + _text([names])


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
