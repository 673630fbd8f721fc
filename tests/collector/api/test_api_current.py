"""The current window: every scope with its industry split, counts and Pareto; one scope;
declared vs observed; a process with its evidence, register version and thresholds."""

from __future__ import annotations

import pytest

from tests.collector.api.conftest import Apps, Plant, client

pytestmark = pytest.mark.integration


async def test_every_scope_carries_industry_split_counts_and_pareto(
    plant: Plant, make_app: Apps
) -> None:
    async with client(make_app()) as api:
        body = (await api.get("/api/v1/kpi")).json()
    latest = plant.live[-1]  # window 09:00–10:00: p2 Uncertain all along, p3 never reports
    assert body["window"] == latest.window.to_dict()
    by_key = {(r["scope"], r["scope_id"], r["industry"]): r for r in body["rates"]}
    scopes = {(scope, scope_id) for scope, scope_id, _ in by_key}
    assert scopes == {
        ("line", "l1"),
        ("line", "l2"),
        ("plant", "pl"),
        ("enterprise", "ent-a"),
        ("region_official", "Shanxi"),
        ("region_pooled", "Shanxi"),
    }
    for scope, scope_id in scopes:
        assert {i for s, sid, i in by_key if (s, sid) == (scope, scope_id)} == {
            "all",
            "discrete",
            "process",
        }
    ent = by_key[("enterprise", "ent-a", "all")]
    assert (ent["numerator"], ent["denominator"], ent["not_scheduled"]) == (1, 3, 0)
    assert ent["rate"] == pytest.approx(1 / 3)
    assert ent["reasons"]["UNCERTAIN"] == 1 and "LOW_COVERAGE" in ent["reasons"]
    assert list(ent["reasons"].values()) == sorted(ent["reasons"].values(), reverse=True)
    assert by_key[("enterprise", "ent-a", "process")]["numerator"] == 0
    assert by_key[("enterprise", "ent-a", "discrete")]["numerator"] == 1
    assert by_key[("line", "l1", "all")]["plant_id"] == "pl"


async def test_declared_beside_observed(make_app: Apps) -> None:
    async with client(make_app()) as api:
        rates = (await api.get("/api/v1/kpi", params={"scope": "enterprise"})).json()["rates"]
        enterprises = (await api.get("/api/v1/enterprises")).json()["enterprises"]
    ent_all = next(r for r in rates if r["industry"] == "all")
    assert ent_all["declared_rate"] == 0.8
    assert ent_all["observed_minus_declared"] == pytest.approx(1 / 3 - 0.8)
    assert all(r["declared_rate"] is None for r in rates if r["industry"] != "all")
    assert enterprises == [
        {
            "enterprise_id": "ent-a",
            "name": "Enterprise A",
            "region": "Shanxi",
            "above_designated_size": True,
            "register_version": "api-test-1",
            "declared_rate": 0.8,
            "observed_rate": pytest.approx(1 / 3),
            "observed_minus_declared": pytest.approx(1 / 3 - 0.8),
            "numerator": 1,
            "denominator": 3,
            "not_scheduled": 0,
            "provisional": 0,
            "reasons": ent_all["reasons"],
        }
    ]


async def test_one_scope_and_unknown_ones(make_app: Apps) -> None:
    async with client(make_app()) as api:
        line = await api.get("/api/v1/scopes/line/l1")
        unknown_kind = await api.get("/api/v1/scopes/galaxy/l1")
        unknown_id = await api.get("/api/v1/scopes/line/l9")
    assert line.status_code == 200
    assert [(r["industry"], r["numerator"], r["denominator"]) for r in line.json()["rates"]] == [
        ("all", 1, 2),
        ("discrete", 1, 1),
        ("process", 0, 1),
    ]
    assert unknown_kind.status_code == 404
    assert unknown_kind.json()["error"] == "unknown_scope"
    assert "'galaxy'" in unknown_kind.json()["detail"] and unknown_kind.json()["field"] == "scope"
    assert unknown_id.status_code == 404
    assert unknown_id.json() == {
        "error": "unknown_scope",
        "detail": "no line 'l9' in the loaded registers (known: l1, l2)",
        "field": "scope_id",
        "message": "That line, plant, enterprise or region is not in the loaded registers.",
    }


async def test_process_detail_has_evidence_register_version_and_thresholds(
    plant: Plant, make_app: Apps
) -> None:
    async with client(make_app()) as api:
        p2 = (await api.get("/api/v1/processes/p2")).json()
    assert p2["status"] == "NOT_DIGITALIZED" and "UNCERTAIN" in p2["reasons"]
    assert p2["register_version"] == "api-test-1"
    assert p2["register_digest"] == plant.register.digest
    assert p2["thresholds"] == plant.live[-1].evaluations[0].thresholds
    temp = next(s for s in p2["signals"] if s["signal_id"] == "temp")
    assert temp["uncertain"] == pytest.approx(1.0) and temp["good"] == 0.0
    assert {"longest_gap_s", "bad", "overridden", "unknown", "samples"} <= set(temp)
