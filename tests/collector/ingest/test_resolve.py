"""Batches are checked against the register: foreign samples are rejected by name, the rest kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.ingest.resolve import BatchRejected, resolve_batch
from common.limits import timestamp_problem, value_problem
from common.register_loader import load_register
from common.topics import EdgeTopic
from common.wire import LivenessEvent, Sample, SampleColumns, UplinkBatch, Value
from tests.fuzz.profiles import fuzz

REGISTER = load_register(Path(__file__).parents[3] / "examples" / "demo" / "register.yaml")
REGISTERS = {REGISTER.enterprise_id: REGISTER}
E = REGISTER.enterprise_id
TOPIC = EdgeTopic(E, "plant-a", "edge-plant-a", "samples")


def make(samples: list[tuple[str, str]], **overrides: object) -> UplinkBatch:
    cols = SampleColumns()
    for i, (process, signal) in enumerate(samples):
        cols.append(Sample(process, signal, 100 + i, 1.0, 0, 200 + i))
    fields: dict[str, object] = {
        "edge": "edge-plant-a",
        "enterprise": E,
        "plant": "plant-a",
        "register_version": "v",
        "boot": 1,
        "seq": 3,
        "sent": 5,
        "samples": cols,
    }
    fields.update(overrides)
    return UplinkBatch.model_validate(fields)


def test_known_samples_resolve_to_their_line() -> None:
    resolved = resolve_batch(
        make([("a1-turning", "spindle_speed"), ("a2-screwing", "torque")]), TOPIC, REGISTERS
    )
    assert [(s.line, s.process, s.signal) for s in resolved.samples] == [
        ("a1", "a1-turning", "spindle_speed"),
        ("a2", "a2-screwing", "torque"),
    ]
    assert resolved.rejected_samples == 0


def test_unknown_and_foreign_signals_are_rejected_by_name_and_the_rest_kept() -> None:
    resolved = resolve_batch(
        make([("a1-turning", "nope"), ("b1-furnace", "temperature"), ("a1-turning", "feed_rate")]),
        TOPIC,
        REGISTERS,
    )
    assert [s.signal for s in resolved.samples] == ["feed_rate"]
    assert resolved.rejected_samples == 2
    assert "a1-turning/nope: unknown signal" in resolved.rejections[0]
    assert "b1-furnace/temperature: belongs to plant plant-b" in resolved.rejections[1]
    assert "edge edge-plant-a batch 3" in resolved.rejections[0]


def test_batch_claiming_another_plant_than_its_topic_is_rejected() -> None:
    with pytest.raises(BatchRejected, match="arrived on"):
        resolve_batch(make([], plant="plant-b"), TOPIC, REGISTERS)


def test_unknown_enterprise_is_rejected() -> None:
    topic = EdgeTopic("other", "plant-a", "edge-plant-a", "samples")
    with pytest.raises(BatchRejected, match="enterprise 'other'"):
        resolve_batch(make([], enterprise="other"), topic, REGISTERS)


def test_liveness_for_unknown_source_is_rejected() -> None:
    batch = make(
        [],
        liveness=[
            LivenessEvent(source="ghost", ts=1, up=True),
            LivenessEvent(source="a1-opcua", ts=2, up=True),
        ],
    )
    resolved = resolve_batch(batch, TOPIC, REGISTERS)
    assert [e.source for e in resolved.liveness] == ["a1-opcua"]
    assert "ghost" in resolved.rejections[0]


NOW = 1_795_000_000_000_000_000
_ints = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([-(2**63), 2**63 - 1, 2**63, -(2**63) - 1, -1, 0, NOW, NOW + 10**10]),
    st.integers(),
)
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), _ints, st.booleans(), st.text(), st.none()
)
FOREIGN = next(ref for ref in REGISTER.signals() if ref.plant.id != "plant-a")
_signals = st.sampled_from(
    [
        ("a1-turning", "spindle_speed"),
        ("a2-screwing", "torque"),
        ("a1-turning", "nope"),
        (FOREIGN.process.id, FOREIGN.signal.id),
    ]
)


@given(st.lists(st.tuples(_signals, _ints, _values, _ints, st.none() | _ints), max_size=10))
@fuzz
def test_the_common_case_shortcut_accepts_exactly_what_the_rules_accept(
    rows: list[tuple[tuple[str, str], int, Value, int, int | None]],
) -> None:
    cols = SampleColumns.model_construct(
        process=[key[0] for key, *_ in rows],
        signal=[key[1] for key, *_ in rows],
        ts=[ts for _, ts, *_ in rows],
        value=[value for _, _, value, *_ in rows],
        status=[0] * len(rows),
        recv=[recv for *_, recv, _ in rows],
        server_ts=[server for *_, server in rows],
    )
    resolved = resolve_batch(
        make([]).model_copy(update={"samples": cols}), TOPIC, REGISTERS, now_ns=NOW
    )
    by_rules = []
    for i, ((process, signal), ts, value, recv, server) in enumerate(rows):
        ref = REGISTER.signal(process, signal)
        if (
            ref is not None
            and ref.plant.id == "plant-a"
            and value_problem(value) is None
            and timestamp_problem(ts, NOW) is None
            and all(t is None or -(2**63) <= t <= 2**63 - 1 for t in (recv, server))
        ):
            by_rules.append(i)
    assert resolved.rows == by_rules
    assert resolved.rejected_samples == len(rows) - len(by_rules)
    assert [s.value for s in resolved.samples] == [rows[i][2] for i in by_rules]
