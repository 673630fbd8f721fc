"""The report's pure parts: calendar periods, trend buckets, file names, the figures from
tiles, the digest's canonical form, the chart, the names in the reader's language."""

from __future__ import annotations

import html
import io
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import typer
from openpyxl import load_workbook

from collector.report_doc.chart import Series, trend_svg
from collector.report_doc.cli import period_of
from collector.report_doc.document import (
    ApiLimits,
    ReportDoc,
    document,
    names_of,
    recompute_chunks,
)
from collector.report_doc.figures import build_figures, canonical, digest
from collector.report_doc.pdf import _css_content, render_html
from collector.report_doc.period import (
    DAY_NS,
    bucket_of,
    calendar_period,
    file_stem,
    local_midnight,
)
from collector.report_doc.queries import ProcessTile, RateTile, Stored, tiles_range
from collector.report_doc.xlsx import render_xlsx
from common.register_loader import LoadedRegister
from tests import registers
from tests.registers import process, sig

CST = timezone(timedelta(hours=8))
H = 3600 * 10**9


@pytest.mark.parametrize(
    ("moment", "period", "start", "end"),
    [
        (datetime(2026, 11, 5, 10, tzinfo=UTC), "month", (2026, 11, 1), (2026, 12, 1)),
        (datetime(2026, 12, 31, tzinfo=UTC), "month", (2026, 12, 1), (2027, 1, 1)),
        (datetime(2026, 11, 5, tzinfo=UTC), "quarter", (2026, 10, 1), (2027, 1, 1)),
        (datetime(2026, 2, 28, tzinfo=UTC), "quarter", (2026, 1, 1), (2026, 4, 1)),
        (datetime(2026, 7, 4, tzinfo=UTC), "year", (2026, 1, 1), (2027, 1, 1)),
    ],
)
def test_calendar_periods(
    moment: datetime, period: str, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    got = calendar_period(moment, period)  # type: ignore[arg-type]
    assert got == (datetime(*start, tzinfo=UTC), datetime(*end, tzinfo=UTC))


def test_a_period_is_in_the_zone_it_was_asked_in() -> None:
    start, end = calendar_period(datetime(2026, 11, 1, 3, tzinfo=CST), "month")
    assert start == datetime(2026, 11, 1, tzinfo=CST) and end == datetime(2026, 12, 1, tzinfo=CST)
    assert start.astimezone(UTC) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert file_stem("ent-a", start, end, "zh") == (
        "plantkpi-report_ent-a_20261101+0800_20261201+0800_zh"
    )
    assert file_stem("ent-a", start.astimezone(UTC), end.astimezone(UTC), "en") == (
        "plantkpi-report_ent-a_20261031T1600_20261130T1600"
    )


def test_the_cli_period() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert period_of("2026-11-05", None, "quarter", now) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_of("-7d", "now", None, now) == (now - timedelta(days=7), now)
    with pytest.raises(typer.BadParameter, match="give --to"):
        period_of("2026-11-05", None, None, now)
    with pytest.raises(typer.BadParameter, match="not both"):
        period_of("2026-11-05", "now", "month", now)
    with pytest.raises(typer.BadParameter, match="month, quarter or year"):
        period_of("2026-11-05", None, "decade", now)


def test_days_up_to_a_quarter_then_weeks_from_monday() -> None:
    assert bucket_of(0, 92 * DAY_NS, 0) == ("day", DAY_NS, 0)
    kind, length, offset = bucket_of(0, 93 * DAY_NS, 6 * H)
    assert (kind, length) == ("week", 7 * DAY_NS)
    monday = datetime.fromtimestamp(offset / 1e9, UTC)
    assert (monday.weekday(), monday.hour) == (0, 6)  # Mondays at the production day's start
    assert bucket_of(0, DAY_NS, 16 * H) == ("day", DAY_NS, 16 * H)


def test_tiles_are_the_windows_ending_after_each_step() -> None:
    assert tiles_range(10 * H + 30 * 60 * 10**9, 20 * H, H) == (
        11 * H + 30 * 60 * 10**9,
        21 * H,
        30 * 60 * 10**9,
    )


def _register() -> LoadedRegister:
    lines = [
        registers.line(
            "l1",
            [
                process("p1", [sig("state", role="state")]),
                process("p2", [sig("state", role="state")], industry="process"),
            ],
            names={"zh": "一线"},
        )
    ]
    doc = registers.document(
        [registers.plant("pl", registers.SOURCES, lines)],
        enterprise="ent-a",
        name="Enterprise A",
        names={"zh": "甲企业"},
        declared_rate=0.5,
    )
    return registers.load(doc)


def test_figures_pool_the_tiles_as_the_kpi_aggregates_a_window() -> None:
    register = _register()
    tiles = {
        ("pl", "l1", "p1", "discrete"): [
            ProcessTile(2 * H, "DIGITALIZED", ""),
            ProcessTile(3 * H, "NOT_DIGITALIZED", "LOW_COVERAGE,STALE_DATA"),
            ProcessTile(4 * H, "PROVISIONAL", "EDGE_BUFFERING"),
        ],
        ("pl", "l1", "p2", "process"): [
            ProcessTile(2 * H, "DIGITALIZED", ""),
            ProcessTile(3 * H, "NOT_SCHEDULED", ""),
        ],
        ("gone", "l9", "p9", "discrete"): [ProcessTile(2 * H, "NOT_DIGITALIZED", "UNCERTAIN")],
    }
    stored = Stored(
        window_ns=H,
        enterprise=[
            RateTile(2 * H, 2, 3, 0, 0),
            RateTile(3 * H, 0, 1, 1, 0),
            RateTile(4 * H, 0, 0, 0, 1),
        ],
        processes=tiles,
    )
    f = build_figures(register.model, stored, H, 4 * H, bucket="day", bucket_ns=DAY_NS, offset_ns=0)
    own = f.rates[0]
    assert (own.tiles, own.numerator, own.denominator, own.not_scheduled, own.provisional) == (
        3,
        2,
        4,
        1,
        1,
    )
    assert own.rate == 0.5 and f.measured_minus_declared == 0.0
    assert f.check.reconciles and f.tiles_in_period == 3
    by_id = {(r.scope, r.scope_id): r for r in f.rates}
    assert by_id[("line", "l1")].numerator == 2 and by_id[("line", "l1")].denominator == 3
    assert not by_id[("plant", "gone")].in_register and by_id[("plant", "pl")].in_register
    p1 = f.processes[0]
    assert p1.statuses == {
        "DIGITALIZED": 1,
        "NOT_DIGITALIZED": 1,
        "NOT_SCHEDULED": 0,
        "PROVISIONAL": 1,
    }
    assert p1.reasons == {"LOW_COVERAGE": 1, "STALE_DATA": 1, "EDGE_BUFFERING": 1}
    assert p1.shares["DIGITALIZED"] == pytest.approx(1 / 3)
    assert [p.process_id for p in f.processes] == ["p1", "p2", "p9"]
    assert not f.processes[-1].in_register
    # Every tile of the period belongs to the day it covers (01:00–04:00 UTC: day 0).
    assert [p.start for p in f.trend.points] == ["1970-01-01T00:00:00Z"]
    assert f.trend.points[0].enterprise.denominator == 4

    # The digest: of the canonical JSON, equal for a JSON round trip of the figures.
    copy = json.loads(f.model_dump_json())
    assert digest(copy) == digest(f)
    assert canonical(f).startswith(b'{"check":{"denominator":')

    names = names_of(register)
    assert names.enterprise.names == {"zh": "甲企业"} and names.lines["pl/l1"].names == {
        "zh": "一线"
    }


def test_the_figures_say_when_the_sums_do_not_reconcile() -> None:
    register = _register()
    stored = Stored(
        window_ns=H,
        enterprise=[RateTile(2 * H, 1, 1, 0, 0), RateTile(3 * H, 1, 1, 0, 0)],
        processes={("pl", "l1", "p1", "discrete"): [ProcessTile(2 * H, "DIGITALIZED", "")]},
    )
    f = build_figures(register.model, stored, H, 3 * H, bucket="day", bucket_ns=DAY_NS, offset_ns=0)
    assert not f.check.reconciles
    assert (f.check.process_tiles, f.check.rate_tiles) == (1, 2)


def test_the_chart_leaves_gaps_and_escapes_its_texts() -> None:
    svg = trend_svg(
        ["<a>", "b", "c", "d"],
        [
            Series("x", [0.5, None, 0.25, 1.0], "#123456"),
            Series("y", [None, 0.5, None, None], "#654321"),
        ],
        declared=0.6,
    )
    assert svg.count("<polyline") == 1  # 0.25 → 1.0; 0.5 alone is a dot, so is y's 0.5
    assert svg.count("<circle") == 2
    assert "&lt;a&gt;" in svg and "<a>" not in svg
    assert 'stroke-dasharray="5,3"' in svg  # the declared rate


def test_page_numbers_in_css() -> None:
    assert _css_content("Page {page} of {pages}") == '"Page " counter(page) " of " counter(pages)'
    assert _css_content("第 {page} 页，共 {pages} 页") == (
        '"第 " counter(page) " 页，共 " counter(pages) " 页"'
    )


def test_the_pdf_renderer_reads_no_file_and_no_network(tmp_path: Path) -> None:
    """Whatever a page referred to, the renderer's fetcher reads no file and no address."""
    from weasyprint import HTML

    from collector.report_doc.pdf import no_resource_fetcher

    secret = tmp_path / "secret.css"
    secret.write_text("p { color: red }")
    fetcher = no_resource_fetcher()
    for url in (f"file://{secret}", "http://127.0.0.1:9/x.css"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher(url)  # type: ignore[operator]
    page = f'<p>x</p><link rel="stylesheet" href="file://{secret}">'
    assert HTML(string=page, url_fetcher=fetcher).write_pdf().startswith(b"%PDF")


def test_days_and_weeks_start_at_midnight_where_the_period_was_asked() -> None:
    assert local_midnight(0) == 0
    assert local_midnight(8 * 3600) == -8 * H  # 00:00 +08:00 is 16:00 UTC the day before
    assert local_midnight(-5 * 3600) == 5 * H
    assert bucket_of(0, DAY_NS, local_midnight(8 * 3600)) == ("day", DAY_NS, 16 * H)
    _, length, offset = bucket_of(0, 93 * DAY_NS, local_midnight(8 * 3600))
    monday = datetime.fromtimestamp(offset / 1e9, UTC).astimezone(CST)
    assert (monday.weekday(), monday.hour, monday.minute) == (0, 0, 0)
    assert length == 7 * DAY_NS
    _, _, offset = bucket_of(0, 93 * DAY_NS, local_midnight(-5 * 3600))
    monday = datetime.fromtimestamp(offset / 1e9, UTC).astimezone(timezone(timedelta(hours=-5)))
    assert (monday.weekday(), monday.hour, monday.minute) == (0, 0, 0)


def test_the_recomputation_is_cut_into_requests_the_api_accepts() -> None:
    start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) * 10**9
    end = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()) * 10**9
    chunks = recompute_chunks(start, end, ApiLimits())
    assert [(b - a) // H for a, b in chunks] == [100] * 7 + [20]
    assert chunks[0][0] == start and chunks[-1][1] == end
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(chunks))
    # A start off the API's hour grid: the first range ends on the grid, so that it meets
    # at most 100 hours (the first of them partial).
    off = start + 30 * 60 * 10**9
    first, *rest = recompute_chunks(off, end, ApiLimits(max_windows=24))
    assert first == (off, start + 24 * H) and rest[0] == (start + 24 * H, start + 48 * H)
    # The API's hours begin 30 min past the UTC hour (COLLECTOR_API__SHIFT_START=06:30).
    shifted = ApiLimits(max_windows=10, hour_offset_ns=30 * 60 * 10**9)
    assert recompute_chunks(start, start + 20 * H, shifted)[0] == (start, off + 9 * H)
    # The range bound holds too.
    short = ApiLimits(max_range_s=5 * 3600, max_windows=100)
    assert [(b - a) // H for a, b in recompute_chunks(start, start + 12 * H, short)] == [5, 5, 2]


NASTY = '=HYPERLINK("http://x","y") <script>alert(1)</script> & "quoted"'


def _nasty_doc() -> ReportDoc:
    """A report whose register names are made to break out of a cell or an element."""
    signals = [sig("state", role="state")]
    lines = [
        registers.line(
            "l1",
            [process("p1", signals, name=NASTY, equipment=NASTY)],
            name=NASTY,
        )
    ]
    doc = registers.document(
        [registers.plant("pl", registers.SOURCES, lines, name=NASTY)],
        enterprise="ent-a",
        name=NASTY,
        region="Shanxi",
        declared_rate=0.5,
    )
    register = registers.load(doc)
    stored = Stored(
        window_ns=H,
        enterprise=[RateTile(2 * H, 1, 1, 0, 0)],
        processes={("pl", "l1", "p1", "discrete"): [ProcessTile(2 * H, "DIGITALIZED", "", "v1")]},
    )
    figures = build_figures(
        register.model, stored, H, 2 * H, bucket="day", bucket_ns=DAY_NS, offset_ns=0
    )
    return document(figures, register, [], "plantkpi")


def test_the_workbook_writes_every_text_as_text() -> None:
    """A name starting with ``=`` stays a text cell: no formula runs in the reader's
    spreadsheet."""
    book = load_workbook(io.BytesIO(render_xlsx(_nasty_doc(), "en")))
    found = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and "HYPERLINK" in cell.value:
                    found.append((sheet.title, cell.coordinate, cell.data_type))
    # The enterprise (Summary, every title row), the plant (Rates, trend header), the
    # process (Key processes).
    assert len(found) >= 8
    assert {kind for _, _, kind in found} == {"s"}, found
    rates = book["Rates"]
    names = [r[3] for r in rates.iter_rows(min_row=5, values_only=True) if r[0]]
    assert NASTY in names and rates["D6"].data_type == "s"
    trend = book["Trend"]
    assert trend["C4"].value == NASTY and trend["C4"].data_type == "s"


def test_the_page_escapes_every_name() -> None:
    page = render_html(_nasty_doc(), "en")
    assert "<script>" not in page and '"quoted"' not in page
    escaped = html.escape(NASTY)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;" in escaped
    assert page.count(escaped) >= 4  # enterprise (header, subtitle, facts), plant, line, …
