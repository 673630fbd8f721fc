"""``/api/v1/report-doc`` and ``kpi report-doc`` over the test plant's stored results (a real
influxd): the figures are the stored tiles, the PDF (read back with poppler) and the XLSX
(read back with openpyxl) show the JSON's figures in English and Chinese, the digest
recomputes, and a wrong enterprise, range, language or format is named."""

from __future__ import annotations

import asyncio
import html
import io
import itertools
import json
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

import collector.api.routes.report_doc as route_module
import collector.report_doc.document as document_module
from collector.i18n import Lang
from collector.kpi.service import KpiResult
from collector.kpi_cli import kpi_app
from collector.report_doc import figures as figures_module
from collector.report_doc import queries as queries_module
from collector.report_doc.document import ReportDoc
from collector.report_doc.figures import STATUSES, digest
from collector.report_doc.pdf import render_html
from collector.report_doc.view import View, pct
from collector.report_doc.worker import THREAD_NAME
from collector.report_doc.xlsx import render_xlsx
from tests.collector.api.conftest import Apps, Plant, client, serving
from tests.collector.kpi.kpi_testkit import at

pytestmark = pytest.mark.integration

PERIOD = {"enterprise": "ent-a", "start": "2026-11-28T08:00:00Z", "end": "2026-11-28T10:00:00Z"}
TILE_ENDS = [at(3600), at(7200)]
"""The stored 1 h windows that tile 08:00–10:00: those ending at 09:00 and 10:00."""


def tiles(plant: Plant) -> list[KpiResult]:
    return [r for r in plant.live if r.window.end_ns in TILE_ENDS]


async def get(apps: Apps, **params: str) -> Any:
    async with client(apps()) as api:
        return await api.get("/api/v1/report-doc", params={**PERIOD, **params})


async def test_the_figures_are_the_stored_tiles_and_the_digest_recomputes(
    plant: Plant, make_app: Apps, tmp_path: Path
) -> None:
    response = await get(make_app, format="json")
    assert response.status_code == 200, response.text
    doc = response.json()
    figures = doc["figures"]
    expected = [p for r in tiles(plant) for e in r.evaluations for p in e.processes]
    digitalized = sum(p.status == "DIGITALIZED" for p in expected)
    judged = sum(p.status in ("DIGITALIZED", "NOT_DIGITALIZED") for p in expected)
    assert (digitalized, judged) == (3, 6)  # 2 of 3 in 08:00–09:00, 1 of 3 in 09:00–10:00
    own = figures["rates"][0]
    assert (own["scope"], own["numerator"], own["denominator"], own["tiles"]) == (
        "enterprise",
        3,
        6,
        2,
    )
    assert figures["measured_rate"] == 0.5 and figures["declared_rate"] == 0.8
    assert figures["measured_minus_declared"] == pytest.approx(-0.3)
    assert figures["check"]["reconciles"] is True
    assert figures["tiles_in_period"] == 2 and figures["window_s"] == 3600
    for process in figures["processes"]:
        mine = [p for p in expected if p.process_id == process["process_id"]]
        assert process["tiles"] == len(mine) == 2
        assert process["statuses"] == {s: sum(p.status == s for p in mine) for s in STATUSES}
        reasons: dict[str, int] = {}
        for p in mine:
            for code in p.reasons:
                reasons[code] = reasons.get(code, 0) + 1
        assert process["reasons"] == reasons
    # The stored kpi_rate of every line and plant agrees with the counts made of the
    # processes' statuses.
    stored = {(r.scope, r.scope_id): (0, 0) for result in tiles(plant) for r in result.rates}
    for result in tiles(plant):
        for r in result.rates:
            if r.industry == "all" and r.scope in ("line", "plant", "enterprise"):
                n, d = stored[(r.scope, r.scope_id)]
                stored[(r.scope, r.scope_id)] = (n + r.numerator, d + r.denominator)
    for rate in figures["rates"]:
        assert (rate["numerator"], rate["denominator"]) == stored[(rate["scope"], rate["scope_id"])]
    assert figures["register_versions"][0]["value"] == "api-test-1"
    assert [p["start"] for p in figures["trend"]["points"]] == ["2026-11-28T00:00:00Z"]

    # The digest: of the figures as canonical JSON, in the body and the header, and as the
    # report tells a reader to recompute it from a saved copy.
    assert doc["digest"] == digest(figures) == response.headers["x-report-digest"]
    assert doc["digest"] == digest(json.loads(json.dumps(figures)))
    (tmp_path / "report.json").write_bytes(response.content)
    command = View(ReportDoc.model_validate(doc), "en").verify_command
    assert command.startswith("python3 ")
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-c", command.replace("python3", sys.executable, 1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == doc["digest"]

    # The reproduction: /history's stored points, the first of each hour, give the same sums.
    history = next(c for c in doc["reproduce"]["api"] if c.startswith("/api/v1/history"))
    async with client(make_app()) as api:
        points = (await api.get(history)).json()["points"]
    firsts: dict[int, dict[str, Any]] = {}
    for point in points:
        firsts.setdefault(point["time_ns"] // (3600 * 10**9), point)
    assert sum(p["numerator"] for p in firsts.values()) == 3
    assert sum(p["denominator"] for p in firsts.values()) == 6
    assert any("process_status" in s["text"] for s in doc["reproduce"]["influxql"])


def pdf_text(pdf: bytes, tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", path, tmp_path / name], check=True
    )
    page = tmp_path / f"{name}-1.png"
    assert page.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and page.stat().st_size > 5000
    done = subprocess.run(
        ["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
async def test_the_pdf_shows_the_figures_in_both_languages(make_app: Apps, tmp_path: Path) -> None:
    figures = (await get(make_app, format="json")).json()["figures"]
    texts = {}
    for lang in ("en", "zh"):
        response = await get(make_app, format="pdf", lang=lang)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        suffix = "" if lang == "en" else "_zh"
        assert (
            f'filename="plantkpi-report_ent-a_20261128T0800_20261128T1000{suffix}.pdf"'
            in response.headers["content-disposition"]
        )
        assert response.headers["x-report-digest"] == digest(figures)
        texts[lang] = pdf_text(response.content, tmp_path, lang)
    for lang, text in texts.items():
        flat = " ".join(text.split())
        assert digest(figures) in flat, lang
        assert "50.00%" in flat and "80.00%" in flat, lang
        assert ("-30.00 pp" if lang == "en" else "-30.00 个百分点") in flat, lang
        for process in figures["processes"]:
            assert process["process_id"] in flat
            for status in STATUSES:
                assert pct(process["shares"][status]) in flat
        for rate in figures["rates"]:
            assert pct(rate["rate"]) in flat
        assert "process_status" in flat and "/api/v1/recompute" in flat
    assert "Key-process digitalization rate report" in texts["en"]
    assert "Enterprise A" in texts["en"] and "Page 1 of" in texts["en"]
    for word in ("关键工序数控化率", "申报值", "实测值", "关键工序", "第 1 页"):
        assert word in texts["zh"], word


async def test_the_workbook_holds_the_json_figures(make_app: Apps) -> None:
    figures = (await get(make_app, format="json")).json()["figures"]
    for lang, summary in (("en", "Summary"), ("zh", "概要")):
        response = await get(make_app, format="xlsx", lang=lang)
        assert response.status_code == 200, response.text
        assert "spreadsheetml" in response.headers["content-type"]
        book = load_workbook(io.BytesIO(response.content))
        assert book.sheetnames[0] == summary
        values = {row[0]: row[1] for row in book[summary].iter_rows(min_row=3, values_only=True)}
        assert figures["measured_rate"] in values.values()
        assert figures["declared_rate"] in values.values()
        assert digest(figures) in values.values()
        rates = book.worksheets[1]
        rows = [r for r in rates.iter_rows(min_row=5, values_only=True) if r[0]]
        assert [(r[1], r[4], r[5], r[6], r[9]) for r in rows] == [
            (f["scope_id"], f["rate"], f["numerator"], f["denominator"], f["tiles"])
            for f in figures["rates"]
        ]
        processes = book.worksheets[2]
        rows = [r for r in processes.iter_rows(min_row=5, values_only=True) if r[0]]
        assert [(r[0], r[6], *r[7:11], *r[11:15]) for r in rows] == [
            (
                p["process_id"],
                p["tiles"],
                *(p["statuses"][s] for s in STATUSES),
                *(p["shares"][s] for s in STATUSES),
            )
            for p in figures["processes"]
        ]
        with zipfile.ZipFile(io.BytesIO(response.content)) as parts:
            chart = parts.read("xl/charts/chart1.xml").decode()
        # One line each: the enterprise, its plant, the declared rate.
        assert "<lineChart>" in chart and chart.count("<ser>") == 3


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"enterprise": "ent-zz"}, 404, "unknown_scope", "enterprise"),
        ({"start": "2026-11-28T11:00:00Z"}, 422, "bad_time_range", "end"),
        ({"end": "2027-12-28T10:00:00Z"}, 422, "bad_time_range", "end"),
        ({"start": "2026-11-28T08:00:00"}, 422, "bad_time_range", "start"),
        ({"lang": "fr"}, 422, "invalid_request", "lang"),
        ({"format": "docx"}, 422, "invalid_request", "format"),
    ],
)
async def test_a_wrong_parameter_is_named(
    make_app: Apps, params: dict[str, str], status: int, code: str, field: str
) -> None:
    response = await get(make_app, **params)
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["error"], body["field"]) == (code, field)
    if field == "enterprise":
        assert "'ent-zz'" in body["detail"] and "ent-a" in body["detail"]


async def test_a_year_is_allowed_and_its_trend_is_weekly(make_app: Apps) -> None:
    response = await get(
        make_app, start="2026-01-01T00:00:00+08:00", end="2027-01-01T00:00:00+08:00"
    )
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["figures"]["trend"]["bucket"] == "week" and doc["utc_offset_s"] == 8 * 3600
    assert doc["figures"]["tiles_in_period"] == 8760
    # No window ends on 08:00: the first stored in 08:00–09:00 (ending 08:20) stands in.
    assert [p["tiles"] for p in doc["figures"]["processes"]] == [3, 3, 3]


# -- the CLI ---------------------------------------------------------------------------------

TOKEN = "report-doc-token"


@pytest.fixture
async def served(make_app: Apps) -> AsyncIterator[str]:
    async with serving(make_app(tokens=[TOKEN])) as url:
        yield url


async def kpi(api: str, *args: str) -> Result:
    env = {"COLUMNS": "200", "KPI_TOKEN": TOKEN, "KPI_LANG": ""}
    return await asyncio.to_thread(
        CliRunner().invoke, kpi_app, [*args, "--api", api], env=env, catch_exceptions=False
    )


async def test_the_cli_writes_both_files_and_prints_the_figures(
    served: str, tmp_path: Path
) -> None:
    period = ["--enterprise", "ent-a", "--from", PERIOD["start"], "--to", PERIOD["end"]]
    as_json = await kpi(served, "report-doc", *period, "--json")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["digest"] == digest(doc["figures"])
    out = tmp_path / "reports"
    written = await kpi(served, "report-doc", *period, "--lang", "zh", "--output-dir", str(out))
    assert written.exit_code == 0, written.output
    stem = "plantkpi-report_ent-a_20261128T0800_20261128T1000_zh"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.pdf", f"{stem}.xlsx"]
    assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    assert doc["digest"] in written.stderr and "已写入" in written.stderr
    book = load_workbook(out / f"{stem}.xlsx")
    assert doc["digest"] in [c.value for row in book["概要"].iter_rows() for c in row]


async def test_the_cli_takes_a_calendar_period_and_names_errors(served: str) -> None:
    month = await kpi(
        served,
        "report-doc",
        "--enterprise",
        "ent-a",
        "--from",
        "2026-11-28",
        "--period",
        "month",
        "--json",
    )
    assert month.exit_code == 0, month.output
    figures = orjson.loads(month.stdout)["figures"]
    assert (figures["start"], figures["end"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert figures["trend"]["bucket"] == "day" and figures["rates"][0]["tiles"] == 3
    unknown = await kpi(
        served,
        "report-doc",
        "--enterprise",
        "ent-zz",
        "--from",
        "2026-11-28",
        "--period",
        "year",
        "--json",
    )
    assert unknown.exit_code == 4
    assert "404 unknown_scope [enterprise]" in unknown.stderr and "'ent-zz'" in unknown.stderr
    both = await kpi(
        served,
        "report-doc",
        "--enterprise",
        "ent-a",
        "--from",
        "2026-11-28",
        "--to",
        "2026-11-29",
        "--period",
        "month",
    )
    assert both.exit_code == 2 and "not both" in both.output


# -- how to reproduce, the language, the zone, the worker ------------------------------------

MONTH = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}


def recompute_commands(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``(start, end)`` of every ``kpi report`` command the report prints."""
    out = []
    for command in doc["reproduce"]["cli"]:
        words = command.split()
        if words[:2] == ["kpi", "report"]:
            out.append((words[words.index("--start") + 1], words[words.index("--end") + 1]))
    return out


@pytest.mark.parametrize(
    ("settings", "hours", "commands"),
    [({}, 100, 8), ({"report_max_windows": 24}, 24, 30), ({"max_range": "2d"}, 48, 15)],
)
async def test_every_printed_recomputation_is_one_the_api_accepts(
    make_app: Apps, settings: dict[str, Any], hours: int, commands: int
) -> None:
    """A month is 720 hours: one ``kpi report`` over it would be refused (at most 100
    windows a request), so the report prints one command per range the API accepts, and
    ``/report/windows`` (what ``kpi report`` asks first) accepts each of them."""
    app = make_app(**settings)
    async with client(app) as api:
        answer = await api.get("/api/v1/report-doc", params={**PERIOD, **MONTH})
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        ranges = recompute_commands(doc)
        assert len(ranges) == commands
        assert ranges[0][0] == MONTH["start"] and ranges[-1][1] == MONTH["end"]
        covered: list[tuple[str, str]] = []
        for start, end in ranges:
            plan = await api.get(
                "/api/v1/report/windows", params={"start": start, "end": end, "window": "hour"}
            )
            assert plan.status_code == 200, plan.text
            covered += [(w["start"], w["end"]) for w in plan.json()["windows"]]
        whole = await api.get("/api/v1/report/windows", params={**MONTH, "window": "hour"})
        assert whole.status_code == 422  # the one command the report used to print
    assert len(covered) == 720 and covered[0][0] == "2026-11-01T00:00:00Z"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    assert doc["reproduce"]["report_chunk_h"] == hours
    # The PDF prints the first and says how many more; the workbook lists every one.
    report = ReportDoc.model_validate(doc)
    page = render_html(report, "en")
    first = next(c for c in doc["reproduce"]["cli"] if c.startswith("kpi report "))
    assert html.escape(first) in page
    assert f"… and {commands - 1} more kpi report commands like it" in page
    assert f"each over at most {hours} h" in page
    assert html.escape(doc["reproduce"]["cli"][-1]) not in page
    book = load_workbook(io.BytesIO(render_xlsx(report, "en")))
    cells = [c.value for row in book["Reproduce"].iter_rows() for c in row]
    assert all(c in cells for c in doc["reproduce"]["cli"])


async def test_no_hourly_recomputation_is_printed_when_the_tiles_are_not_the_apis_hours(
    make_app: Apps,
) -> None:
    """India's months start at 18:30 UTC: the tiles (start + k h) are not ``/report``'s hours."""
    period = {"start": "2026-11-01T00:00:00+05:30", "end": "2026-12-01T00:00:00+05:30"}
    doc = (await get(make_app, **period)).json()
    assert recompute_commands(doc) == []
    assert not any(c.startswith("/api/v1/report?") for c in doc["reproduce"]["api"])
    assert any(c.startswith("/api/v1/recompute?") for c in doc["reproduce"]["api"])


async def test_the_trend_follows_the_zone_of_the_period(make_app: Apps) -> None:
    """November asked in +08:00: the stored tiles (16:00–18:00 there on the 28th) are in the
    day that starts at midnight there, 16:00 UTC the day before."""
    period = {"start": "2026-11-01T00:00:00+08:00", "end": "2026-12-01T00:00:00+08:00"}
    doc = (await get(make_app, **period)).json()
    trend = doc["figures"]["trend"]
    assert (trend["bucket"], trend["offset_s"]) == ("day", 16 * 3600)
    assert [p["start"] for p in trend["points"]] == ["2026-11-27T16:00:00Z"]
    assert View(ReportDoc.model_validate(doc), "en").day(trend["points"][0]["start_ns"]) == (
        "2026-11-28"
    )


async def test_the_language_is_the_shared_lang_parameter(make_app: Apps) -> None:
    """``?lang=``, else ``Accept-Language``, else English, as every route."""
    async with client(make_app()) as api:
        for headers, params, sheet, suffix in (
            ({"Accept-Language": "zh-CN,zh;q=0.9"}, {}, "概要", "_zh.xlsx"),
            ({"Accept-Language": "zh-CN"}, {"lang": "en"}, "Summary", "1000.xlsx"),
            ({}, {}, "Summary", "1000.xlsx"),
        ):
            response = await api.get(
                "/api/v1/report-doc", params={**PERIOD, **params, "format": "xlsx"}, headers=headers
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-disposition"].endswith(f'{suffix}"')
            assert load_workbook(io.BytesIO(response.content)).sheetnames[0] == sheet
        wrong = await api.get("/api/v1/report-doc", params={**PERIOD, "lang": "fr"})
    body = wrong.json()
    assert (wrong.status_code, body["error"], body["field"]) == (422, "invalid_request", "lang")
    assert body["detail"].startswith("lang: ")


async def test_a_chinese_report_says_everything_in_chinese(make_app: Apps) -> None:
    """The statements' purposes and the window length are translated; what stays as it is
    (codes, calls, InfluxQL) is meant to be copied."""
    doc = ReportDoc.model_validate((await get(make_app)).json())
    page = render_html(doc, "zh")
    assert "per tile" not in page and "window stored" not in page
    assert "-- 每个窗口：企业存储的计数（kpi_rate）" in page
    assert "1 小时" in page and "1 h" not in page
    book = load_workbook(io.BytesIO(render_xlsx(doc, "zh")))
    labels = [str(row[0]) for row in book["复现"].iter_rows(min_row=5, values_only=True) if row[0]]
    influxql = [label for label in labels if label.startswith("InfluxQL")]
    assert influxql and not any("per tile" in label for label in influxql)
    summary = {row[0]: row[1] for row in book["概要"].iter_rows(min_row=3, values_only=True)}
    assert summary["窗口长度"] == "1 小时"


async def test_reports_are_made_in_their_worker_two_at_a_time(
    make_app: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figures and the files are made in the report's own thread, never on the event
    loop nor in the shared default executor; at most two requests are served at once."""
    threads: list[str] = []
    in_flight = [0, 0]  # now, most

    async def read_stored(*args: Any, **kwargs: Any) -> Any:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            await asyncio.sleep(0.2)  # a longer read, so that the requests overlap
            return await queries_module.read_stored(*args, **kwargs)
        finally:
            in_flight[0] -= 1

    def build_figures(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return figures_module.build_figures(*args, **kwargs)

    def render(doc: ReportDoc, lang: Lang) -> bytes:
        threads.append(threading.current_thread().name)
        return render_xlsx(doc, lang)

    monkeypatch.setattr(document_module, "read_stored", read_stored)
    monkeypatch.setattr(document_module, "build_figures", build_figures)
    monkeypatch.setattr(route_module, "render_xlsx", render)
    async with client(make_app()) as api:
        answers = await asyncio.gather(
            *(
                api.get("/api/v1/report-doc", params={**PERIOD, "format": kind})
                for kind in ("xlsx", "json", "xlsx", "json", "xlsx")
            )
        )
    assert [a.status_code for a in answers] == [200] * 5
    assert in_flight[1] == route_module.CONCURRENT_REPORTS == 2
    assert len(threads) == 5 + 3 and set(threads) == {f"{THREAD_NAME}_0"}, threads
