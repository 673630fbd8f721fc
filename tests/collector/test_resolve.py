"""Batches are checked against the register: foreign samples are rejected by name, the rest kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.ingest.resolve import BatchRejected, resolve_batch
from common.register_loader import load_register
from common.topics import EdgeTopic
from common.wire import LivenessEvent, SampleColumns, UplinkBatch

REGISTER = load_register(Path(__file__).parents[2] / "examples" / "demo" / "register.yaml")
REGISTERS = {REGISTER.enterprise_id: REGISTER}
E = REGISTER.enterprise_id
TOPIC = EdgeTopic(E, "plant-a", "edge-plant-a", "samples")


def make(samples: list[tuple[str, str]], **overrides: object) -> UplinkBatch:
    cols = SampleColumns()
    for i, (process, signal) in enumerate(samples):
        cols.append(process, signal, 100 + i, 1.0, 0, 200 + i)
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


def test_sequence_numbers_count_gaps_and_redeliveries() -> None:
    from collector.ingest.pipeline import IngestPipeline

    pipeline = IngestPipeline(writer=None, registers=REGISTERS, dead_letter=None)  # type: ignore[arg-type]
    for boot, seq in [(1, 0), (1, 1), (1, 4), (1, 2), (1, 4), (2, 0), (2, 1)]:
        pipeline._track_sequence(TOPIC, boot, seq)
    seen = pipeline.edge(TOPIC)
    assert (seen.boot, seen.last_seq) == (2, 1)
    assert seen.seq_gaps == 2  # 2 and 3 were skipped when 4 came
    assert seen.redeliveries == 2  # the late 2 and the repeated 4; a new boot starts afresh
