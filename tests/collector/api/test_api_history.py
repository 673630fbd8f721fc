"""History (stored trend), exports and reports against what was written / recomputed."""

from __future__ import annotations

import csv
import io
import json
from statistics import mean
from typing import Any

import pytest

from collector.api.timerange import iso
from collector.kpi.aggregate import ScopeRate
from tests.collector.api.conftest import LIVE_ENDS, Apps, Plant, client
from tests.collector.kpi.kpi_testkit import at

pytestmark = pytest.mark.integration

RANGE = {"start": iso(at(0)), "end": iso(at(2 * 3600) + 1000)}  # 08:00 to just past 10:00


def enterprise_rates(plant: Plant) -> list[ScopeRate]:
    return [
        r
        for result in plant.live
        for r in result.rates
        if r.scope == "enterprise" and r.industry == "all"
    ]


async def test_history_window_returns_the_stored_points(plant: Plant, make_app: Apps) -> None:
    params = {"scope": "enterprise", "scope_id": "ent-a", "resolution": "window", **RANGE}
    async with client(make_app()) as api:
        response = await api.get("/api/v1/history", params=params)
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    written = enterprise_rates(plant)
    assert [p["time_ns"] for p in points] == LIVE_ENDS
    assert [(p["numerator"], p["denominator"], p["rate"]) for p in points] == [
        (r.numerator, r.denominator, r.rate) for r in written
    ]
    assert [p["reasons"] for p in points] == [r.reasons for r in written]
    assert {p["register_versions"] for p in points} == {"api-test-1"}
    # The trend moves: 2/3 while p2 is good, 1/3 once its Uncertain hour dominates.
    assert points[0]["rate"] == pytest.approx(2 / 3) and points[-1]["rate"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("resolution", ["hour", "shift"])
async def test_history_buckets_aggregate_the_stored_points(
    plant: Plant, make_app: Apps, resolution: str
) -> None:
    params = {"scope": "line", "scope_id": "l1", "resolution": resolution, **RANGE}
    async with client(make_app()) as api:
        points = (await api.get("/api/v1/history", params=params)).json()["points"]
    written = [
        (result.window.end_ns, r)
        for result in plant.live
        for r in result.rates
        if (r.scope, r.scope_id, r.industry) == ("line", "l1", "all")
    ]
    bucket = 3600 * 10**9 if resolution == "hour" else 8 * 3600 * 10**9
    expected: dict[int, list[ScopeRate]] = {}
    for end, rate in written:
        expected.setdefault(end // bucket * bucket, []).append(rate)
    assert [p["time_ns"] for p in points] == sorted(expected)
    for point in points:
        rates = expected[point["time_ns"]]
        assert point["points"] == len(rates)
        assert point["rate_mean"] == pytest.approx(mean(r.rate or 0 for r in rates))
        assert point["rate_min"] == pytest.approx(min(r.rate or 0 for r in rates))
        assert point["numerator"] == sum(r.numerator for r in rates)
        assert point["denominator"] == sum(r.denominator for r in rates)
        assert (point["plant"], point["enterprise"]) == ("pl", "ent-a")


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_rates_csv_round_trip(plant: Plant, make_app: Apps) -> None:
    async with client(make_app()) as api:
        response = await api.get("/api/v1/export/rates.csv", params=RANGE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.splitlines()[0].startswith("time,time_ns,scope,scope_id,industry")
    rows = read_csv(response.text)
    written: dict[tuple[Any, ...], ScopeRate] = {
        (result.window.end_ns, r.scope, r.scope_id, r.industry, r.plant_id or ""): r
        for result in plant.live
        for r in result.rates
    }
    assert len(rows) == len(written)
    for row in rows:
        key = (int(row["time_ns"]), row["scope"], row["scope_id"], row["industry"], row["plant"])
        rate = written[key]
        assert int(row["numerator"]) == rate.numerator
        assert int(row["denominator"]) == rate.denominator
        assert (float(row["rate"]) if row["rate"] else None) == rate.rate
        assert json.loads(row["reasons"]) == rate.reasons
        assert row["time"] == iso(int(row["time_ns"]))


async def test_processes_csv_round_trip(plant: Plant, make_app: Apps) -> None:
    async with client(make_app()) as api:
        response = await api.get("/api/v1/export/processes.csv", params=RANGE)
    assert response.status_code == 200
    rows = read_csv(response.text)
    written = {
        (result.window.end_ns, p.process_id): p
        for result in plant.live
        for e in result.evaluations
        for p in e.processes
    }
    assert len(rows) == len(written) == 18
    for row in rows:
        p = written[(int(row["time_ns"]), row["process"])]
        assert row["status"] == str(p.status)
        assert row["counted"] == ("true" if p.status == "DIGITALIZED" else "false")
        assert row["reasons"] == ",".join(str(r) for r in p.reasons)
        assert float(row["coverage_min"]) == min(s.good for s in p.signals)
        assert row["register_version"] == "api-test-1"
        assert (row["plant"], row["industry"]) == (p.plant_id, p.industry)


async def test_empty_export_still_has_its_header(make_app: Apps) -> None:
    params = {"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T03:00:00Z"}
    async with client(make_app()) as api:
        response = await api.get("/api/v1/export/processes.csv", params=params)
    assert response.status_code == 200
    assert response.text.splitlines() == [
        "time,time_ns,enterprise,plant,line,process,industry,status,counted,reasons,"
        "coverage_min,longest_gap_s,manual_share,scheduled_s,window_s,register_version,"
        "register_digest,thresholds,complete,revision"
    ]


def rate_key(rates: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (r["scope"], r["scope_id"], r["industry"], r["numerator"], r["denominator"], r["rate"])
        for r in rates
    )


async def test_report_windows_equal_recompute(make_app: Apps) -> None:
    params = {"start": iso(at(-1800)), "end": iso(at(7200)), "window": "1h"}
    async with client(make_app()) as api:
        plan = (await api.get("/api/v1/report/windows", params=params)).json()
        report = await api.get("/api/v1/report", params=params)
        assert report.status_code == 200, report.text
        windows = report.json()["windows"]
        recomputed = [
            (
                await api.get("/api/v1/recompute", params={"start": w["start"], "end": w["end"]})
            ).json()
            for w in windows
        ]
    # 07:30–08:00 (clipped: partial), 08:00–09:00, 09:00–10:00
    assert [(w["window"], w["partial"]) for w in windows] == [
        ({"start_ns": at(-1800), "end_ns": at(0)}, True),
        ({"start_ns": at(0), "end_ns": at(3600)}, False),
        ({"start_ns": at(3600), "end_ns": at(7200)}, False),
    ]
    assert [w["start_ns"] for w in plan["windows"]] == [w["window"]["start_ns"] for w in windows]
    for window, again in zip(windows, recomputed, strict=True):
        assert again["window"] == window["window"]
        assert rate_key(window["rates"]) == rate_key(again["rates"])
    ent = [
        next(r for r in w["rates"] if r["scope"] == "enterprise" and r["industry"] == "all")[
            "numerator"
        ]
        for w in windows
    ]
    assert ent == [2, 2, 1]  # p2's temperature is Uncertain from 09:00
    assert windows[1]["register_versions"] == ["api-test-1"]


async def test_report_windows_follow_the_shift_grid(make_app: Apps) -> None:
    params = {"start": "2026-11-28T05:00:00Z", "end": "2026-11-29T05:00:00Z", "window": "shift"}
    async with client(make_app(shift_start="06:00")) as api:
        plan = (await api.get("/api/v1/report/windows", params=params)).json()
    assert plan["period"] == "shift"
    assert [(w["start"], w["end"], w["partial"]) for w in plan["windows"]] == [
        ("2026-11-28T05:00:00Z", "2026-11-28T06:00:00Z", True),
        ("2026-11-28T06:00:00Z", "2026-11-28T14:00:00Z", False),
        ("2026-11-28T14:00:00Z", "2026-11-28T22:00:00Z", False),
        ("2026-11-28T22:00:00Z", "2026-11-29T05:00:00Z", True),
    ]
