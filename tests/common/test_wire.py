"""The uplink batch schema: round trip, and malformed batches named with their fields."""

from __future__ import annotations

import pytest

from common.topics import edge_topic, parse_edge_topic
from common.wire import Sample, SampleColumns, UplinkBatch, WireError, decode_batch


def batch() -> UplinkBatch:
    cols = SampleColumns()
    cols.append(Sample("a1-turning", "state", 10, "RUNNING", 0, 11))
    cols.append(Sample("a1-turning", "spindle_speed", 20, 1200.5, 0x40000000, 21, 19))
    return UplinkBatch(
        edge="edge-a",
        enterprise="e",
        plant="p",
        register_version="v1",
        boot=1,
        seq=7,
        sent=30,
        samples=cols,
    )


def test_round_trip_keeps_types() -> None:
    decoded = decode_batch(batch().encode(), "t")
    assert decoded == batch()
    assert decoded.samples.value == ["RUNNING", 1200.5]
    assert decoded.samples.server_ts == [None, 19]


@pytest.mark.parametrize(
    ("payload", "culprit"),
    [
        (b"{", "malformed batch on plantkpi/v1/e/p/edge-a/samples"),
        (b'{"edge": "x"}', "enterprise"),
        (batch().encode().replace(b'"ts":[10,20]', b'"ts":[10]'), "differ in length"),
        (batch().encode().replace(b'"seq":7', b'"seq":-1'), "seq"),
        (batch().encode().replace(b'"schema":1', b'"schema":2'), "schema"),
        (
            batch().encode().replace(b'"status":[0,1073741824]', b'"status":[0,99999999999]'),
            "status",
        ),
        (batch().encode().replace(b'"edge":"edge-a"', b'"edge":"edge-a","extra":1'), "extra"),
    ],
)
def test_malformed_batches_name_topic_and_field(payload: bytes, culprit: str) -> None:
    with pytest.raises(WireError) as excinfo:
        decode_batch(payload, "plantkpi/v1/e/p/edge-a/samples")
    assert culprit in str(excinfo.value)
    assert "plantkpi/v1/e/p/edge-a/samples" in str(excinfo.value)


def test_topics_round_trip_and_reject_foreign_topics() -> None:
    topic = edge_topic("plantkpi", "e", "p", "edge-a", "samples")
    parsed = parse_edge_topic("plantkpi", topic)
    assert (parsed.enterprise, parsed.plant, parsed.edge, parsed.kind) == (
        "e",
        "p",
        "edge-a",
        "samples",
    )
    for bad in ("plantkpi/v1/e/p/samples", "other/v1/e/p/x/samples", "plantkpi/v1/e/p/x/bogus"):
        with pytest.raises(ValueError, match="is not"):
            parse_edge_topic("plantkpi", bad)


def test_backfilled_samples_are_listed_by_index_and_live_batches_leave_the_field_out() -> None:
    live = batch()
    assert b'"backfill"' not in live.encode()  # a collector older than the field reads it
    samples = [
        Sample("p", "s", 10, 1.0, 0, 50),
        Sample("p", "s", 11, 2.0, 0, 50, None, True),
        Sample("p", "s", 12, 3.0, 0, 50, None, True),
    ]
    columns = SampleColumns.of(samples)
    assert columns.backfill == [1, 2]
    appended = SampleColumns()
    for sample in samples:
        appended.append(sample)
    assert appended.backfill == [1, 2]
    decoded = decode_batch(live.model_copy(update={"samples": columns}).encode(), "t")
    assert decoded.samples.backfill == [1, 2]


@pytest.mark.parametrize("indexes", [[2], [1, 1], [1, 0], [-1]])
def test_a_backfill_index_outside_the_samples_or_out_of_order_is_refused(
    indexes: list[int],
) -> None:
    payload = (
        batch()
        .encode()
        .replace(
            b'"server_ts":[null,19]',
            b'"server_ts":[null,19],"backfill":' + str(indexes).replace(" ", "").encode(),
        )
    )
    with pytest.raises(WireError, match="backfill"):
        decode_batch(payload, "t")
