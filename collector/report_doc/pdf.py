"""The printable report: HTML and CSS, rendered to an A4 PDF by WeasyPrint.

Every page carries the enterprise, the period and the generation time at the top, the
digest and the page number at the bottom; tables have borders and repeat their header
row on a new page. Chinese is set in Noto Sans CJK SC (Debian's fonts-noto-cjk), Latin
text in the same family so both scripts share one look.

Rendering is CPU-bound and blocking (about a second): the API runs it in the report's worker
thread (``worker.py``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from html import escape

from collector.i18n import Lang
from collector.report_doc.chart import DECLARED_COLOUR, PALETTE, Series, trend_svg
from collector.report_doc.document import ReportDoc
from collector.report_doc.view import STATUSES, View, count, pct, signed_pct

__all__ = ["FONTS", "render_html", "render_pdf"]

FONTS = (
    '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Noto Sans", "DejaVu Sans", '
    "sans-serif"
)
MONO = '"DejaVu Sans Mono", "Noto Sans Mono CJK SC", monospace'

_CSS = """
@page {
  size: A4;
  margin: 24mm 14mm 18mm 14mm;
  @top-left { content: element(header); width: 100%; }
  @bottom-left { content: "@@DIGEST@@"; font-size: 7pt; color: #777; font-family: @@MONO@@; }
  @bottom-right { content: @@PAGE@@; font-size: 8pt; color: #555; }
}
html { font-family: @@FONTS@@; font-size: 8.6pt; color: #1d1d1d; line-height: 1.35; }
body { margin: 0; }
.header { position: running(header); border-bottom: 1.2pt solid #1f4e79; padding-bottom: 2mm;
  display: flex; justify-content: space-between; align-items: flex-end; font-size: 8pt;
  color: #333; width: 100%; }
.header .who { font-weight: bold; font-size: 10pt; color: #1f4e79; }
h1 { font-size: 17pt; color: #1f4e79; margin: 0 0 1mm 0; }
.subtitle { color: #555; margin-bottom: 4mm; }
h2 { font-size: 11.5pt; color: #1f4e79; border-bottom: 0.6pt solid #b7c7d9; padding-bottom: 1mm;
  margin: 6mm 0 2mm 0; break-after: avoid; }
p { margin: 1mm 0 2mm 0; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm 0; table-layout: fixed;
  font-size: 8pt; }
th, td { border: 0.5pt solid #9aa7b5; padding: 1mm 1.4mm; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #e4ecf5; text-align: left; font-weight: bold; }
table.zebra tbody tr:nth-child(even) td { background: #f6f8fb; }
table.groups tbody:nth-of-type(even) td { background: #f6f8fb; }
tbody { break-inside: avoid; }
td.reasons { font-size: 7.3pt; color: #333; border-top: none; padding-top: 0.4mm; }
tr.main td { border-bottom: none; }
.id { display: block; font-family: @@MONO@@; font-size: 6.8pt; color: #666; }
.legend { font-size: 7.6pt; margin: 0 0 2mm 0; }
.legend span.key { display: inline-block; margin-right: 4mm; white-space: nowrap; }
.legend i { display: inline-block; width: 7mm; height: 0; border-top: 2pt solid;
  vertical-align: middle; margin-right: 1mm; }
.legend i.dash { border-top-style: dashed; }
td.n { text-align: right; white-space: nowrap; }
th.n { text-align: right; }
td.code, .code { font-family: @@MONO@@; font-size: 7.5pt; }
tr { break-inside: avoid; }
.cards { display: flex; gap: 3mm; margin: 2mm 0 3mm 0; }
.card { flex: 1; border: 0.6pt solid #9aa7b5; border-radius: 1.5mm; padding: 2mm 3mm; }
.card .label { color: #555; font-size: 8pt; }
.card .value { font-size: 16pt; font-weight: bold; color: #1f4e79; }
.card.declared .value { color: #8a6d0b; }
.facts td:first-child { width: 32%; color: #444; background: #f3f5f8; }
.chart { margin: 1mm 0 2mm 0; }
.chart svg { width: 100%; height: auto; }
.small { font-size: 7.5pt; color: #555; }
.ok { color: #2e7d32; font-weight: bold; }
.bad { color: #c62828; font-weight: bold; }
pre { font-family: @@MONO@@; font-size: 6.8pt; white-space: pre-wrap; word-break: break-all;
  background: #f5f5f5; border: 0.5pt solid #ccc; padding: 1.5mm; margin: 1mm 0 2mm 0; }
ol.defs li { margin-bottom: 1.2mm; }
.digest { font-family: @@MONO@@; font-size: 8pt; word-break: break-all; }
"""

_PLACEHOLDER = re.compile(r"\{(page|pages)\}")


def _css_content(text: str) -> str:
    """A translated ``… {page} … {pages} …`` as a CSS ``content`` value with counters."""
    parts: list[str] = []
    for i, piece in enumerate(_PLACEHOLDER.split(text)):
        if i % 2:
            parts.append(f"counter({piece})")
        elif piece:
            parts.append('"' + piece.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(parts)


def _row(cells: Iterable[tuple[str, str]], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(f'<td class="{c}">{text}</td>' for text, c in cells) + "</tr>"


def _table(
    headers: Sequence[tuple[str, str, float]], body: str | Iterable[str], cls: str = "zebra"
) -> str:
    """``headers``: (text, class, width %). ``body``: rows, or whole ``<tbody>`` groups."""
    cols = "".join(f'<col style="width: {w:g}%">' for _, _, w in headers)
    head = "".join(f'<th class="{c}">{escape(h)}</th>' for h, c, _ in headers)
    rows = body if isinstance(body, str) else f"<tbody>{''.join(body)}</tbody>"
    return (
        f'<table class="{cls}"><colgroup>{cols}</colgroup>'
        f"<thead><tr>{head}</tr></thead>{rows}</table>"
    )


def _e(text: object) -> str:
    return escape(str(text))


def _h2(text: str) -> str:
    return f"<h2>{_e(text)}</h2>"


def _p(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{_e(text)}</p>"


def _named(name: str, ident: str) -> str:
    """A name with its id below it (the id alone when they are the same)."""
    if name == ident:
        return f"<span class='id'>{_e(ident)}</span>"
    return f"{_e(name)}<span class='id'>{_e(ident)}</span>"


def _summary(v: View) -> tuple[str, str]:
    """The measured, declared and difference cards; the table of facts."""
    _ = v._
    f = v.figures
    cards = [
        ("", _("Measured rate (实测值)"), pct(f.measured_rate)),
        ("declared", _("Declared rate (申报值)"), pct(f.declared_rate)),
        ("", _("Measured minus declared"), signed_pct(_, f.measured_minus_declared)),
    ]
    shown = "".join(
        f'<div class="card {cls}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{value}</div></div>'
        for cls, label, value in cards
    )
    own = f.rates[0]
    facts = [
        (_("Enterprise"), f"{_e(v.enterprise)} <span class='code'>{_e(f.enterprise_id)}</span>"),
        (_("Region"), _e(f.region)),
        (_("Period"), _e(v.period)),
        (_("Windows that tile the period"), _e(v.tiles_text)),
        (
            _("Key processes judged (Σ over the windows)"),
            _e(
                _(
                    "{numerator} digitalized of {denominator} judged",
                    numerator=count(own.numerator),
                    denominator=count(own.denominator),
                )
            ),
        ),
        (_("Trend"), _e(v.bucket)),
        (_("SHA-256 of the figures"), f'<span class="digest">{_e(v.doc.digest)}</span>'),
    ]
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{val}</td></tr>" for k, val in facts)
    return (
        f'<div class="cards">{shown}</div>',
        f'<table class="facts"><tbody>{rows}</tbody></table>',
    )


def _rates(v: View) -> str:
    _ = v._
    headers = [
        (_("Level"), "", 11),
        (_("Name"), "", 25),
        (_("Measured rate (实测值)"), "n", 12),
        (_("Σ digitalized"), "n", 10.5),
        (_("Σ judged"), "n", 10.5),
        (_("Σ not scheduled"), "n", 10.5),
        (_("Σ provisional"), "n", 10.5),
        (_("Windows"), "n", 10),
    ]
    rows = []
    for r in v.figures.rates:
        ident = r.scope_id if r.scope != "line" else f"{r.plant_id}/{r.scope_id}"
        rows.append(
            _row(
                [
                    (_e(v.scope_kind(r.scope)), ""),
                    (_named(v.scope_name(r), ident), ""),
                    (f"<b>{pct(r.rate)}</b>", "n"),
                    (count(r.numerator), "n"),
                    (count(r.denominator), "n"),
                    (count(r.not_scheduled), "n"),
                    (count(r.provisional), "n"),
                    (count(r.tiles), "n"),
                ]
            )
        )
    return _table(headers, rows)


def _chart(v: View) -> str:
    _ = v._
    f = v.figures
    points = f.trend.points
    if not points:
        return _p(_("No stored results in this period."))
    labels = [v.local(p.start_ns).strftime("%m-%d") for p in points]
    series = [
        Series(
            _("Enterprise") + " " + v.enterprise,
            [p.enterprise.rate for p in points],
            PALETTE[0],
            2.4,
        )
    ]
    plants = list(points[0].plants)
    for i, plant in enumerate(plants):
        series.append(
            Series(
                _("Plant") + " " + v.plant(plant),
                [p.plants[plant].rate for p in points],
                PALETTE[1 + i % (len(PALETTE) - 1)],
            )
        )
    svg = trend_svg(labels, series, declared=f.declared_rate, font_family=FONTS.replace('"', "'"))
    keys = [
        f'<span class="key"><i style="border-color: {s.colour}"></i>{_e(s.label)}</span>'
        for s in series
    ]
    if f.declared_rate is not None:
        declared = _("Declared rate (申报值)")
        keys.append(
            f'<span class="key"><i class="dash" style="border-color: {DECLARED_COLOUR}"></i>'
            f"{_e(declared)} {pct(f.declared_rate)}</span>"
        )
    return f'<div class="chart">{svg}</div><div class="legend">{"".join(keys)}</div>'


def _processes(v: View) -> str:
    _ = v._
    headers = [
        (_("Key process"), "", 25),
        (_("Plant / line"), "", 21),
        (_("Windows"), "n", 10),
        *((v.short_status(s), "n", 11) for s in STATUSES),
    ]
    groups = []
    reasons_label = _("Reasons (windows)")
    for p in v.figures.processes:
        equipment = v.equipment(p.process_id)
        name = _named(v.process(p.process_id), p.process_id)
        if equipment:
            name += f"<span class='small'>{_e(equipment)}</span>"
        where = (
            f"{_e(v.plant(p.plant_id))} / {_e(v.line(p.plant_id, p.line_id))}"
            f"<span class='id'>{_e(p.plant_id)}/{_e(p.line_id)}</span>"
        )
        main = _row(
            [
                (name, ""),
                (where, ""),
                (count(p.tiles), "n"),
                *((pct(p.shares[s]), "n") for s in STATUSES),
            ],
            "main",
        )
        reasons = v.reasons_text(p) or "—"
        sub = (
            f'<tr><td class="reasons" colspan="{len(headers)}">'
            f"{_e(reasons_label)}: {_e(reasons)}</td></tr>"
        )
        groups.append(f"<tbody>{main}{sub}</tbody>")
    return _table(headers, "".join(groups), "groups")


def _reasons(v: View) -> str:
    _ = v._
    totals = v.reason_totals()
    if not totals:
        return _p(_("No reason was reported in this period."))
    headers = [
        (_("Reason"), "", 22),
        (_("Windows"), "n", 11),
        (_("Processes reporting it"), "n", 10),
        (_("What to fix"), "", 57),
    ]
    rows = [
        _row(
            [
                (_named(v.reason(code), code), ""),
                (count(windows), "n"),
                (count(processes), "n"),
                (_e(v.fix(code)), ""),
            ]
        )
        for code, windows, processes in totals
    ]
    return _table(headers, rows)


def _versions(v: View) -> str:
    _ = v._
    f = v.figures
    headers = [
        (_("Register version"), "", 50),
        (_("First window ends"), "", 25),
        (_("Last window ends"), "", 25),
    ]
    rows = [
        _row([(_e(s.value), "code"), (v.when(s.first_ns), ""), (v.when(s.last_ns), "")])
        for s in f.register_versions
    ]
    out = _table(headers, rows) if rows else _p(_("None stored in this period."))
    headers = [
        (_("Thresholds in force"), "", 50),
        (_("First window ends"), "", 25),
        (_("Last window ends"), "", 25),
    ]
    rows = [
        _row([(_e(s.value), "code"), (v.when(s.first_ns), ""), (v.when(s.last_ns), "")])
        for s in f.thresholds
    ]
    out += _table(headers, rows) if rows else ""
    loaded = v.doc.loaded_register
    loaded_text = _(
        "Register loaded now: version {version}, SHA-256 {digest}",
        version=loaded.version,
        digest=loaded.digest,
    )
    out += _p(loaded_text, "small")
    return out


def _reproduce(v: View) -> str:
    _ = v._
    f = v.figures
    c = f.check
    mark = f"<span class='{'ok' if c.reconciles else 'bad'}'>{_e(v.verdict)}</span>"
    check = v.check_text
    definitions = "".join(f"<li>{_e(text)}</li>" for text in v.definitions())
    calls = "\n".join([*v.doc.reproduce.api, "", *v.commands(compact=True)])
    statements = "\n\n".join(
        f"-- {v.purpose(s.purpose)}\n{s.text}" for s in v.doc.reproduce.influxql
    )
    calls_text = _(
        "API calls (relative to the collector API's address; /history and the exports cover "
        "a limited range per call, so a long period takes several), and the same with the "
        "kpi command:"
    )
    influxql_text = _(
        "InfluxQL read by the report (database {database}; every time is ns since the "
        "epoch, UTC; the range is [start, end) on the window end):",
        database=v.doc.reproduce.database,
    )
    digest_text = _(
        "The digest is taken of the figures as canonical JSON: orjson with sorted keys, no "
        "spaces. To check it, save the figures (kpi report-doc --json, or the API with "
        "format=json) and run:"
    )
    return "".join(
        [
            _h2(_("How each number is defined")),
            f"<ol class='defs'>{definitions}</ol>",
            f"<p>{_e(check)} {mark}</p>",
            _h2(_("How to reproduce every number")),
            _p(calls_text),
            f"<pre>{_e(calls)}</pre>",
            _p(influxql_text),
            f"<pre>{_e(statements)}</pre>",
            _h2(_("Digest of the figures")),
            f"<p>SHA-256: <span class='digest'>{_e(v.doc.digest)}</span></p>",
            _p(digest_text),
            f"<pre>{_e(v.verify_command)}</pre>",
        ]
    )


def render_html(doc: ReportDoc, lang: Lang) -> str:
    v = View(doc, lang)
    _ = v._
    f = v.figures
    css = (
        _CSS.replace("@@FONTS@@", FONTS)
        .replace("@@MONO@@", MONO)
        .replace("@@DIGEST@@", "SHA-256 " + doc.digest)
        .replace("@@PAGE@@", _css_content(_("Page {page} of {pages}")))
    )
    period, generated = _("Period"), _("Generated")
    header = (
        '<div class="header">'
        f'<div><div class="who">{_e(v.enterprise)}</div>'
        f"<div>{_e(f.enterprise_id)} · {_e(f.region)}</div></div>"
        f"<div>{_e(period)}: {_e(v.period)}<br>{_e(generated)}: {_e(v.generated)}</div>"
        "</div>"
    )
    cards, facts = _summary(v)
    body = [
        header,
        f"<h1>{_e(v.title)}</h1>",
        f'<div class="subtitle">{_e(v.enterprise)} · {_e(v.period)}</div>',
        cards,
        _h2(_("Trend ({bucket})", bucket=v.bucket)),
        _chart(v),
        facts,
        _h2(_("Measured rate per enterprise, plant and line")),
        _rates(v),
        _h2(_("Key processes: status share of the windows")),
        _processes(v),
        _h2(_("Reasons and what to fix")),
        _reasons(v),
        _h2(_("Register versions and thresholds in force")),
        _versions(v),
        _reproduce(v),
    ]
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">'
        f"<title>{_e(v.title)} — {_e(f.enterprise_id)}</title><style>{css}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


_RENDERING = threading.Lock()
"""One rendering at a time, whoever calls: Pango's font map is shared by every thread of the
process. The API renders in the report's one worker thread, so it never waits here; the lock
guards other callers (scripts, tests)."""


def no_resource_fetcher() -> object:
    """The page is whole (styles and chart inline, fonts from the system): a reference to a
    file or an address would only come from text that escaped its escaping, and is refused
    (WeasyPrint's own protocol filter) rather than read."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False)


def render_pdf(doc: ReportDoc, lang: Lang) -> bytes:
    """The report as PDF bytes (blocking, CPU-bound: call it in a thread)."""
    from weasyprint import HTML  # imported on use: loading Pango costs ~0.3 s

    page = render_html(doc, lang)
    with _RENDERING:
        pdf = HTML(string=page, url_fetcher=no_resource_fetcher()).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf
