"""The report as an XLSX workbook (openpyxl): one sheet per part, numbers as numbers (rates
formatted as percentages, so a reader can compute with them), the trend with a line
chart, and the digest and reproduction notes beside the figures.

Every text is written as a text cell, whatever it begins with: openpyxl would store a string
starting with ``=`` as a formula, and a register's name such as ``=HYPERLINK(…)`` would run
in the reader's spreadsheet (formula injection). :func:`_put` is the one way a value enters
a cell.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from collector.i18n import Lang
from collector.report_doc.chart import DECLARED_COLOUR, PALETTE
from collector.report_doc.document import ReportDoc
from collector.report_doc.view import STATUSES, View

__all__ = ["render_xlsx"]

PERCENT = "0.00%"
COUNT = "#,##0"
_THIN = Side(style="thin", color="9AA7B5")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEAD_FILL = PatternFill("solid", fgColor="E4ECF5")
_HEAD_FONT = Font(bold=True, color="1F4E79")
_TITLE_FONT = Font(bold=True, size=14, color="1F4E79")
_WRAP = Alignment(wrap_text=True, vertical="top")


def _put(ws: Worksheet, row: int, col: int, value: Any) -> Cell:
    """Write ``value`` into a cell; a string always as text, never as a formula."""
    cell: Cell = ws.cell(row, col, value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def _sheet(book: Workbook, title: str) -> Worksheet:
    # Sheet titles: at most 31 characters, none of []:*?/\ (Excel's rules).
    clean = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31]
    sheet: Worksheet = book.create_sheet(clean)
    return sheet


def _table(
    ws: Worksheet,
    top: int,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    formats: Sequence[str | None] = (),
    widths: Sequence[float] = (),
) -> int:
    """Write a bordered table with its header row at ``top``; the next free row."""
    for col, text in enumerate(headers, start=1):
        cell = _put(ws, top, col, text)
        cell.font, cell.fill, cell.border, cell.alignment = _HEAD_FONT, _HEAD_FILL, _BORDER, _WRAP
    for r, row in enumerate(rows, start=top + 1):
        for col, value in enumerate(row, start=1):
            cell = _put(ws, r, col, value)
            cell.border = _BORDER
            fmt = formats[col - 1] if col - 1 < len(formats) else None
            if fmt:
                cell.number_format = fmt
            elif isinstance(value, str):
                cell.alignment = _WRAP
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    return top + len(rows) + 2


def _title(ws: Worksheet, v: View, text: str) -> None:
    _put(ws, 1, 1, text).font = _TITLE_FONT
    _put(ws, 2, 1, f"{v.enterprise} ({v.figures.enterprise_id}) · {v.period}")
    ws.freeze_panes = "A5"


def _summary(book: Workbook, v: View) -> None:
    _ = v._
    f = v.figures
    ws = book.active
    assert ws is not None
    ws.title = _("Summary")[:31]
    _put(ws, 1, 1, v.title).font = _TITLE_FONT
    own = f.rates[0]
    facts: list[tuple[str, Any, str | None]] = [
        (_("Enterprise"), f"{v.enterprise} ({f.enterprise_id})", None),
        (_("Region"), f.region, None),
        (_("Period"), v.period, None),
        (_("Period start (UTC)"), f.start, None),
        (_("Period end (UTC)"), f.end, None),
        (_("Measured rate (实测值)"), f.measured_rate, PERCENT),
        (_("Declared rate (申报值)"), f.declared_rate, PERCENT),
        (_("Measured minus declared"), f.measured_minus_declared, PERCENT),
        (_("Σ digitalized"), own.numerator, COUNT),
        (_("Σ judged"), own.denominator, COUNT),
        (_("Windows that tile the period"), v.tiles_text, None),
        (_("Window length"), v.window_length, None),
        (_("Trend"), v.bucket, None),
        (_("Generated"), v.generated, None),
        (_("SHA-256 of the figures"), v.doc.digest, None),
        (_("Digest method"), v.doc.digest_method, None),
    ]
    for r, (label, value, fmt) in enumerate(facts, start=3):
        _put(ws, r, 1, label).font = Font(bold=True)
        cell = _put(ws, r, 2, value)
        if fmt:
            cell.number_format = fmt
        ws.cell(r, 1).border = ws.cell(r, 2).border = _BORDER
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 80


def _rates(book: Workbook, v: View) -> None:
    _ = v._
    ws = _sheet(book, _("Rates"))
    _title(ws, v, _("Measured rate per enterprise, plant and line"))
    headers = [
        _("Level"),
        _("ID"),
        _("Plant"),
        _("Name"),
        _("Measured rate (实测值)"),
        _("Σ digitalized"),
        _("Σ judged"),
        _("Σ not scheduled"),
        _("Σ provisional"),
        _("Windows"),
        _("Declared rate (申报值)"),
    ]
    rows = [
        [
            v.scope_kind(r.scope),
            r.scope_id,
            r.plant_id or "",
            v.scope_name(r),
            r.rate,
            r.numerator,
            r.denominator,
            r.not_scheduled,
            r.provisional,
            r.tiles,
            v.figures.declared_rate if r.scope == "enterprise" else None,
        ]
        for r in v.figures.rates
    ]
    formats = [None, None, None, None, PERCENT, COUNT, COUNT, COUNT, COUNT, COUNT, PERCENT]
    _table(ws, 4, headers, rows, formats, [12, 20, 12, 26, 14, 14, 14, 14, 14, 14, 14])


def _processes(book: Workbook, v: View) -> None:
    _ = v._
    ws = _sheet(book, _("Key processes"))
    _title(ws, v, _("Key processes: status share of the windows"))
    headers = [
        _("Key process"),
        _("Name"),
        _("Equipment"),
        _("Plant"),
        _("Line"),
        _("Industry"),
        _("Windows"),
        *(f"{v.status(s)} ({s})" for s in STATUSES),
        *(_("Share: {status}", status=v.status(s)) for s in STATUSES),
        _("Reasons (windows)"),
    ]
    rows = [
        [
            p.process_id,
            v.process(p.process_id),
            v.equipment(p.process_id),
            p.plant_id,
            p.line_id,
            p.industry,
            p.tiles,
            *(p.statuses[s] for s in STATUSES),
            *(p.shares[s] for s in STATUSES),
            v.reasons_text(p),
        ]
        for p in v.figures.processes
    ]
    formats = [None] * 6 + [COUNT] * 5 + [PERCENT] * 4 + [None]
    widths = [18, 18, 20, 10, 8, 10, 12] + [14] * 8 + [60]
    _table(ws, 4, headers, rows, formats, widths)


def _reasons(book: Workbook, v: View) -> None:
    _ = v._
    ws = _sheet(book, _("Reasons"))
    _title(ws, v, _("Reasons and what to fix"))
    headers = [
        _("Key process"),
        _("Name"),
        _("Code"),
        _("Reason"),
        _("Windows"),
        _("Share of the process's windows"),
        _("What to fix"),
    ]
    rows = [
        [
            p.process_id,
            v.process(p.process_id),
            code,
            v.reason(code),
            n,
            n / p.tiles if p.tiles else None,
            v.fix(code),
        ]
        for p in v.figures.processes
        for code, n in sorted(p.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    formats = [None, None, None, None, COUNT, PERCENT, None]
    _table(ws, 4, headers, rows, formats, [18, 18, 18, 24, 14, 14, 70])


def _trend(book: Workbook, v: View) -> None:
    _ = v._
    f = v.figures
    ws = _sheet(book, _("Trend"))
    _title(ws, v, _("Trend ({bucket})", bucket=v.bucket))
    plants = list(f.trend.points[0].plants) if f.trend.points else []
    headers = [
        _("Bucket start ({zone})", zone=v.zone),
        _("Enterprise") + " " + _("Measured rate (实测值)"),
        *(v.plant(p) for p in plants),
        _("Declared rate (申报值)"),
        _("Σ digitalized"),
        _("Σ judged"),
        _("Windows"),
    ]
    rows = [
        [
            v.local(p.start_ns).replace(tzinfo=None),
            p.enterprise.rate,
            *(p.plants[plant].rate for plant in plants),
            f.declared_rate,
            p.enterprise.numerator,
            p.enterprise.denominator,
            p.enterprise.tiles,
        ]
        for p in f.trend.points
    ]
    formats = ["yyyy-mm-dd hh:mm", *([PERCENT] * (len(plants) + 2)), COUNT, COUNT, COUNT]
    _table(ws, 4, headers, rows, formats, [18] + [16] * (len(plants) + 5))
    if not rows:
        return
    chart = LineChart()
    chart.title = _("Trend ({bucket})", bucket=v.bucket)
    chart.y_axis.title = _("Measured rate (实测值)")
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.x_axis.number_format = "mm-dd"
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.height, chart.width = 9, 22
    last = 4 + len(rows)
    series_cols = len(plants) + 2  # the enterprise, the plants, the declared rate
    chart.add_data(
        Reference(ws, min_col=2, max_col=1 + series_cols, min_row=4, max_row=last),
        titles_from_data=True,
    )
    chart.set_categories(Reference(ws, min_col=1, min_row=5, max_row=last))
    colours = [*PALETTE[: series_cols - 1], DECLARED_COLOUR]
    for i, s in enumerate(chart.series):
        s.smooth = False
        s.graphicalProperties.line.solidFill = colours[i % len(colours)].lstrip("#")
        s.graphicalProperties.line.width = 28000 if i == 0 else 16000
        if i == series_cols - 1:
            s.graphicalProperties.line.dashStyle = "dash"
    ws.add_chart(chart, f"{get_column_letter(len(headers) + 2)}4")


def _versions(book: Workbook, v: View) -> None:
    _ = v._
    f = v.figures
    ws = _sheet(book, _("Versions"))
    _title(ws, v, _("Register versions and thresholds in force"))
    rows = [
        [_("Register version"), s.value, v.when(s.first_ns), v.when(s.last_ns)]
        for s in f.register_versions
    ] + [
        [_("Thresholds in force"), s.value, v.when(s.first_ns), v.when(s.last_ns)]
        for s in f.thresholds
    ]
    rows.append(
        [
            _("Register loaded now"),
            f"{v.doc.loaded_register.version} (SHA-256 {v.doc.loaded_register.digest})",
            "",
            "",
        ]
    )
    headers = [_("What"), _("Value"), _("First window ends"), _("Last window ends")]
    _table(ws, 4, headers, rows, (), [22, 90, 18, 18])


def _reproduce(book: Workbook, v: View) -> None:
    _ = v._
    ws = _sheet(book, _("Reproduce"))
    _title(ws, v, _("How to reproduce every number"))
    c = v.figures.check
    rows: list[list[Any]] = [[_("How each number is defined"), text] for text in v.definitions()]
    rows += [
        [_("Check"), f"{v.check_text} {v.verdict}"],
        [_("Windows with a process status"), c.process_tiles],
        [_("Σ digitalized (process statuses)"), c.digitalized],
        [_("Σ judged (process statuses)"), c.judged],
        [_("Windows with an enterprise kpi_rate point"), c.rate_tiles],
        [_("Σ numerator (kpi_rate)"), c.numerator],
        [_("Σ denominator (kpi_rate)"), c.denominator],
    ]
    rows += [[_("API call"), call] for call in v.doc.reproduce.api]
    rows += [[_("Command"), call] for call in v.commands(compact=False)]
    rows += [[f"InfluxQL: {v.purpose(s.purpose)}", s.text] for s in v.doc.reproduce.influxql]
    rows += [
        [_("SHA-256 of the figures"), v.doc.digest],
        [_("Digest method"), v.doc.digest_method],
        [_("Check the digest"), v.verify_command],
    ]
    _table(ws, 4, [_("What"), _("Value")], rows, (), [36, 140])


def render_xlsx(doc: ReportDoc, lang: Lang) -> bytes:
    """The workbook as bytes (blocking: the API calls it in a thread)."""
    v = View(doc, lang)
    book = Workbook()
    book.properties.title = f"{v.title} — {doc.figures.enterprise_id}"
    book.properties.creator = "plantkpi"
    book.properties.subject = doc.digest
    _summary(book, v)
    _rates(book, v)
    _processes(book, v)
    _reasons(book, v)
    _trend(book, v)
    _versions(book, v)
    _reproduce(book, v)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
