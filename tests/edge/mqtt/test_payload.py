"""Device payload parsing: what is accepted, and the reason given for what is not."""

from __future__ import annotations

import pytest

from common.quality import BAD, GOOD, GOOD_LOCAL_OVERRIDE, UNCERTAIN
from edge.sources.mqtt.payload import PayloadError, parse_payload

RECV = 1_800_000_000_000_000_000


def parse(payload: bytes, path: str = "value") -> tuple[int, object, int]:
    return parse_payload(
        payload, path=path, timestamp_path="ts", quality_path="quality", recv_ns=RECV
    )


def test_json_with_ms_timestamp_and_quality() -> None:
    assert parse(b'{"value": 21.5, "ts": 1764320000123, "quality": "good"}') == (
        1_764_320_000_123_000_000,
        21.5,
        GOOD,
    )


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("bad", BAD),
        ("uncertain", UNCERTAIN),
        ("override", GOOD_LOCAL_OVERRIDE),
        (2150891520, 2150891520),
    ],
)
def test_quality_labels_and_raw_codes(label: object, code: int) -> None:
    import json

    _, _, status = parse(json.dumps({"value": 1, "quality": label}).encode())
    assert status == code


def test_missing_timestamp_uses_receive_time_and_iso_is_accepted() -> None:
    assert parse(b'{"value": true}')[0] == RECV
    assert parse(b'{"value": 1, "ts": "2026-11-28T10:00:00Z"}')[0] == 1_795_860_000_000_000_000


def test_nested_path_and_plain_payload() -> None:
    assert parse(b'{"data": {"rpm": 1200}}', path="data.rpm")[1] == 1200
    assert parse(b"RUNNING", path=".")[1] == "RUNNING"
    assert parse(b"12.5", path=".")[1] == 12.5


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"val": 1}', "no value at 'value'"),
        (b'{"value": [1, 2]}', "is a list"),
        (b'{"value": {"a": 1}}', "is a dict"),
        (b'{"value": null}', "null with good quality"),
        (b'{"value": 1, "quality": "great"}', "quality 'great'"),
        (b'{"value": 1, "ts": "yesterday"}', "timestamp 'yesterday'"),
        (b'{"value": 1, "ts": true}', "timestamp True"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"value": NaN}', "cannot be stored"),
    ],
)
def test_bad_payloads_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason.replace("[", r"\[")):
        parse(payload)


def test_null_value_with_bad_quality_is_kept_as_received() -> None:
    assert parse(b'{"value": null, "quality": "bad"}')[1:] == (None, BAD)
