"""The ``kpi`` CLI against a served API (uvicorn on this loop, the CLI in a worker)."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from collector.kpi_cli import kpi_app, parse_when, top_reasons
from tests.collector.api.conftest import LIVE_ENDS, Apps, Plant, serving

pytestmark = pytest.mark.integration

TOKEN = "cli-token-42"
RANGE = ["--start", "2026-11-28T08:00:00Z", "--end", "2026-11-28T10:00:01Z"]


@pytest.fixture
async def served(make_app: Apps) -> AsyncIterator[str]:
    async with serving(make_app(tokens=[TOKEN])) as url:
        yield url


async def kpi(api: str, *args: str, token: str | None = TOKEN) -> Result:
    env = {"COLUMNS": "200", "KPI_TOKEN": token or ""}
    # The CLI is synchronous (httpx): run it off the loop that serves the API.
    return await asyncio.to_thread(
        CliRunner().invoke, kpi_app, [*args, "--api", api], env=env, catch_exceptions=False
    )


async def test_history_json_and_table(served: str, plant: Plant) -> None:
    result = await kpi(
        served, "history", "enterprise", "ent-a", *RANGE, "--resolution", "window", "--json"
    )
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout)["points"]
    assert [p["time_ns"] for p in points] == LIVE_ENDS
    table = await kpi(served, "history", "enterprise", "ent-a", *RANGE, "--resolution", "hour")
    assert table.exit_code == 0, table.output
    assert "stored rate, hour" in table.stdout and "2026-11-28 08:00:00Z" in table.stdout


async def test_report_recomputes_each_window(served: str) -> None:
    args = ["report", "--start", "2026-11-28T08:00:00Z", "--end", "2026-11-28T10:00:00Z"]
    result = await kpi(served, *args, "--window", "1h", "--json")
    assert result.exit_code == 0, result.output
    windows = json.loads(result.stdout)["windows"]
    enterprise = [
        next(r for r in w["rates"] if r["scope"] == "enterprise" and r["industry"] == "all")
        for w in windows
    ]
    assert [(r["numerator"], r["denominator"]) for r in enterprise] == [(2, 3), (1, 3)]
    table = await kpi(served, *args, "--window", "hour")
    assert table.exit_code == 0 and "66.7%" in table.stdout and "33.3%" in table.stdout


async def test_export_to_file_and_as_json(served: str, plant: Plant, tmp_path: Path) -> None:
    out = tmp_path / "rates.csv"
    result = await kpi(served, "export", "rates", *RANGE, "--output", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == sum(len(r.rates) for r in plant.live)
    assert f"wrote {len(rows)} rows" in result.stderr
    as_json = await kpi(served, "export", "processes", *RANGE, "--json")
    assert as_json.exit_code == 0, as_json.output
    statuses = json.loads(as_json.stdout)
    assert len(statuses) == 18 and {s["process"] for s in statuses} == {"p1", "p2", "p3"}


async def test_errors_exit_4_naming_the_problem(served: str) -> None:
    wrong = await kpi(served, "history", "enterprise", "ent-a", *RANGE, token="wrong")
    assert wrong.exit_code == 4
    assert "401 unauthorized" in wrong.stderr and "not valid" in wrong.stderr
    reversed_range = await kpi(
        served,
        "export",
        "rates",
        "--start",
        "2026-11-28T10:00:00Z",
        "--end",
        "2026-11-28T08:00:00Z",
    )
    assert reversed_range.exit_code == 4
    assert "bad_time_range [end]" in reversed_range.stderr
    unknown = await kpi(served, "process", "p404", "--token", TOKEN)
    assert unknown.exit_code == 4 and "no key process 'p404'" in unknown.stderr


async def test_watch_stops_on_an_error_that_waiting_cannot_fix(served: str) -> None:
    """A wrong token is said once and ends ``kpi watch`` (it used to print it forever)."""
    wrong = await kpi(served, "watch", "--interval", "0.1", token="wrong")
    assert wrong.exit_code == 4
    assert "/api/v1/kpi: 401 unauthorized" in wrong.stderr and "not valid" in wrong.stderr


def test_relative_times() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_when("-2h", now) == "2026-11-28T10:00:00Z"
    assert parse_when("now", now) == "2026-11-28T12:00:00Z"
    assert parse_when("2026-11-28T08:00:00", now) == "2026-11-28T08:00:00Z"
    assert parse_when("2026-11-28T08:00:00+08:00", now) == "2026-11-28T08:00:00+08:00"


def test_the_reasons_cell_shows_the_most_frequent_and_says_how_many_more() -> None:
    reasons = {"STALE_DATA": 2, "LOW_COVERAGE": 5, "OVERRIDDEN": 1, "NO_SIGNAL": 2, "MANUAL": 1}
    assert top_reasons(reasons) == "LOW_COVERAGE×5 NO_SIGNAL×2 STALE_DATA×2 +2 more"
    assert top_reasons({"LOW_COVERAGE": 1}) == "LOW_COVERAGE×1"
    assert top_reasons({}) == ""


async def test_current_table_in_both_languages(served: str) -> None:
    en = await kpi(served, "--lang", "en")
    zh = await kpi(served, "--lang", "zh")
    assert en.exit_code == 0 and zh.exit_code == 0, en.output + zh.output
    assert "Key-process digitalization rate" in en.stdout and "enterprise" in en.stdout
    assert "关键工序数控化率" in zh.stdout and "Key-process" not in zh.stdout
    # Names in the reader's language beside the ids; the same figures in both.
    assert "甲企业" in zh.stdout and "Enterprise A" in en.stdout and "一线" in zh.stdout
    for figure in ("66.7%", "2/3"):
        assert (figure in en.stdout) == (figure in zh.stdout)
    # Reasons: the code in English, the label in Chinese; statuses likewise.
    assert "UNCERTAIN" in en.stdout and "数据质量不确定" in zh.stdout
    assert "NOT_DIGITALIZED" in en.stdout and "未数控化" in zh.stdout
    assert "UNCERTAIN" not in zh.stdout


async def test_language_from_kpi_lang_and_from_the_locale(served: str) -> None:
    from_env = await asyncio.to_thread(
        CliRunner().invoke,
        kpi_app,
        ["--api", served],
        env={"COLUMNS": "200", "KPI_TOKEN": TOKEN, "KPI_LANG": "zh-CN"},
    )
    from_locale = await asyncio.to_thread(
        CliRunner().invoke,
        kpi_app,
        ["--api", served],
        env={"COLUMNS": "200", "KPI_TOKEN": TOKEN, "KPI_LANG": "", "LC_ALL": "zh_CN.UTF-8"},
    )
    flag_wins = await asyncio.to_thread(
        CliRunner().invoke,
        kpi_app,
        ["--api", served, "--lang", "en"],
        env={"COLUMNS": "200", "KPI_TOKEN": TOKEN, "KPI_LANG": "zh"},
    )
    assert "关键工序数控化率" in from_env.stdout
    assert "关键工序数控化率" in from_locale.stdout
    assert "Key-process digitalization rate" in flag_wins.stdout


async def test_unsupported_language_is_refused(served: str) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke, kpi_app, ["--api", served, "--lang", "fr"], env={"KPI_TOKEN": TOKEN}
    )
    assert result.exit_code == 2
    assert "--lang" in result.output and "'fr'" in result.output and "en, zh" in result.output


async def test_process_detail_says_what_to_fix_in_both_languages(served: str) -> None:
    en = await kpi(served, "process", "p2", "--lang", "en")
    zh = await kpi(served, "process", "p2", "--lang", "zh")
    assert en.exit_code == 0 and zh.exit_code == 0, en.output + zh.output
    assert "UNCERTAIN (Uncertain data quality): The device reports its values" in en.stdout
    assert (
        "UNCERTAIN (数据质量不确定)：" in zh.stdout or "UNCERTAIN (数据质量不确定): " in zh.stdout
    )
    assert "检查标定和接线" in zh.stdout and "台账版本 api-test-1" in zh.stdout


async def test_history_and_errors_in_chinese(served: str) -> None:
    table = await kpi(
        served, "history", "enterprise", "ent-a", *RANGE, "--resolution", "hour", "--lang", "zh"
    )
    assert table.exit_code == 0, table.output
    assert "已存储的数控化率" in table.stdout and "小时" in table.stdout
    assert "2026-11-28 08:00:00Z" in table.stdout
    unknown = await kpi(served, "process", "p404", "--lang", "zh")
    assert unknown.exit_code == 4
    # The culprit as the API names it, and what the code means in the reader's language.
    assert "no key process 'p404'" in unknown.stderr
    assert "已加载的台账中没有该编号的关键工序" in unknown.stderr
    gone = await kpi("http://127.0.0.1:9", "--lang", "zh")
    assert gone.exit_code == 3 and "无法连接采集中心接口" in gone.stderr


async def test_export_headers_in_chinese_cells_unchanged(served: str, tmp_path: Path) -> None:
    en_out, zh_out = tmp_path / "en.csv", tmp_path / "zh.csv"
    en = await kpi(served, "export", "processes", *RANGE, "-o", str(en_out), "--lang", "en")
    zh = await kpi(served, "export", "processes", *RANGE, "-o", str(zh_out), "--lang", "zh")
    assert en.exit_code == 0 and zh.exit_code == 0, en.output + zh.output
    # Chinese headers carry a byte-order mark (Excel on Chinese Windows reads GBK without).
    assert zh_out.read_bytes().startswith(b"\xef\xbb\xbf") and en_out.read_bytes()[:4] == b"time"
    en_rows = list(csv.reader(en_out.open(encoding="utf-8")))
    zh_rows = list(csv.reader(zh_out.open(encoding="utf-8-sig")))
    assert en_rows[0][:4] == ["time", "time_ns", "enterprise", "plant"]
    assert zh_rows[0][:4] == ["时间（UTC）", "时间（自 1970 年起的纳秒数，UTC）", "企业", "工厂"]
    assert "状态" in zh_rows[0] and "原因" in zh_rows[0]
    assert en_rows[1:] == zh_rows[1:]  # codes and ids as they are
    assert "已写入" in zh.stderr
    # JSON keys never change with the language.
    as_json = await kpi(served, "export", "processes", *RANGE, "--json", "--lang", "zh")
    assert "status" in json.loads(as_json.stdout)[0]
    # A Chinese locale alone changes the messages, never a machine-readable header.
    by_locale = await asyncio.to_thread(
        CliRunner().invoke,
        kpi_app,
        ["export", "processes", *RANGE, "--api", served],
        env={"KPI_TOKEN": TOKEN, "KPI_LANG": "", "LC_ALL": "zh_CN.UTF-8"},
    )
    assert by_locale.stdout.startswith("time,time_ns,enterprise,"), by_locale.stdout[:80]


async def test_names_stand_beside_the_ids_only_where_they_fit(served: str) -> None:
    """A terminal too narrow for the names keeps ids and reason codes whole instead."""
    wide = await asyncio.to_thread(
        CliRunner().invoke,
        kpi_app,
        ["--api", served, "--lang", "en"],
        env={"COLUMNS": "200", "KPI_TOKEN": TOKEN},
    )
    narrow = await asyncio.to_thread(
        CliRunner().invoke,
        kpi_app,
        ["--api", served, "--lang", "en"],
        env={"COLUMNS": "105", "KPI_TOKEN": TOKEN},
    )
    assert wide.exit_code == 0 and narrow.exit_code == 0, wide.output + narrow.output
    rates = [line for line in wide.stdout.splitlines() if "│ enterprise" in line]
    assert rates and "Enterprise A" in rates[0]
    rates = [line for line in narrow.stdout.splitlines() if "│ enterprise" in line]
    assert rates and "ent-a" in rates[0] and "Enterprise A" not in narrow.stdout
    assert "…" not in narrow.stdout.split("Key processes that do not count")[0]
