"""Error classification, InfluxQL quoting and response parsing, settings. Pure."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from collector.storage.errors import (
    DatabaseMissing,
    WriteRejected,
    WriteUnauthorized,
    WriteUnavailable,
    classify_write_failure,
    server_message,
)
from collector.storage.influxql import (
    ResponseError,
    Series,
    is_read_only,
    parse_chunk,
    quote_ident,
    quote_literal,
    tag_filter,
    time_range,
)
from collector.storage.settings import InfluxSettings

CONFLICT = (
    'partial write: field type conflict: input field "value" on measurement "sample" '
    "is type string, already exists as type float dropped=1"
)


def test_conflict_names_measurement_and_field() -> None:
    error = classify_write_failure("db", 400, CONFLICT)
    assert isinstance(error, WriteRejected)
    assert (error.measurement, error.field) == ("sample", "value")
    assert (error.existing_type, error.written_type) == ("float", "string")
    assert error.dropped == 1
    assert "measurement 'sample', field 'value'" in str(error)
    assert not error.retryable


def test_unparsable_line_is_named() -> None:
    message = "partial write: unable to parse 'bad line here': invalid field format dropped=0"
    error = classify_write_failure("db", 400, message)
    assert isinstance(error, WriteRejected)
    assert error.bad_line == "bad line here"
    assert "bad line here" in str(error)


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (404, 'database not found: "x"', DatabaseMissing),
        (500, "retention policy not found: weekly", DatabaseMissing),
        (401, "authorization failed", WriteUnauthorized),
        (503, "unavailable", WriteUnavailable),
        (500, "timeout", WriteUnavailable),
        (429, "slow down", WriteUnavailable),
        (413, "request entity too large", WriteRejected),
    ],
)
def test_classification(status: int, message: str, kind: type) -> None:
    error = classify_write_failure("target", status, message)
    assert isinstance(error, kind)
    assert message in str(error) and "target" in str(error)


def test_server_message_reads_v1_and_v2_bodies() -> None:
    assert server_message(b'{"error":"x"}', "f") == "x"
    assert server_message(b'{"code":"invalid","message":"y"}', "f") == "y"
    assert server_message(b"plain text", "f") == "plain text"
    assert server_message(b"", "fallback") == "fallback"


def test_quoting_keeps_values_values() -> None:
    assert quote_ident('we"ird\\') == '"we\\"ird\\\\"'
    assert quote_literal("x' OR '1'='1") == "'x\\' OR \\'1\\'=\\'1'"
    assert quote_literal("a\nb") == "'a\\nb'"
    assert tag_filter({"b": "2", "a": "1"}) == "\"a\" = '1' AND \"b\" = '2'"
    assert time_range(1, 2) == "time >= 1 AND time < 2"
    with pytest.raises(TypeError):
        time_range(1.0, 2)  # type: ignore[arg-type]


def test_reads_go_as_get_everything_else_as_post() -> None:
    assert is_read_only('SELECT * FROM "m"; show databases')
    assert not is_read_only('SELECT * INTO "copy" FROM "m"')
    assert not is_read_only('SELECT 1; DROP DATABASE "x"')
    assert not is_read_only('CREATE DATABASE "x"')
    assert not is_read_only("")


def test_chunked_partial_series_are_joined() -> None:
    def chunk(values: list[list[int]], partial: bool, statement: int = 0) -> str:
        raw: dict[str, object] = {"name": "m", "tags": {"t": "a"}, "columns": ["time", "v"]}
        raw["values"] = values
        if partial:
            raw["partial"] = True
        return json.dumps({"results": [{"statement_id": statement, "series": [raw]}]})

    series: list[Series] = []
    parse_chunk(chunk([[1, 1], [2, 2]], True), series)
    parse_chunk(chunk([[3, 3]], False), series)
    parse_chunk(chunk([[0, 9]], False, statement=1), series)
    assert [s.values for s in series] == [[[1, 1], [2, 2], [3, 3]], [[0, 9]]]
    assert list(series[0].rows())[2] == {"time": 3, "v": 3}


def test_statement_errors_are_raised() -> None:
    with pytest.raises(ResponseError, match="database not found"):
        parse_chunk('{"results":[{"statement_id":0,"error":"database not found: x"}]}', [])
    with pytest.raises(ResponseError, match="bad"):
        parse_chunk('{"error":"bad"}', [])


def test_settings_validation() -> None:
    settings = InfluxSettings(
        url=" http://h:8086/ ", mode="v2", database="db", retention_policy="rp"
    )
    assert settings.url == "http://h:8086"
    assert settings.bucket == "db/rp"
    assert InfluxSettings(timeout="500ms").timeout == 0.5
    with pytest.raises(ValidationError, match="must start with http"):
        InfluxSettings(url="h:8086")
    with pytest.raises(ValidationError, match="both username and password"):
        InfluxSettings(username="u")
    with pytest.raises(ValidationError, match="mode"):
        InfluxSettings(mode="v3")
    secret = InfluxSettings(token="s3cret", password="pw", username="u")
    assert "s3cret" not in repr(secret) and "pw'" not in repr(secret)
    assert "s3cret" not in secret.describe()
