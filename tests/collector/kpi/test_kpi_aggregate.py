"""Aggregation arithmetic: line/plant/enterprise rates, region official vs pooled,
industry split, None rates, reason Pareto, and refusal to mix windows or thresholds."""

from __future__ import annotations

import json

import pytest

from collector.kpi import (
    Evaluation,
    ProcessResult,
    Reason,
    ScopeRate,
    Status,
    Thresholds,
    Window,
    aggregate,
)

WINDOW = Window(1_000, 2_000)
FP = Thresholds().fingerprint()
D, N, X = Status.DIGITALIZED, Status.NOT_DIGITALIZED, Status.NOT_SCHEDULED


def result(
    enterprise: str,
    plant: str,
    line: str,
    process_id: str,
    industry: str,
    status: Status,
    *reasons: Reason,
    region: str = "Shanxi",
) -> ProcessResult:
    return ProcessResult(
        enterprise_id=enterprise,
        region=region,
        plant_id=plant,
        line_id=line,
        process_id=process_id,
        industry=industry,
        status=status,
        reasons=tuple(sorted(reasons)),
        signals=(),
        manual_share=None,
        scheduled_s=0.0 if status is X else 1e-6,
        unbound_signals=(),
        manual_signals=(),
        register_version="v1",
        register_digest="0" * 64,
        thresholds=FP,
        window=WINDOW,
    )


def evaluation(
    enterprise: str,
    processes: list[ProcessResult],
    region: str = "Shanxi",
    window: Window = WINDOW,
    thresholds: str = FP,
    extra_lines: tuple[tuple[str, str], ...] = (),
) -> Evaluation:
    lines = tuple(dict.fromkeys((p.plant_id, p.line_id) for p in processes)) + extra_lines
    return Evaluation(
        enterprise_id=enterprise,
        region=region,
        above_designated_size=True,
        register_version="v1",
        register_digest="0" * 64,
        thresholds=thresholds,
        window=window,
        plants=tuple(dict.fromkeys(plant for plant, _ in lines)),
        lines=lines,
        processes=tuple(processes),
    )


def pick(rates: list[ScopeRate], scope: str, scope_id: str, industry: str = "all") -> ScopeRate:
    found = [r for r in rates if (r.scope, r.scope_id, r.industry) == (scope, scope_id, industry)]
    assert len(found) == 1, (scope, scope_id, industry)
    return found[0]


# Enterprise "small": one discrete process, digitalized → rate 1.0.
SMALL = evaluation("small", [result("small", "s-pl", "s-l1", "s1", "discrete", D)])
# Enterprise "big": 4 key processes in scope (1 digitalized) + 1 not scheduled → rate 0.25.
BIG = evaluation(
    "big",
    [
        result("big", "b-pl1", "l1", "b1", "discrete", D),
        result("big", "b-pl1", "l1", "b2", "discrete", N, Reason.OVERRIDDEN),
        result("big", "b-pl1", "l2", "b3", "process", N, Reason.LOW_COVERAGE, Reason.STALE_DATA),
        result("big", "b-pl2", "l1", "b4", "process", N, Reason.OVERRIDDEN),
        result("big", "b-pl2", "l9", "b5", "process", X),
    ],
)


def test_counts_and_rates_per_scope() -> None:
    rates = [r for r in aggregate([BIG]) if r.industry == "all"]
    table = {(r.scope, r.plant_id, r.scope_id): (r.numerator, r.denominator, r.rate) for r in rates}
    assert table == {
        ("line", "b-pl1", "l1"): (1, 2, 0.5),
        ("line", "b-pl1", "l2"): (0, 1, 0.0),
        ("line", "b-pl2", "l1"): (0, 1, 0.0),
        ("line", "b-pl2", "l9"): (0, 0, None),  # only a not-scheduled process
        ("plant", "b-pl1", "b-pl1"): (1, 3, 1 / 3),
        ("plant", "b-pl2", "b-pl2"): (0, 1, 0.0),
        ("enterprise", None, "big"): (1, 4, 0.25),
        ("region_official", None, "Shanxi"): (1, 4, 0.25),
        ("region_pooled", None, "Shanxi"): (1, 4, 0.25),
    }
    assert {(r.scope, r.plant_id, r.scope_id): r.not_scheduled for r in rates}[
        ("line", "b-pl2", "l9")
    ] == 1
    enterprise = next(r for r in rates if r.scope == "enterprise")
    assert enterprise.not_scheduled == 1 and enterprise.enterprise_id == "big"
    assert enterprise.enterprises == 1
    empty_line = next(r for r in rates if r.scope == "line" and r.scope_id == "l9")
    assert empty_line.enterprises == 0


def test_reason_pareto_counts_processes_most_frequent_first() -> None:
    enterprise = next(r for r in aggregate([BIG]) if r.scope == "enterprise")
    assert enterprise.reasons == {"OVERRIDDEN": 2, "LOW_COVERAGE": 1, "STALE_DATA": 1}
    assert list(enterprise.reasons) == ["OVERRIDDEN", "LOW_COVERAGE", "STALE_DATA"]


def test_region_official_is_the_unweighted_mean_pooled_the_ratio_of_sums() -> None:
    rates = aggregate([BIG, SMALL])
    official = pick(rates, "region_official", "Shanxi")
    pooled = pick(rates, "region_pooled", "Shanxi")
    assert official.rate == pytest.approx((1.0 + 0.25) / 2)  # 0.625
    assert pooled.rate == pytest.approx(2 / 5)
    for region in (official, pooled):
        assert (region.numerator, region.denominator, region.not_scheduled) == (2, 5, 1)
        assert region.enterprises == 2
        assert region.reasons == {"OVERRIDDEN": 2, "LOW_COVERAGE": 1, "STALE_DATA": 1}
        assert region.enterprise_id is None


def test_industry_split() -> None:
    rates = aggregate([BIG, SMALL])
    # big: discrete 1/2, process 0/2 (+1 not scheduled); small: discrete 1/1, no process.
    assert pick(rates, "enterprise", "big", "discrete").rate == 0.5
    assert pick(rates, "enterprise", "big", "process").rate == 0.0
    assert pick(rates, "enterprise", "big", "process").not_scheduled == 1
    assert pick(rates, "enterprise", "small", "process").rate is None
    assert pick(rates, "region_official", "Shanxi", "discrete").rate == pytest.approx(0.75)
    assert pick(rates, "region_pooled", "Shanxi", "discrete").rate == pytest.approx(2 / 3)
    # Only "big" has process-industry processes: the official mean is over it alone.
    process_official = pick(rates, "region_official", "Shanxi", "process")
    assert process_official.rate == 0.0 and process_official.enterprises == 1
    assert pick(rates, "region_official", "Shanxi", "discrete").enterprises == 2


def test_region_without_any_rate_is_none() -> None:
    idle = evaluation("idle", [result("idle", "p", "l", "x", "discrete", X)], region="Hebei")
    rates = aggregate([idle, SMALL])
    for scope in ("region_official", "region_pooled"):
        hebei = pick(rates, scope, "Hebei")
        assert hebei.rate is None and hebei.denominator == 0 and hebei.not_scheduled == 1
        assert hebei.enterprises == 0
    assert pick(rates, "region_official", "Shanxi").rate == 1.0  # regions kept apart


def test_a_line_without_key_processes_still_gets_a_rate() -> None:
    ev = evaluation("small", list(SMALL.processes), extra_lines=(("s-pl", "empty"),))
    line = pick(aggregate([ev]), "line", "empty")
    assert (line.numerator, line.denominator, line.rate, line.reasons) == (0, 0, None, {})


def test_output_order_and_shape_are_deterministic() -> None:
    rates = aggregate([SMALL, BIG])
    assert rates == aggregate([BIG, SMALL])
    scopes = [(r.scope, r.scope_id) for r in rates if r.industry == "all"]
    assert scopes == [
        ("line", "l1"),
        ("line", "l2"),
        ("line", "l1"),
        ("line", "l9"),
        ("plant", "b-pl1"),
        ("plant", "b-pl2"),
        ("enterprise", "big"),
        ("line", "s-l1"),
        ("plant", "s-pl"),
        ("enterprise", "small"),
        ("region_official", "Shanxi"),
        ("region_pooled", "Shanxi"),
    ]
    assert [r.industry for r in rates[:3]] == ["all", "discrete", "process"]
    assert all(r.window == WINDOW and r.thresholds == FP for r in rates)
    data = json.loads(json.dumps([r.to_dict() for r in rates]))
    assert data[0]["window"] == {"start_ns": 1_000, "end_ns": 2_000}
    assert set(data[0]) == {
        "scope",
        "scope_id",
        "industry",
        "numerator",
        "denominator",
        "not_scheduled",
        "provisional",
        "rate",
        "reasons",
        "enterprises",
        "window",
        "thresholds",
        "enterprise_id",
        "plant_id",
    }


def test_empty_input() -> None:
    assert aggregate([]) == []


def test_refuses_to_mix_windows_thresholds_or_count_an_enterprise_twice() -> None:
    with pytest.raises(ValueError, match="'small' is evaluated twice"):
        aggregate([SMALL, SMALL])
    other_window = evaluation("w", [], window=Window(2_000, 3_000))
    with pytest.raises(ValueError, match="one window only"):
        aggregate([SMALL, other_window])
    other_thresholds = evaluation("t", [], thresholds=Thresholds(coverage_min=0.5).fingerprint())
    with pytest.raises(ValueError, match="one set of thresholds only"):
        aggregate([SMALL, other_thresholds])
