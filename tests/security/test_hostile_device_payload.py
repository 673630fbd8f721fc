"""Hand-crafted hostile device payloads: each rule of docs/hostile-input.md, edge side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.protocols.mqtt import MqttSource
from common.register_loader import load_register
from edge.sources.mqtt.payload import DeviceLimits, PayloadError, parse_payload
from edge.sources.mqtt.source import MqttDeviceSource, TopicBinding
from tests.edge.mqtt.helpers import RecordingSink

RECV = 1_795_000_000_000_000_000
RECV_MS = RECV // 1_000_000
HOUR_MS = 3_600_000


def parse(payload: bytes, path: str = "value", **limits: Any) -> tuple[int, object, int]:
    return parse_payload(
        payload,
        path=path,
        timestamp_path="ts",
        quality_path="quality",
        recv_ns=RECV,
        limits=DeviceLimits(**limits),
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # NaN and ±inf: Python's json takes these tokens (and 1e400 overflows to inf).
        (b'{"value": NaN}', "cannot be stored"),
        (b'{"value": Infinity}', "cannot be stored"),
        (b'{"value": -Infinity}', "cannot be stored"),
        (b'{"value": 1e400}', "cannot be stored"),
        (b"NaN", "cannot be stored"),
        # Integers beyond int64, and beyond what int() will parse at all.
        (json.dumps({"value": 2**63}).encode(), "does not fit in int64"),
        (json.dumps({"value": -(2**63) - 1}).encode(), "does not fit in int64"),
        (b'{"value": ' + b"9" * 5000 + b"}", "number the parser refuses"),
        # Not UTF-8, or a JSON escape that is no character.
        (b"\xff\xfe", "not UTF-8"),
        (b'{"value": "caf\xe9"}', "not UTF-8"),
        (b'{"value": "\\ud800"}', "lone surrogate"),
        # Strings over the limit are rejected, not cut.
        (json.dumps({"value": "x" * 1025}).encode(), "longer than the limit of 1024"),
        # Timestamps: before 1970, far ahead, not a time at all.
        (b'{"value": 1, "ts": -1}', "before 1970"),
        (b'{"value": 1, "ts": "1969-12-31T23:59:59Z"}', "before 1970"),
        (b'{"value": 1, "ts": "0001-01-01T00:00:00+14:00"}', "before 1970"),
        (b'{"value": 1, "ts": "10000-01-01"}', "not ISO 8601"),
        (f'{{"value": 1, "ts": {RECV_MS + 2 * HOUR_MS}}}'.encode(), "ahead of the receive time"),
        (b'{"value": 1, "ts": "9999-12-31T23:59:59Z"}', "ahead of the receive time"),
        (b'{"value": 1, "ts": 1e300}', "is not a time"),  # beyond int64 ns
        (b'{"value": 1, "ts": NaN}', "not a time"),
        (b'{"value": 1, "ts": 1e303}', "not a time"),  # finite, but inf once in ns
        (b'{"value": 1, "ts": [1]}', "not a time"),
        (b'{"value": 1, "ts": true}', "not a time"),
        # Structure: nesting beyond the parser, repeated keys.
        (b"[" * 20_000, "nested too deeply"),
        (b'{"value":' * 5_000, "nested too deeply"),
        (b'{"value": 1, "value": 2}', "repeats the key 'value'"),
        (b'{"value": 1, "quality": "x", "quality": "good"}', "repeats the key 'quality'"),
        # A hostile quality is refused, and named briefly.
        (json.dumps({"value": 1, "quality": "q" * 50_000}).encode(), "is not a known label"),
        (b'{"value": 1, "quality": NaN}', "is not a known label"),
        (json.dumps({"value": 1, "quality": 2**32}).encode(), "is not a known label"),
    ],
)
def test_hostile_payload_is_refused_with_a_short_reason(payload: bytes, reason: str) -> None:
    path = "." if payload.startswith((b"[", b"NaN")) else "value"
    with pytest.raises(PayloadError, match=reason) as caught:
        parse(payload, path)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (json.dumps({"value": 2**63 - 1}).encode(), 2**63 - 1),
        (json.dumps({"value": -(2**63)}).encode(), -(2**63)),
        (json.dumps({"value": "é" * 1024}).encode(), "é" * 1024),
        (json.dumps({"value": "nul\x00 and\ttabs"}).encode(), "nul\x00 and\ttabs"),
        (b'{"value": 5e-324}', 5e-324),
        (b'{"value": -0.0}', -0.0),
    ],
)
def test_values_at_the_edges_of_the_rules_are_kept(payload: bytes, value: object) -> None:
    assert parse(payload)[1] == value


def test_timestamp_window_is_2000_to_receive_time_plus_tolerance() -> None:
    with pytest.raises(PayloadError, match="before 2000"):
        parse(b'{"value": 1, "ts": 0}')  # 1970: a device clock that was never set
    ahead = RECV_MS + HOUR_MS
    assert parse(f'{{"value": 1, "ts": {ahead}}}'.encode())[0] == ahead * 1_000_000
    with pytest.raises(PayloadError, match="60s ahead"):
        parse(f'{{"value": 1, "ts": {RECV_MS + 61_000}}}'.encode(), future_tolerance_s=60)


def test_limits_are_configurable() -> None:
    assert parse(json.dumps({"value": "x" * 2000}).encode(), string_chars=4096)[1] == "x" * 2000
    with pytest.raises(PayloadError, match="payload of 101 bytes exceeds the limit of 100"):
        parse(b" " * 90 + b'{"value":1}', payload_bytes=100)


def mqtt_source(limits: DeviceLimits) -> tuple[MqttDeviceSource, str]:
    register = load_register(Path(__file__).parents[2] / "examples" / "demo" / "register.yaml")
    config = next(s for s in register.plant("plant-a").sources if isinstance(s, MqttSource))
    ref = register.signal("a2-screwing", "torque")
    assert ref is not None
    topic = "devices/plant-a/a2-screwing/torque"
    binding = TopicBinding(topic, "a2-screwing", ref.signal)
    return MqttDeviceSource(config, [binding], client_id="t", limits=limits), topic


def test_oversize_device_message_is_counted_and_named_and_the_next_one_read() -> None:
    source, topic = mqtt_source(DeviceLimits(payload_bytes=1024))
    sink = RecordingSink()
    source.handle(topic, b'{"value": 1.5, "pad": "' + b"x" * 2000 + b'"}', sink)
    source.handle(topic, b'{"value": 2.5}', sink)
    assert [s[3] for s in sink.samples] == [2.5]
    assert source.stats.oversize == 1 and source.stats.rejected == 1
    assert sink.rejections[0][1] == f"topic {topic}"
    assert "exceeds the limit of 1024" in sink.rejections[0][2]
    assert source.health()["oversize"] == 1
