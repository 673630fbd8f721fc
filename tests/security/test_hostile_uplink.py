"""Hand-crafted hostile uplink batches: each rule and limit of docs/hostile-input.md,
collector side. Pure logic (decoder, resolver, the pipeline's submit path): no server;
the writer is never started, so what was accepted is read from the pipeline's queue."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.ingest.consumer import UplinkConsumer
from collector.ingest.pipeline import IngestPipeline
from collector.ingest.resolve import LimitExceeded, resolve_batch
from collector.storage.lineprotocol import sample_line
from collector.storage.settings import InfluxSettings
from collector.storage.writer import make_writer
from common.endpoints import parse_broker_url
from common.limits import UplinkLimits
from common.register_loader import load_register
from common.topics import EdgeTopic, edge_topic
from common.wire import EdgeState, decode_batch

REGISTER = load_register(Path(__file__).parents[2] / "examples" / "demo" / "register.yaml")
REGISTERS = {REGISTER.enterprise_id: REGISTER}
E = REGISTER.enterprise_id
NOW = 1_795_000_000_000_000_000
GOOD = ("a1-turning", "spindle_speed")


def topic(plant: str = "plant-a", edge: str = "edge-plant-a") -> EdgeTopic:
    return EdgeTopic(E, plant, edge, "samples")


def topic_name(t: EdgeTopic) -> str:
    return edge_topic("plantkpi", t.enterprise, t.plant, t.edge, "samples")


def batch_json(
    samples: list[tuple[str, str, str, str]],
    *,
    seq: int = 1,
    edge: str = "edge-plant-a",
    liveness: str = "[]",
) -> bytes:
    """Samples as raw JSON text (process, signal, ts, value): hostile tokens stay as written."""
    cols: dict[str, list[str]] = {
        "process": [],
        "signal": [],
        "ts": [],
        "value": [],
        "status": [],
        "recv": [],
    }
    for process, signal, ts, value in samples:
        cols["process"].append(json.dumps(process))
        cols["signal"].append(json.dumps(signal))
        cols["ts"].append(ts)
        cols["value"].append(value)
        cols["status"].append("0")
        cols["recv"].append(str(NOW))
    columns = ",".join(f'"{k}":[{",".join(v)}]' for k, v in cols.items())
    n = len(samples)
    return (
        f'{{"schema":1,"edge":"{edge}","enterprise":"{E}","plant":"plant-a",'
        f'"register_version":"v","boot":1,"seq":{seq},"sent":{NOW},'
        f'"samples":{{{columns},"server_ts":[{",".join(["null"] * n)}]}},'
        f'"liveness":{liveness}}}'
    ).encode()


@pytest.mark.parametrize(
    ("value", "ts", "rule", "reason"),
    [
        ("NaN", str(NOW), "nonfinite", "cannot be stored"),
        ("Infinity", str(NOW), "nonfinite", "cannot be stored"),
        ("-Infinity", str(NOW), "nonfinite", "cannot be stored"),
        (str(2**63), str(NOW), "int_range", "does not fit in int64"),
        ("1" + "0" * 40, str(NOW), "int_range", "does not fit in int64"),
        (json.dumps("x" * 1025), str(NOW), "string_length", "longer than the limit of 1024"),
        ("1.5", "-1", "ts_before_1970", "before 1970"),
        ("1.5", str(NOW + 3601 * 10**9), "ts_future", "ahead of the receive time"),
        ("1.5", str(2**70), "ts_future", "ahead of the receive time"),
    ],
)
def test_hostile_sample_is_rejected_alone_by_rule(
    value: str, ts: str, rule: str, reason: str
) -> None:
    payload = batch_json(
        [(*GOOD, str(NOW), "1.0"), (*GOOD, ts, value), (*GOOD, str(NOW + 1), "2.0")]
    )
    resolved = resolve_batch(decode_batch(payload, "t"), topic(), REGISTERS, now_ns=NOW)
    assert [s.value for s in resolved.samples] == [1.0, 2.0]
    assert resolved.rejected_by_rule == {rule: 1}
    assert (
        reason in resolved.rejections[0]
        and "sample 1: a1-turning/spindle_speed" in (resolved.rejections[0])
    )
    for sample in resolved.samples:
        sample_line(sample)


def test_values_at_the_edges_of_the_rules_are_kept() -> None:
    values = [str(2**63 - 1), str(-(2**63)), "5e-324", "-0.0", json.dumps("é\x00\t" * 341)]
    payload = batch_json([(*GOOD, str(NOW), v) for v in values] + [(*GOOD, "0", "1")])
    resolved = resolve_batch(decode_batch(payload, "t"), topic(), REGISTERS, now_ns=NOW)
    assert resolved.rejected_samples == 0
    assert [s.value for s in resolved.samples][:4] == [2**63 - 1, -(2**63), 5e-324, -0.0]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff" + batch_json([]), "Invalid JSON"),
        (batch_json([]).replace(b'"edge-plant-a"', b'"\\ud800"'), "Invalid JSON"),
        (b"[" * 100_000, "recursion limit exceeded"),
        (batch_json([(*GOOD, str(NOW), "9" * 5000)]), "number out of range"),
        (batch_json([(*GOOD, "1.5", "1")]), "samples.ts.0: Input should be a valid integer"),
        (batch_json([(*GOOD, "true", "1")]), "samples.ts.0"),
    ],
)
def test_malformed_structure_refuses_the_batch_by_name(payload: bytes, reason: str) -> None:
    from common.wire import WireError

    with pytest.raises(WireError, match=reason) as caught:
        decode_batch(payload, "plantkpi/v1/x/y/z/samples")
    assert "plantkpi/v1/x/y/z/samples" in str(caught.value)


def test_duplicate_keys_take_the_last_and_cannot_spoof_the_sender() -> None:
    payload = batch_json([]).replace(b'"edge":"edge-plant-a"', b'"edge":"edge-plant-a","edge":"x"')
    batch = decode_batch(payload, "t")
    assert batch.edge == "x"  # jiter, like Python's json: the last one wins
    with pytest.raises(ValueError, match="arrived on"):
        resolve_batch(batch, topic(), REGISTERS, now_ns=NOW)


def test_liveness_rules() -> None:
    events = [
        {"source": "_edge", "ts": NOW, "up": True, "detail": "d" * 5000},
        {"source": "_edge", "ts": -5, "up": False, "detail": ""},
        {"source": "_edge", "ts": NOW + 10**15, "up": False, "detail": ""},
    ]
    payload = batch_json([], liveness=json.dumps(events))
    resolved = resolve_batch(decode_batch(payload, "t"), topic(), REGISTERS, now_ns=NOW)
    assert len(resolved.liveness) == 1
    assert resolved.liveness[0].detail.startswith("d" * 1024 + "… (cut at 1024)")
    assert any("before 1970" in r for r in resolved.rejections)
    assert any("ahead" in r for r in resolved.rejections)


def test_count_limits_refuse_the_whole_batch() -> None:
    payload = batch_json([(*GOOD, str(NOW), "1")] * 3)
    with pytest.raises(LimitExceeded, match="3 samples exceed the limit of 2") as caught:
        resolve_batch(
            decode_batch(payload, "t"), topic(), REGISTERS, limits=UplinkLimits(batch_samples=2)
        )
    assert caught.value.limit == "batch_samples"


# -- the pipeline: counted, logged, dead-lettered, acknowledged --------------------------


class Letters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, str]] = []

    async def __call__(self, t: EdgeTopic | None, name: str, payload: bytes, reason: str) -> None:
        self.sent.append((name, payload, reason))


def pipeline(letters: Letters, **limits: Any) -> IngestPipeline:
    writer = make_writer(InfluxSettings(url="http://127.0.0.1:1", database="never-written"))
    return IngestPipeline(
        writer, REGISTERS, letters, limits=UplinkLimits(**limits), clock=lambda: NOW
    )


async def submit(p: IngestPipeline, payload: bytes, t: EdgeTopic | None = None) -> list[str]:
    acks: list[str] = []
    t = t or topic()
    await p.submit_batch(t, topic_name(t), payload, on_written=lambda: acks.append("ack"))
    return acks


async def test_oversize_message_is_acked_dead_lettered_cut_and_counted() -> None:
    letters = Letters()
    p = pipeline(letters, payload_bytes=100_000)
    assert await submit(p, batch_json([(*GOOD, str(NOW), "1.0")], seq=1)) == []  # queued
    big = batch_json([(*GOOD, str(NOW), json.dumps("x" * 1000))] * 150, seq=2)
    assert len(big) > 100_000
    assert await submit(p, big) == ["ack"]
    assert p.stats.limit_violations == {"payload_bytes": 1}
    assert p.stats.batches_malformed == 1
    name, kept, reason = letters.sent[0]
    assert name == topic_name(topic()) and kept == big  # the envelope is bounded, not this
    assert f"{len(big)} bytes exceed the limit of 100000" in reason
    # What was accepted before is still queued for writing, untouched.
    assert p.queue.qsize() == 1 and p.queue.get_nowait().samples == 1


async def test_too_many_samples_is_acked_dead_lettered_and_counted() -> None:
    letters = Letters()
    p = pipeline(letters, batch_samples=10)
    assert await submit(p, batch_json([(*GOOD, str(NOW), "1")] * 11)) == ["ack"]
    assert p.stats.limit_violations == {"batch_samples": 1}
    assert "11 samples exceed the limit of 10" in letters.sent[0][2]
    big = batch_json([(*GOOD, str(NOW), "1")] * 11)
    assert letters.sent[0][1] == big  # kept whole: it can be replayed
    assert p.queue.qsize() == 0


async def test_rejections_by_rule_are_counted() -> None:
    p = pipeline(Letters())
    await submit(p, batch_json([(*GOOD, str(NOW), "NaN"), ("a1-turning", "nope", str(NOW), "1")]))
    assert p.stats.samples_rejected == 2
    assert p.stats.samples_rejected_by_rule == {"nonfinite": 1, "unknown_signal": 1}


async def test_a_flood_of_new_signal_ids_keeps_no_state() -> None:
    p = pipeline(Letters())
    ids = [f"sig-{i}-{'x' * 50}" for i in range(20_000)]
    payload = batch_json([("a1-turning", s, str(NOW), "1") for s in ids])
    for _ in range(3):
        await submit(p, payload)
    assert p.stats.samples_rejected == 3 * 20_000
    assert p.stats.samples_rejected_by_rule == {"unknown_signal": 60_000}
    assert list(p.stats.edges) == [f"{E}/plant-a/edge-plant-a"]
    assert sys.getsizeof(p.stats.__dict__) < 10_000 and p.queue.qsize() == 0


async def test_edges_beyond_the_limit_are_ingested_but_not_tracked() -> None:
    p = pipeline(Letters(), edges=2)
    for i in range(5):
        edge = f"edge-{i}"
        await submit(p, batch_json([(*GOOD, str(NOW), "1")], edge=edge), topic(edge=edge))
    assert len(p.stats.edges) == 2
    assert p.stats.limit_violations == {"edges": 3}
    assert p.queue.qsize() == 5  # their samples are valid for the plant: all stored


async def test_edge_state_for_an_unknown_plant_is_ignored_and_acked() -> None:
    p = pipeline(Letters())
    acks: list[str] = []
    for i in range(100):
        await p.submit_edge_state(
            EdgeTopic(E, f"plant-{i}", "e", "state"),
            EdgeState(edge="e", online=True, boot=1),
            lambda: acks.append("ack"),
        )
    assert acks == ["ack"] * 100
    assert p.stats.states_rejected == 100 and p.stats.edges == {} and p.queue.qsize() == 0
    p.edges.health_arrived(EdgeTopic("nobody", "nowhere", "e", "health"), {"x": 1})
    assert p.stats.edges == {}


async def test_oversize_or_deeply_nested_health_and_state_are_ignored_and_acked() -> None:
    p = pipeline(Letters(), report_bytes=4096)
    consumer = UplinkConsumer(
        p, parse_broker_url("mqtt://127.0.0.1:1"), prefix="plantkpi", client_id="hostile"
    )
    acks: list[str] = []
    for kind in ("health", "state"):
        name = edge_topic("plantkpi", E, "plant-a", "edge-plant-a", kind)
        await consumer.handle(name, b"{" + b" " * 5000 + b"}", functools.partial(acks.append, kind))
    nested = b"[" * 100_000 + b"]" * 100_000  # under no size limit: the parser must cope
    health = edge_topic("plantkpi", E, "plant-a", "edge-plant-a", "health")
    p.limits = UplinkLimits(report_bytes=1024**2)
    await consumer.handle(health, nested, lambda: acks.append("nested"))
    assert acks == ["health", "state", "nested"]
    assert p.stats.limit_violations == {"report_bytes": 2}
    assert all(not seen.health for seen in p.stats.edges.values())


async def test_rejected_samples_are_named_at_a_bounded_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A PLC with a wrong clock has every sample rejected: the log names a few per minute,
    then says how many more there were; the counters have them all."""
    p = pipeline(Letters())
    now = [0.0]
    p.rejection_log.clock = lambda: now[0]
    future = str(NOW + 7200 * 10**9)
    with caplog.at_level("WARNING", logger="collector.ingest.paced_log"):
        for _ in range(50):
            await submit(p, batch_json([(*GOOD, future, "1")]))
        named = caplog.text.count("rejected sample:")
        now[0] = 61.0
        await submit(p, batch_json([(*GOOD, future, "1")]))
    assert p.stats.samples_rejected_by_rule == {"ts_future": 51}
    assert named == 20
    assert "30 more rejected samples were not logged in the last minute" in caplog.text
    assert caplog.text.count("rejected sample:") == 21  # a new minute names again
