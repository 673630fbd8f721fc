"""``/api/v1/report-doc`` and ``kpi report-doc`` over the test plant's stored results (a real
influxd): the figures are the stored tiles, the PDF (read back with poppler) and the XLSX
(read back with openpyxl) show the JSON's figures in English and Chinese, the digest
recomputes, and a wrong enterprise, range, language or format is named."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

from collector.kpi.service import KpiResult
from collector.kpi_cli import kpi_app
from collector.report_doc.document import ReportDoc
from collector.report_doc.figures import STATUSES, digest
from collector.report_doc.view import View, pct
from harness.servers import free_port
from tests.collector.api.conftest import Apps, Plant, client
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
    port = free_port()
    config = uvicorn.Config(
        make_app(tokens=[TOKEN]), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


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
