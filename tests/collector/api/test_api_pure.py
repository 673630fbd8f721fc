"""Pure parts: the hour/shift/day grid, report windows, time ranges, CSV cells."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from collector.api.csv_rows import header, rows
from collector.api.errors import ApiError, excerpt
from collector.api.routes.ops import ready_reason
from collector.api.timerange import check_range, iso
from collector.history import Grid, Period, report_windows
from collector.kpi.inputs import Window
from collector.settings import ApiSettings
from collector.storage.reader import PointRow
from common.timestamps import datetime_to_ns as to_ns

H = 3600 * 10**9
DAY0 = to_ns(datetime(2026, 11, 28, tzinfo=UTC))


def test_shift_grid_with_a_0600_start() -> None:
    grid = Grid(shift_start_s=6 * 3600, shift_length_s=8 * 3600)
    assert grid.floor(DAY0 + 5 * H, "shift") == DAY0 - 2 * H  # the 22:00 shift of the day before
    assert grid.floor(DAY0 + 6 * H, "shift") == DAY0 + 6 * H
    assert grid.floor(DAY0 + 5 * H, "day") == DAY0 - 18 * H  # production day from 06:00
    assert grid.floor(DAY0 + 5 * H + 1, "hour") == DAY0 + 5 * H


def test_report_windows_tile_the_range_exactly() -> None:
    grid = Grid(shift_start_s=6 * 3600 + 30 * 60)
    start, end = DAY0 + 1234, DAY0 + 3 * 24 * H - 7
    periods: tuple[Period, ...] = ("hour", "shift", "day")
    for period in periods:
        windows = report_windows(start, end, period, grid)
        assert windows[0].start_ns == start and windows[-1].end_ns == end
        assert all(a.end_ns == b.start_ns for a, b in itertools.pairwise(windows))
    assert report_windows(DAY0, DAY0 + H, "hour", Grid()) == [Window(DAY0, DAY0 + H)]


def test_ranges_are_exact_and_checked() -> None:
    plus8 = timezone(timedelta(hours=8))
    start = datetime(2026, 11, 28, 16, 0, 0, 1, tzinfo=plus8)  # 08:00:00.000001Z
    assert to_ns(start) == DAY0 + 8 * H + 1000
    assert iso(DAY0 + 8 * H + 1999) == "2026-11-28T08:00:00.000001Z"
    assert check_range(start, start + timedelta(hours=1), 3600, "x") == (
        DAY0 + 8 * H + 1000,
        DAY0 + 9 * H + 1000,
    )
    with pytest.raises(ApiError) as too_long:
        check_range(start, start + timedelta(hours=1, microseconds=1), 3600, "a recomputation")
    assert too_long.value.extra["field"] == "end" and "at most 1 h" in too_long.value.detail


def test_settings_refuse_a_shift_that_does_not_divide_the_day() -> None:
    with pytest.raises(ValueError, match="must divide 24h"):
        ApiSettings(shift_length="7h")
    with pytest.raises(ValueError, match="shift_start"):
        ApiSettings(shift_start="25:00")
    assert ApiSettings(shift_start="06:30").shift_start_s == 6 * 3600 + 1800


def test_csv_cells_round_trip_floats_and_quote_json() -> None:
    point = PointRow(
        DAY0,
        {"scope": "line", "scope_id": "l,1"},
        {"rate": 0.1 + 0.2, "reasons": '{"A":1,"B":2}', "numerator": 1},
    )
    text = header(["scope", "scope_id"], ["rate", "reasons", "numerator", "absent"])
    text += rows([point], ["scope", "scope_id"], ["rate", "reasons", "numerator", "absent"])
    assert text.splitlines() == [
        "time,time_ns,scope,scope_id,rate,reasons,numerator,absent",
        f'2026-11-28T00:00:00Z,{DAY0},line,"l,1",0.30000000000000004,"{{""A"":1,""B"":2}}",1,',
    ]


@pytest.mark.parametrize(
    ("last_error", "reason"),
    [
        ("", ""),
        (
            "QueryUnavailable: InfluxDB v1 at http://influx:8086, db p: query failed: …",
            "influxdb unreachable",
        ),
        (
            "QueryError: InfluxDB v1 at http://influx:8086, db p: query failed: x\n  query: SELECT 1",
            "query failed: QueryError",
        ),
        ("WriteUnavailable: InfluxDB v1 at http://influx:8086 …", "influxdb unreachable"),
        ("WriteRejected: InfluxDB v1 at http://influx:8086 …", "write failed: WriteRejected"),
        ("DatabaseMissing: InfluxDB v1 at http://influx:8086 …", "write failed: DatabaseMissing"),
        ("ZeroDivisionError: division by zero", "kpi evaluation failed: ZeroDivisionError"),
        ("http://influx:8086 said no", "kpi evaluation failed"),
    ],
)
def test_ready_gives_the_kind_of_failure_only(last_error: str, reason: str) -> None:
    assert ready_reason(last_error) == reason


def test_an_excerpt_cuts_a_long_value_and_says_how_long_it_was() -> None:
    assert excerpt("shift") == "'shift'"
    assert excerpt("a" * 200) == repr("a" * 200)
    assert excerpt("a" * 201) == f"{'a' * 200!r}… (201 characters)"
