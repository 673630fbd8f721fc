"""Device messages that cannot become samples: refused by kind, counted, and kept visible.

Found by trying it as a new user: a wrong payload path logged one warning per topic and
then nothing while every message was rejected; a timestamp in seconds was stored as
1970-01-21; a string on a numeric parameter was stored.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from common.protocols.mqtt import MqttSignalBinding, MqttSource
from common.register import Signal
from edge.sources.mqtt.payload import PayloadError, parse_payload
from edge.sources.mqtt.routing import TopicBinding
from edge.sources.mqtt.source import MqttDeviceSource
from tests.edge.source_kit import RecordingSink

RECV = 1_800_000_000_000_000_000  # 2027-01-15
S = 1_000_000_000


def parse(payload: bytes, **kw: Any) -> tuple[int, object, int]:
    return parse_payload(
        payload, path="value", timestamp_path="ts", quality_path=None, recv_ns=RECV, **kw
    )


@pytest.mark.parametrize(
    "raw",
    ["1799999990", "1799999990.5", "1799999990000", "1799999990000000", "1799999990000000000"],
    ids=["s", "s-float", "ms", "us", "ns"],
)
def test_a_numeric_timestamp_is_read_in_the_unit_its_magnitude_says(raw: str) -> None:
    ts, _, _ = parse(f'{{"value": 1, "ts": {raw}}}'.encode())
    assert abs(ts - 1_799_999_990 * S) <= S // 2


def test_a_timestamp_before_2000_is_refused_as_a_device_clock_or_unit_error() -> None:
    with pytest.raises(PayloadError, match="before 2000") as caught:
        parse(b'{"value": 1, "ts": 86400}')  # a day after boot, in seconds
    assert caught.value.rule == "ts_implausible"


@pytest.mark.parametrize(
    ("value_type", "payload", "wrong"),
    [
        ("number", b'{"value": "12.5"}', "a str where the register declares number"),
        ("number", b'{"value": true}', "a boolean where the register declares number"),
        ("boolean", b'{"value": 1}', "a int where the register declares boolean"),
        ("string", b'{"value": 3.5}', "a float where the register declares string"),
    ],
)
def test_a_value_of_another_kind_than_declared_is_refused(
    value_type: str, payload: bytes, wrong: str
) -> None:
    with pytest.raises(PayloadError, match=wrong) as caught:
        parse(payload, value_type=value_type)
    assert caught.value.rule == "value_type"
    assert parse(payload)[1] is not None  # undeclared: any kind is taken


def test_rejections_stay_visible_in_the_log_and_are_counted_by_kind(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = MqttSource.model_validate({"id": "dev", "kind": "mqtt", "broker": "mqtt://h:1883"})
    binding = MqttSignalBinding(topic="m/speed", path="reading")
    signal = Signal(id="speed", role="parameter", source="dev", binding=binding)
    source = MqttDeviceSource(config, [TopicBinding("m/speed", "p1", signal)], client_id="t")
    clock = [1000.0]
    monkeypatch.setattr("edge.sources.mqtt.source.time.monotonic", lambda: clock[0])
    sink = RecordingSink()
    caplog.set_level(logging.WARNING)
    for second in range(130):  # one wrong-path message a second for 130 s
        clock[0] = 1000.0 + second
        source.handle("m/speed", b'{"value": 1}', sink)
    lines = [
        r.getMessage() for r in caplog.records if "rejected message on m/speed" in r.getMessage()
    ]
    assert len(lines) == 3  # at 0 s, 60 s and 120 s: not once and then never again
    assert "no value at 'reading'" in lines[0] and "(59 more since the last report)" in lines[1]
    assert source.stats.rejected == 130 and source.stats.rejected_by_rule == {"no_value": 130}
    assert source.health()["rejected_by_rule"] == {"no_value": 130}
