"""A season of the demo enterprise's stored results in a real influxd (written with the KPI
loop's own line builder): the report takes exactly one stored window per hour (the first),
pools them per scope, per key process and per week, and its sums reconcile with the stored
``kpi_rate`` points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench.report_doc_data import HOUR, Story
from collector.kpi.service import KpiResult, result_lines
from collector.report_doc.document import ReportDoc, build_report
from collector.report_doc.figures import canonical
from collector.report_doc.pdf import render_html
from collector.report_doc.view import View
from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from collector.storage.writer import make_writer
from common.register_loader import LoadedRegister, load_register
from harness.servers import InfluxServer

pytestmark = pytest.mark.integration

REGISTER = Path(__file__).parents[3] / "examples" / "demo" / "register.yaml"
START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 10**9  # a Thursday
DAYS = 100
STEP = 12
"""One tile stored every 12 hours (the others missing), to keep the test quick."""


@dataclass
class Season:
    register: LoadedRegister
    reader: InfluxQLReader
    tiles: list[KpiResult]
    """The results stored at the tiles' ends, in time order."""


@pytest.fixture(scope="module")
async def season(influxdb: InfluxServer) -> AsyncIterator[Season]:
    register = load_register(REGISTER)
    database = "report_doc_season"
    influxdb.create_database(database)
    settings = InfluxSettings(url=influxdb.url, database=database)
    writer, reader = make_writer(settings), InfluxQLReader(settings)
    story = Story(register, START, DAYS)
    tiles: list[KpiResult] = []
    lines: list[str] = []
    try:
        for h in range(0, DAYS * 24, STEP):
            tile = story.hour(h, START + (h + 1) * HOUR)
            tiles.append(tile)
            lines += result_lines(tile)
            if h % (2 * STEP) == 0:
                # A later window of the same hour: the live loop stores one every minute,
                # only the first of the hour tiles the period.
                lines += result_lines(story.hour(h, START + (h + 1) * HOUR + HOUR // 2))
        await writer.write(lines)
        yield Season(register, reader, tiles)
    finally:
        await writer.close()
        await reader.close()
        influxdb.drop_database(database)


async def report(season: Season, days: int = DAYS) -> ReportDoc:
    return await build_report(season.reader, season.register, START, START + days * 24 * HOUR)


def enterprise_counts(results: list[KpiResult], scope: str, scope_id: str) -> tuple[int, int]:
    rates = [
        r
        for result in results
        for r in result.rates
        if (r.scope, r.scope_id, r.industry) == (scope, scope_id, "all")
    ]
    return sum(r.numerator for r in rates), sum(r.denominator for r in rates)


async def test_a_season_pools_one_window_per_hour(season: Season) -> None:
    doc = await report(season)
    f = doc.figures
    assert f.tiles_in_period == DAYS * 24 and f.window_s == 3600
    own = f.rates[0]
    assert own.tiles == len(season.tiles) == DAYS * 24 // STEP
    expected = enterprise_counts(season.tiles, "enterprise", season.register.enterprise_id)
    assert (own.numerator, own.denominator) == expected
    assert f.measured_rate == expected[0] / expected[1]
    assert f.check.reconciles and (f.check.numerator, f.check.denominator) == expected
    for rate in f.rates[1:]:
        assert (rate.numerator, rate.denominator) == enterprise_counts(
            season.tiles, rate.scope, rate.scope_id
        ), rate.scope_id
    processes = [p for t in season.tiles for e in t.evaluations for p in e.processes]
    for figures in f.processes:
        mine = [p for p in processes if p.process_id == figures.process_id]
        assert figures.tiles == len(mine)
        assert figures.statuses == {s: sum(p.status == s for p in mine) for s in figures.statuses}
        assert sum(figures.reasons.values()) == sum(len(p.reasons) for p in mine)
    assert len(f.processes) == 18


async def test_a_long_period_trends_per_week_from_monday(season: Season) -> None:
    f = (await report(season)).figures
    assert f.trend.bucket == "week" and f.trend.bucket_s == 7 * 86400
    starts = [datetime.fromtimestamp(p.start_ns / 1e9, UTC) for p in f.trend.points]
    assert all((s.weekday(), s.hour) == (0, 0) for s in starts)
    assert starts[0] == datetime(2025, 12, 29, tzinfo=UTC)  # the Monday before the period
    assert sum(p.enterprise.numerator for p in f.trend.points) == f.rates[0].numerator
    assert sum(p.enterprise.denominator for p in f.trend.points) == f.rates[0].denominator
    for plant in ("plant-a", "plant-b"):
        assert sum(p.plants[plant].denominator for p in f.trend.points) == next(
            r.denominator for r in f.rates if r.scope_id == plant
        )
    versions = [v.value for v in f.register_versions]
    assert versions == ["demo-2026.11", "demo-2026.11-r2"]
    assert f.register_versions[0].last_ns < f.register_versions[1].first_ns
    assert len(f.thresholds) == 1 and '"coverage_min":0.95' in f.thresholds[0].value


async def test_a_month_trends_per_day_and_the_digest_is_stable(season: Season) -> None:
    first, again = await report(season, 30), await report(season, 30)
    assert first.figures.trend.bucket == "day" and len(first.figures.trend.points) == 30
    assert first.digest == again.digest
    # The generation time is outside the digested figures: two copies of one period agree.
    assert b"generated_at" not in canonical(first.figures)
    assert first.figures.rates[0].tiles == 30 * 24 // STEP


async def test_days_and_weeks_follow_the_zone_the_period_was_asked_in(season: Season) -> None:
    """February asked in +08:00: each day point starts at midnight there (16:00 UTC the day
    before), the first is February 1st; a longer period's weeks start on Monday there."""
    cst = timezone(timedelta(hours=8))
    start, end = datetime(2026, 2, 1, tzinfo=cst), datetime(2026, 3, 1, tzinfo=cst)
    doc = await build_report(
        season.reader,
        season.register,
        int(start.timestamp()) * 10**9,
        int(end.timestamp()) * 10**9,
        utc_offset_s=8 * 3600,
    )
    trend = doc.figures.trend
    assert (trend.bucket, trend.offset_s) == ("day", 16 * 3600)
    days = [datetime.fromtimestamp(p.start_ns / 1e9, UTC).astimezone(cst) for p in trend.points]
    assert days == [start + timedelta(days=d) for d in range(28)]
    assert trend.points[0].start == "2026-01-31T16:00:00Z"
    view = View(doc, "zh")
    assert view.day(trend.points[0].start_ns) == "2026-02-01"
    assert 'text-anchor="middle" fill="#444">02-01</text>' in render_html(doc, "zh")
    assert sum(p.enterprise.denominator for p in trend.points) == doc.figures.rates[0].denominator

    weeks = await build_report(
        season.reader,
        season.register,
        int(datetime(2026, 1, 1, tzinfo=cst).timestamp()) * 10**9,
        int(datetime(2026, 4, 10, tzinfo=cst).timestamp()) * 10**9,
        utc_offset_s=8 * 3600,
    )
    assert weeks.figures.trend.bucket == "week"
    starts = [
        datetime.fromtimestamp(p.start_ns / 1e9, UTC).astimezone(cst)
        for p in weeks.figures.trend.points
    ]
    assert all((s.weekday(), s.hour, s.minute) == (0, 0, 0) for s in starts), starts
    assert starts[0] == datetime(2025, 12, 29, tzinfo=cst)
