"""A buffer record reads back exactly as it was written, whatever the values (no disk)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from common.wire import LivenessEvent, Sample
from edge.buffer.records import check, decode_payload, encode
from tests.fuzz.profiles import fuzz

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond 64 bits too
    st.floats(allow_nan=True, allow_infinity=True),  # NaN and ±inf are kept, not nulled
    st.text(),  # lone surrogates included
)
samples = st.lists(
    st.builds(
        Sample,
        st.text(min_size=1, max_size=8),
        st.text(min_size=1, max_size=8),
        st.integers(min_value=0, max_value=2**62),
        values,
        st.integers(min_value=0, max_value=2**32 - 1),
        st.integers(min_value=0, max_value=2**62),
        st.none() | st.integers(min_value=0, max_value=2**62),
        st.booleans(),  # backfilled
    ),
    max_size=20,
)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@fuzz
@given(samples)
def test_a_record_reads_back_as_written(written: list[Sample]) -> None:
    liveness = [LivenessEvent(source="opc", ts=1, up=False, detail="lost")]
    data = encode(7, written, liveness)
    header = check(data, 0)
    read = decode_payload(data, 0, header)
    assert len(read.samples) == len(written)
    for got, want in zip(read.samples, written, strict=True):
        assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (got, want)
    assert read.liveness == liveness


def test_a_record_written_before_backfill_existed_reads_as_live_samples() -> None:
    import json
    import struct
    import zlib

    from edge.buffer.records import _AFTER_CRC, MARKER

    rows = [["p1", "speed", 10, 1.5, 0, 11, None]]  # seven fields, as written until now
    payload = zlib.compress(json.dumps({"s": rows, "l": []}).encode(), 1)
    rest = _AFTER_CRC.pack(3, 1, 0, 10)
    crc = zlib.crc32(payload, zlib.crc32(rest))
    data = MARKER + struct.pack("<II", len(payload), crc) + rest + payload
    (sample,) = decode_payload(data, 0, check(data, 0)).samples
    assert sample == Sample("p1", "speed", 10, 1.5, 0, 11, None) and not sample.backfill
