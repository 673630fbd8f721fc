"""Property: the uplink decoder and resolver refuse hostile batches by name, never crash.

``decode_batch`` raises only WireError; ``resolve_batch`` only BatchRejected; and every
sample the resolver accepts becomes a valid line-protocol line (so one hostile sample can
never make InfluxDB refuse the write of the good ones beside it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collector.ingest.resolve import BatchRejected, resolve_batch
from collector.storage.lineprotocol import sample_line
from common.limits import timestamp_problem, value_problem
from common.register_loader import load_register
from common.topics import EdgeTopic
from common.wire import UplinkBatch, WireError, decode_batch
from tests.fuzz.profiles import fuzz
from tests.fuzz.strategies import deep_nesting, hostile_numbers, hostile_scalars, token_soup

REGISTER = load_register(Path(__file__).parents[2] / "examples" / "demo" / "register.yaml")
REGISTERS = {REGISTER.enterprise_id: REGISTER}
E = REGISTER.enterprise_id
TOPIC = EdgeTopic(E, "plant-a", "edge-plant-a", "samples")
NOW = 1_795_000_000_000_000_000
KNOWN = [("a1-turning", "spindle_speed"), ("a2-screwing", "torque"), ("a1-turning", "feed_rate")]


def check(payload: bytes) -> None:
    try:
        batch = decode_batch(payload, "plantkpi/v1/x/plant-a/edge-plant-a/samples")
    except WireError as exc:
        assert len(str(exc)) < 2000, "a rejection message must stay short"
        return
    check_batch(batch)


def check_batch(batch: UplinkBatch) -> None:
    try:
        resolved = resolve_batch(batch, TOPIC, REGISTERS, now_ns=NOW)
    except BatchRejected:
        return
    assert resolved.rejected_samples + len(resolved.samples) == len(batch.samples)
    assert sum(resolved.rejected_by_rule.values()) == resolved.rejected_samples
    # The fast path for the common case accepts exactly what the rules accept.
    cols = batch.samples
    by_rules = [
        i
        for i in range(len(cols))
        if REGISTER.signal(cols.process[i], cols.signal[i]) is not None
        and REGISTER.signal(cols.process[i], cols.signal[i]).plant.id == batch.plant  # type: ignore[union-attr]
        and value_problem(cols.value[i]) is None
        and timestamp_problem(cols.ts[i], NOW) is None
        and all(t is None or -(2**63) <= t <= 2**63 - 1 for t in (cols.recv[i], cols.server_ts[i]))
    ]
    assert resolved.rows == by_rules
    for sample in resolved.samples:
        sample_line(sample)  # raises LineProtocolError if it could poison a write


def envelope(samples: dict[str, Any], **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": 1,
        "edge": "edge-plant-a",
        "enterprise": E,
        "plant": "plant-a",
        "register_version": "v",
        "boot": 1,
        "seq": 0,
        "sent": NOW,
        "samples": samples,
    }
    doc.update(fields)
    return doc


@st.composite
def hostile_batches(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(0, 5))
    ts = st.one_of(st.integers(0, 2 * NOW), hostile_numbers, st.text(max_size=5))
    columns = {
        "process": [draw(st.sampled_from(KNOWN))[0] for _ in range(n)],
        "signal": [
            draw(st.sampled_from([s for _, s in KNOWN] + ["", "x" * 300])) for _ in range(n)
        ],
        "ts": draw(st.lists(ts, min_size=n, max_size=n)),
        "value": draw(st.lists(hostile_scalars, min_size=n, max_size=n)),
        "status": draw(
            st.lists(st.one_of(st.integers(0, 2**32), hostile_numbers), min_size=n, max_size=n)
        ),
        "recv": draw(st.lists(st.one_of(st.just(NOW), hostile_numbers), min_size=n, max_size=n)),
        "server_ts": draw(st.lists(st.one_of(st.none(), hostile_numbers), min_size=n, max_size=n)),
    }
    liveness = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "source": st.sampled_from(["_edge", "a1-opcua", "ghost"]),
                    "ts": st.one_of(st.integers(0, 2 * NOW), hostile_numbers),
                    "up": st.booleans(),
                    "detail": st.text(max_size=2000),
                }
            ),
            max_size=3,
        )
    )
    doc = envelope(columns, liveness=liveness)
    # Python's json writes NaN/Infinity tokens, as a hostile sender would.
    return json.dumps(doc).encode()


@fuzz
@given(hostile_batches())
def test_hostile_batches(payload: bytes) -> None:
    check(payload)


@fuzz
@given(st.binary(max_size=400))
def test_arbitrary_bytes(payload: bytes) -> None:
    check(payload)


@fuzz
@given(token_soup)
def test_almost_json(text: str) -> None:
    check(text.encode())


@fuzz
@given(deep_nesting())
def test_deep_nesting(text: str) -> None:
    check(text.encode())


@fuzz
@given(st.integers(0, 400), st.binary(min_size=1, max_size=8), st.booleans())
def test_mutated_good_batch(at: int, junk: bytes, replace: bool) -> None:
    good = json.dumps(
        envelope(
            {
                "process": ["a1-turning"],
                "signal": ["spindle_speed"],
                "ts": [NOW],
                "value": [1200.0],
                "status": [0],
                "recv": [NOW],
                "server_ts": [None],
            }
        )
    ).encode()
    at = min(at, len(good))
    check(good[:at] + junk + good[at + (len(junk) if replace else 0) :])
