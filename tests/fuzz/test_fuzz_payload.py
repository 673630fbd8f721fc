"""Property: the device payload parser returns a storable sample or raises PayloadError.

Nothing else escapes it, its messages stay short, and what it accepts survives the edge's
own machinery downstream (the disk buffer's record encoding and the uplink encoding).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from common.limits import FUTURE_TOLERANCE_S, value_problem
from common.wire import Sample, UplinkBatch, decode_batch
from edge.buffer import records
from edge.sources.mqtt.payload import PayloadError, parse_payload
from tests.fuzz.profiles import fuzz
from tests.fuzz.strategies import deep_nesting, hostile_scalars, json_values, token_soup

RECV = 1_795_000_000_000_000_000
PATHS = st.sampled_from(["value", ".", "value.x", "x"])


def check(payload: bytes, path: str) -> None:
    try:
        ts, value, status = parse_payload(
            payload, path=path, timestamp_path="ts", quality_path="quality", recv_ns=RECV
        )
    except PayloadError as exc:
        assert len(str(exc)) < 400, "a rejection message must stay short"
        return
    assert value_problem(value) is None
    assert isinstance(ts, int) and 0 <= ts <= RECV + FUTURE_TOLERANCE_S * 1e9
    assert 0 <= status <= 0xFFFFFFFF
    # The edge can buffer it and send it, and the collector reads back the same value.
    sample = Sample("p", "s", ts, value, status, RECV)
    header, _ = records.parse_header(records.encode(0, [sample], []))
    assert header.min_ts == ts
    batch = UplinkBatch(
        edge="e", enterprise="x", plant="p", register_version="v", boot=1, seq=0, sent=RECV
    )
    batch.samples.append(sample)
    decoded = decode_batch(batch.encode(), "t")
    assert decoded.samples.value == [value] and decoded.samples.ts == [ts]


@fuzz
@given(st.binary(max_size=300), PATHS)
def test_arbitrary_bytes(payload: bytes, path: str) -> None:
    check(payload, path)


@fuzz
@given(json_values, PATHS)
def test_json_documents_with_hostile_values(document: Any, path: str) -> None:
    check(json.dumps(document).encode(), path)


@fuzz
@given(hostile_scalars, hostile_scalars, hostile_scalars)
def test_value_timestamp_and_quality(value: Any, ts: Any, quality: Any) -> None:
    document = {"value": value, "ts": ts, "quality": quality}
    check(json.dumps(document).encode(), "value")


@fuzz
@given(token_soup, PATHS)
def test_almost_json(text: str, path: str) -> None:
    check(text.encode(), path)


@fuzz
@given(deep_nesting(), PATHS)
def test_deep_nesting(text: str, path: str) -> None:
    check(text.encode(), path)


@fuzz
@given(st.binary(max_size=200), st.integers(0, 60), st.binary(max_size=4))
def test_mutated_good_payload(junk: bytes, at: int, insert: bytes) -> None:
    good = b'{"value": 21.5, "ts": 1794999999000, "quality": "good"}'
    check(good[:at] + insert + good[at:], "value")
    check(good + junk, "value")
