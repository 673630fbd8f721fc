"""The API's response models against what the domain writes: every key of a process, a
rate, an evaluation and a recomputation is a field of its model, with its value kept, so
the OpenAPI document describes the whole answer and the CLI can read all of it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from collector.api.models import (
    ConsumerStatsOut,
    EdgeOut,
    EnterpriseRateOut,
    EvaluationOut,
    KpiOut,
    ProcessOut,
    RateOut,
    RecomputeOut,
    SampleAgesOut,
)
from collector.ingest.ages import SampleAges
from collector.ingest.consumer import ConsumerStats
from collector.ingest.edges import EdgeSeen
from collector.kpi import EDGE_SOURCE, SourceEvent, aggregate, evaluate
from collector.kpi.service import KpiResult
from tests.collector.kpi.kpi_testkit import DEFAULTS, at, on_change_state, series, window
from tests.registers import process, register


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _result() -> KpiResult:
    """One window with an outage of the plant's edge and reasons, per process and signal."""
    reg = register([process("p1"), process("p2")])
    samples = {
        ("p1", "state"): on_change_state(),
        ("p1", "speed"): series(-1, 100),
        ("p2", "state"): on_change_state(),
        ("p2", "speed"): series(-1, 20),
    }
    lost = SourceEvent(at(20), False, "connection lost: transport closed", at(-3600), 1)
    evaluation = evaluate(
        reg, window(), samples, {("pl", EDGE_SOURCE): [lost]}, DEFAULTS, {"pl": at(200)}
    )
    return KpiResult(window(), at(61), (evaluation,), tuple(aggregate([evaluation])))


def test_a_process_keeps_every_key_and_value_through_its_model() -> None:
    result = _result()
    processes = [p for e in result.evaluations for p in e.processes]
    assert any(p.outages for p in processes) and any(p.reasons for p in processes)
    assert any(s.reasons for p in processes for s in p.signals)
    for p in processes:
        written = _json(p.to_dict())
        assert ProcessOut.model_validate(written).model_dump(mode="json") == written


def test_rates_evaluations_and_a_recomputation_keep_every_key() -> None:
    result = _result()
    written = _json(result.to_dict())
    assert RecomputeOut.model_validate(written).model_dump(mode="json") == written
    for evaluation in written["evaluations"]:
        assert EvaluationOut.model_validate(evaluation).model_dump(mode="json") == evaluation
    kpi = {"window": written["window"], "computed_at_ns": 1, "rates": written["rates"]}
    assert KpiOut.model_validate(kpi).model_dump(mode="json") == kpi


def test_an_enterprise_rate_keeps_its_declared_rate_and_other_rates_get_none() -> None:
    rate = _json(_result().rates[0].to_dict())
    declared = {**rate, "declared_rate": 0.6, "observed_minus_declared": 0.15}
    kpi = KpiOut.model_validate(
        {"window": rate["window"], "computed_at_ns": 1, "rates": [rate, declared]}
    )
    plain, enterprise = kpi.rates
    assert type(plain) is RateOut and type(enterprise) is EnterpriseRateOut
    dumped = kpi.model_dump(mode="json")["rates"]
    assert dumped == [rate, declared], "no declared keys added to a plain rate, none dropped"


def test_the_ops_models_name_every_field_of_what_they_report() -> None:
    def names(cls: Any) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert set(EdgeOut.model_fields) == names(EdgeSeen) | {"seconds_since_seen"}
    assert set(ConsumerStatsOut.model_fields) == names(ConsumerStats)
    assert set(SampleAgesOut.model_fields) == set(SampleAges().summary())
