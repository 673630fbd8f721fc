"""The demo scenario end to end, every component a real process, real mosquitto and influxd.

simulators ─OPC UA/MQTT→ edge agents ─MQTT→ collector ─/api/v2/write (1.8 compat proxy)→ influxd

Checks: every sample the simulators produced once the edges were reading is stored, with
its status code and source timestamp; each key process gets the scenario's expected status
and reasons; the line, plant and enterprise rates equal the scenario's; a live window
recomputed from storage gives the live answer.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from collector.storage.reader import InfluxQLReader
from harness.plant import PlantStack
from tests.e2e.conftest import kpi_cli

pytestmark = pytest.mark.integration

DEMO = Path(__file__).parents[2] / "examples" / "demo"
WINDOW = (15, 42)  # seconds after the simulators started: past warm-up, inside the run


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


async def test_every_sample_read_is_stored_with_status_and_source_time(
    demo_run: dict[str, Any],
) -> None:
    stack: PlantStack = demo_run["stack"]
    reader = InfluxQLReader(demo_run["influx"])
    enterprise = stack.register.enterprise_id
    try:
        stored = await reader.samples(0, time.time_ns() + 10**9, 0, enterprise)
        liveness = await reader.liveness(0, time.time_ns() + 10**9, enterprise)
    finally:
        await reader.close()

    # A source's samples count from the moment its edge reported it up: before that no
    # edge was reading it (the simulators start first, as equipment does).
    first_up: dict[str, int] = {}
    for (_plant, source), events in liveness.items():
        ups = [e.ts for e in events if e.up]
        if ups:
            first_up[source] = min(ups)
    source_of = {(r.process.id, r.signal.id): r.signal.source for r in stack.register.signals()}
    # A polled Modbus device or S7 PLC carries no source time: its samples are stamped when
    # read, so they are held to the values the device held, below, not to the ledger's times.
    polled = {
        s.id for p in stack.register.model.plants for s in p.sources if s.kind in ("modbus", "s7")
    }
    expected = [
        rec
        for rec in demo_run["ledger"]
        if rec.ts_ns >= first_up.get(str(source_of[(rec.process, rec.signal)]), math.inf) + 10**9
        and source_of[(rec.process, rec.signal)] not in polled
    ]
    assert len(expected) > 500, "the simulators produced too little to judge"
    assert set(source_of[(r.process, r.signal)] for r in expected) == set(first_up) - {
        "_edge",
        *polled,
    }
    assert polled == {"a3-plc", "b4-plc"} and polled <= set(first_up), "a device was never read"
    _polled_values_were_produced(demo_run["ledger"], stored, source_of, polled)

    index = {
        key: {
            ts: (status, value)
            for ts, status, value in zip(cols.ts, cols.status, cols.value, strict=True)
        }
        for key, cols in stored.items()
    }
    missing, wrong = [], []
    for rec in expected:
        got = index.get((rec.process, rec.signal), {}).get(rec.ts_ns)
        if got is None:
            missing.append(rec)
        elif got[0] != rec.status or not _same_value(got[1], rec.value):
            wrong.append((rec, got))
    assert not missing, f"{len(missing)} of {len(expected)} samples missing, e.g. {missing[:3]}"
    assert not wrong, f"{len(wrong)} samples stored differently, e.g. {wrong[:3]}"
    assert demo_run["stats"]["samples_rejected"] == 0
    assert demo_run["stats"]["batches_malformed"] == 0
    # Every stored sample's latency (source time → written) was observed (how long it
    # is, is for bench/mqtt_latency.py).
    ages = demo_run["stats"]["sample_age_at_write"]
    assert ages["samples"] == demo_run["stats"]["samples_written"]
    assert 0 < ages["p50_s"] <= ages["p99_s"], ages


def _polled_values_were_produced(
    ledger: list[Any], stored: dict[Any, Any], source_of: dict[Any, Any], polled: set[str]
) -> None:
    """Every value read from a polled device is one the simulator gave it (a float32
    register holds the value to float32 precision)."""
    produced: dict[tuple[str, str], list[object]] = {}
    for rec in ledger:
        if source_of[(rec.process, rec.signal)] in polled:
            produced.setdefault((rec.process, rec.signal), []).append(rec.value)
    for key, values in produced.items():
        cols = stored.get(key)
        assert cols is not None and len(cols.ts) > 10, f"{key}: read from the device too little"
        for value in set(cols.value):
            assert any(stored_value_matches(value, candidate) for candidate in values), (
                f"{key}: {value!r} was read but never produced"
            )


def stored_value_matches(stored: object, produced: object) -> bool:
    if isinstance(stored, float) and isinstance(produced, int | float):
        return math.isclose(stored, float(produced), rel_tol=1e-6)
    return stored == produced


def _same_value(stored: object, produced: object) -> bool:
    if isinstance(produced, bool) or isinstance(stored, bool):
        return stored == produced
    if isinstance(produced, int | float) and isinstance(stored, int | float):
        return math.isclose(float(stored), float(produced), rel_tol=1e-12, abs_tol=1e-12)
    return stored == produced


def test_kpi_matches_the_scenario(demo_run: dict[str, Any]) -> None:
    scenario = yaml.safe_load((DEMO / "scenario.yaml").read_text())["expected"]
    start = demo_run["sim_start"] + WINDOW[0] * 10**9
    end = demo_run["sim_start"] + WINDOW[1] * 10**9
    response = httpx.get(
        f"{demo_run['stack'].api_url}/api/v1/recompute",
        params={"start": _iso(start), "end": _iso(end)},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    processes = {p["process_id"]: p for e in result["evaluations"] for p in e["processes"]}
    problems = []
    for process_id, want in scenario["processes"].items():
        got = processes[process_id]
        reasons = set(got["reasons"])
        required = set(want.get("reasons", []))
        allowed = required | set(want.get("may_also", []))
        if got["status"] != want["status"] or not required <= reasons <= allowed:
            problems.append(f"{process_id}: want {want}, got {got['status']} {sorted(reasons)}")
    assert not problems, "\n".join(problems)

    rates = {
        (r["scope"], r["scope_id"]): r["rate"] for r in result["rates"] if r["industry"] == "all"
    }
    for scope, values in scenario["rates"].items():
        for scope_id, want in values.items():
            got = rates[(scope, scope_id)]
            assert (got is None) == (want is None), (scope, scope_id, got, want)
            if want is not None:
                assert got == pytest.approx(want, abs=1e-3), (scope, scope_id)
    assert result["evaluations"][0]["register_version"] == "demo-2026.11"


def test_live_window_recomputed_from_storage_gives_the_same_answer(
    demo_run: dict[str, Any],
) -> None:
    live = demo_run["live"]
    response = httpx.get(
        f"{demo_run['stack'].api_url}/api/v1/recompute",
        params={"start": _iso(live["window"]["start_ns"]), "end": _iso(live["window"]["end_ns"])},
        timeout=60,
    )
    recomputed = response.json()
    # ISO text carries microseconds: compare windows at that precision.
    assert abs(recomputed["window"]["start_ns"] - live["window"]["start_ns"]) <= 2000

    def key(rates: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (r["scope"], r["scope_id"], r["industry"], r["numerator"], r["denominator"])
            for r in rates
        )

    assert key(recomputed["rates"]) == key(live["rates"])


async def test_live_loop_stores_status_and_rate_points(demo_run: dict[str, Any]) -> None:
    reader = InfluxQLReader(demo_run["influx"])
    try:
        statuses = await reader.points(
            "process_status", demo_run["sim_start"], time.time_ns() + 10**9
        )
        rates = await reader.points("kpi_rate", demo_run["sim_start"], time.time_ns() + 10**9)
    finally:
        await reader.close()
    assert {row.tags["process"] for row in statuses} >= {"a1-turning", "b3-packing"}
    enterprise_rows = [
        r for r in rates if r.tags["scope"] == "enterprise" and r.tags["industry"] == "all"
    ]
    assert enterprise_rows and all(
        r.fields["register_versions"] == "demo-2026.11" for r in enterprise_rows
    )
    assert all("thresholds" in r.fields for r in enterprise_rows)


def test_kpi_cli_shows_rates_and_reasons(demo_run: dict[str, Any]) -> None:
    api = demo_run["stack"].api_url
    cli = demo_run["cli"]  # run while the live window covered the scenario
    table = cli["table"]
    assert table.returncode == 0, table.stderr
    assert "Key-process digitalization rate" in table.stdout
    assert "a1-grinding" in table.stdout and "MANUAL_MODE" in table.stdout

    as_json = json.loads(cli["json"].stdout)
    api_rates = httpx.get(f"{api}/api/v1/kpi", timeout=10).json()["rates"]
    enterprise = [
        r for r in as_json["kpi"]["rates"] if r["scope"] == "enterprise" and r["industry"] == "all"
    ]
    assert enterprise and enterprise[0]["scope_id"] in {r["scope_id"] for r in api_rates}

    detail = cli["pressfit"]
    assert (
        detail.returncode == 0 and "press_force" in detail.stdout and "OVERRIDDEN" in detail.stdout
    )

    # The offline test bench: its edge says now which signals never arrived, and where.
    testing = cli["testing"]
    assert testing.returncode == 0 and "LOW_COVERAGE" in testing.stdout
    told = [line for line in testing.stdout.splitlines() if line.startswith("edge now: ")]
    assert told and all("nothing arrived" in line for line in told), testing.stdout
    assert any("topic devices/plant-a/a2-testing/" in line for line in told), told

    unknown = kpi_cli("process", "no-such-process", "--api", api)
    assert unknown.returncode == 4 and "no key process 'no-such-process'" in unknown.stderr
    unreachable = kpi_cli("--api", "http://127.0.0.1:9")
    assert unreachable.returncode == 3 and "cannot reach the collector API" in unreachable.stderr
