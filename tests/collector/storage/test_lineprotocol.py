"""Line protocol serialization: escaping, injection attempts, types, NaN/inf. Pure."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.storage.lineprotocol import (
    LineProtocolError,
    SerializeStats,
    StoredLiveness,
    StoredSample,
    escape_key,
    escape_measurement,
    escape_string_field,
    liveness_line,
    liveness_lines,
    point_line,
    reconfirm_line,
    sample_line,
    sample_lines,
    sample_lines_of_columns,
)
from common.wire import LivenessEvent
from tests.fuzz.profiles import fuzz

TS = 1_700_000_000_123_456_789


def make_sample(**changes: object) -> StoredSample:
    base: dict[str, object] = {
        "enterprise": "ent",
        "plant": "p1",
        "line": "l1",
        "process": "proc",
        "signal": "sig",
        "ts_ns": TS,
        "value": 1.5,
        "status": 0,
        "recv_ns": TS + 10,
        "server_ts_ns": None,
        "edge": "edge-1",
        "seq": 7,
    }
    base.update(changes)
    return StoredSample(**base)  # type: ignore[arg-type]


def test_sample_line_layout() -> None:
    line = sample_line(make_sample())
    assert line == (
        "sample,enterprise=ent,line=l1,plant=p1,process=proc,signal=sig "
        f'value=1.5,status=0i,recv_ns={TS + 10}i,edge="edge-1",seq=7i {TS}'
    )


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (42, "value=42.0"),  # ints are stored as float: one type for 'value' forever
        (-0.25, "value=-0.25"),
        (1e-7, "value=1e-07"),
        (True, "value_bool=true"),
        (False, "value_bool=false"),
        ("RUNNING", 'value_str="RUNNING"'),
        ("", 'value_str=""'),
    ],
)
def test_sample_value_types(value: object, field: str) -> None:
    line = sample_line(make_sample(value=value))
    fields = line.split(" ")[1].split(",")
    assert fields[0] == field
    assert sum(f.startswith("value") for f in fields) == 1


def test_none_value_stores_status_only() -> None:
    line = sample_line(make_sample(value=None, status=0x80310000))
    assert " status=2150694912i," in line
    assert "value" not in line


def test_server_timestamp_only_when_present() -> None:
    assert "server_ns" not in sample_line(make_sample(server_ts_ns=None))
    assert f"server_ns={TS - 5}i" in sample_line(make_sample(server_ts_ns=TS - 5))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 10**400])
def test_nonfinite_value_is_skipped_and_counted(bad: float) -> None:
    stats = SerializeStats()
    line = sample_line(make_sample(value=bad), stats)
    assert "value" not in line
    assert "nan" not in line.lower() and "inf" not in line.lower()
    assert line.endswith(f"seq=7i {TS}")  # still a valid point: status etc. are kept
    assert stats.nonfinite_fields == 1


def test_tag_escaping() -> None:
    sample = make_sample(plant="plant a,b=c", process="x=1", signal="s p")
    line = sample_line(sample)
    assert line.startswith(
        r"sample,enterprise=ent,line=l1,plant=plant\ a\,b\=c,process=x\=1,signal=s\ p "
    )


def test_tag_injection_cannot_add_tags_or_fields() -> None:
    # Unescaped, this would add a tag 'evil' and a field 'value=666'.
    line = sample_line(make_sample(signal="sig,evil=1 value=666"))
    head = line.split(" value=")[0]
    assert r"signal=sig\,evil\=1\ value\=666" in head
    assert line.count(" value=") == 1


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "trailing\\", "back\\slash"])
def test_newlines_and_backslashes_in_tags_are_rejected(bad: str) -> None:
    with pytest.raises(LineProtocolError, match=r"tag process value"):
        sample_line(make_sample(process=bad))


def test_newline_injection_in_tag_is_rejected() -> None:
    evil = "p1 value=1 1\nsample,enterprise=other value=666"
    with pytest.raises(LineProtocolError, match="newlines"):
        point_line("kpi_rate", {"plant": evil}, {"rate": 0.5}, TS)


def test_string_field_escaping() -> None:
    text = 'say "hi", a=b \\ c'
    assert escape_string_field(text) == '"say \\"hi\\", a=b \\\\ c"'
    line = sample_line(make_sample(value=text))
    assert 'value_str="say \\"hi\\", a=b \\\\ c"' in line


def test_newlines_in_string_fields_stay_on_one_line() -> None:
    line = sample_line(make_sample(value='line1\nline2\r\n" bad=1'))
    assert "\n" not in line and "\r" not in line
    assert 'value_str="line1\\nline2\\r\\n\\" bad=1"' in line


def test_string_injection_cannot_end_the_field() -> None:
    line = point_line("m", {"t": "x"}, {"s": '" ,evil=1i 99'}, TS)
    assert line == f'm,t=x s="\\" ,evil=1i 99" {TS}'


def test_measurement_rules() -> None:
    assert escape_measurement("a b,c=d") == r"a\ b\,c=d"
    for bad in ("", "#comment", "a\nb", "a\\b"):
        with pytest.raises(LineProtocolError, match="measurement"):
            escape_measurement(bad)


def test_key_escaping() -> None:
    assert escape_key("a b,c=d") == r"a\ b\,c\=d"
    assert escape_key("plain-id_1.2") == "plain-id_1.2"


def test_point_line_types_sorted_tags() -> None:
    line = point_line(
        "process_status",
        {"process": "p1", "enterprise": "e", "line": "l"},
        {"digitalized": True, "coverage": 0.95, "count": 3, "reasons": "LOW_COVERAGE"},
        TS,
    )
    assert line == (
        "process_status,enterprise=e,line=l,process=p1 "
        f'digitalized=true,coverage=0.95,count=3i,reasons="LOW_COVERAGE" {TS}'
    )


def test_point_line_skips_nonfinite_fields_and_drops_empty_points() -> None:
    stats = SerializeStats()
    line = point_line("kpi_rate", {"scope": "plant"}, {"rate": math.nan, "n": 3}, TS, stats)
    assert line == f"kpi_rate,scope=plant n=3i {TS}"
    assert point_line("kpi_rate", {"scope": "plant"}, {"rate": math.inf}, TS, stats) is None
    assert stats.nonfinite_fields == 2
    assert stats.empty_points == 1


@pytest.mark.parametrize(
    ("tags", "fields", "ts", "match"),
    [
        ({}, {}, TS, "at least one field"),
        ({"time": "x"}, {"f": 1}, TS, "'time' cannot be a tag key"),
        ({}, {"time": 1}, TS, "'time' cannot be a field key"),
        ({"t": ""}, {"f": 1}, TS, "tag 't' value is empty"),
        ({}, {"f": 2**63}, TS, "int64"),
        ({}, {"f": [1]}, TS, "not a float, int, bool or str"),
        ({}, {"f": 1}, 1.5, "int nanoseconds"),
        ({}, {"f": 1}, True, "int nanoseconds"),
        ({}, {"f": 1}, 2**63 - 1, "outside InfluxDB's range"),
    ],
)
def test_point_line_errors_name_the_culprit(
    tags: dict[str, str], fields: dict[str, object], ts: object, match: str
) -> None:
    with pytest.raises(LineProtocolError, match=match):
        point_line("m", tags, fields, ts)  # type: ignore[arg-type]


def test_sample_errors_name_the_sample() -> None:
    with pytest.raises(LineProtocolError, match=r"sample proc/sig at .*status"):
        sample_line(make_sample(status="good"))
    with pytest.raises(LineProtocolError, match=r"sample proc/sig .*not a number"):
        sample_line(make_sample(value=[1, 2]))


def test_liveness_lines() -> None:
    event = StoredLiveness("ent", "p1", "a1-opcua", TS, False, 'lost: "timeout"\nretrying', "e1")
    assert liveness_line(event) == (
        "liveness,enterprise=ent,plant=p1,source=a1-opcua "
        f'up=false,detail="lost: \\"timeout\\"\\nretrying",edge="e1" {TS}'
    )
    lines = liveness_lines("ent", "p1", "e1", [LivenessEvent(source="_edge", ts=TS, up=True)])
    assert lines == [
        f'liveness,enterprise=ent,plant=p1,source=_edge up=true,detail="",edge="e1" {TS}'
    ]


def test_sample_lines_many() -> None:
    samples = [make_sample(ts_ns=TS + i, value=float(i)) for i in range(100)]
    lines = sample_lines(samples)
    assert len(lines) == 100
    assert lines[3].endswith(f" {TS + 3}")


_ids = st.sampled_from(["l1", "proc", "sig", "a b", "x,y=z", "back\\slash", "", "新"])
_ints = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([-(2**63), -(2**63) + 1, 2**63 - 1, 2**63 - 2, 2**63, -1, 0]),
    st.integers(),
)
_times = st.one_of(st.integers(TS - 10**12, TS + 10**12), _ints)
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    _ints,
    st.booleans(),
    st.text(max_size=20),
    st.none(),
    st.just([1, 2]),
)
_rows = st.lists(
    st.tuples(_ids, _ids, _ids, _times, _values, _ints, _times, st.none() | _ints, st.booleans()),
    max_size=12,
)


@given(_rows, st.sampled_from(["edge-1", 'e"dge\\x']), _ints | st.just(True))
@fuzz
def test_columns_give_what_one_sample_at_a_time_gives(
    rows: list[tuple[str, str, str, int, object, int, int, int | None, bool]],
    edge: str,
    seq: int,
) -> None:
    """The collector's columnar serializer against sample_line + reconfirm_line: same
    lines in the same order, the same rows refused, the same NaN/inf count; backfilled
    samples flagged and never re-confirmed."""
    samples = [
        StoredSample(
            "ent",
            "p1",
            line,
            process,
            signal,
            ts,
            value,  # type: ignore[arg-type]
            status,
            recv,
            server,
            edge,
            seq,
            backfill,
        )
        for line, process, signal, ts, value, status, recv, server, backfill in rows
    ]
    expected: list[str] = []
    expected_ts: list[int] = []
    expected_failed: list[int] = []
    one_by_one = SerializeStats()
    for i, sample in enumerate(samples):
        count = SerializeStats()
        try:
            line = sample_line(sample, count)
            again = reconfirm_line(sample)
        except LineProtocolError:
            expected_failed.append(i)
            continue
        one_by_one.nonfinite_fields += count.nonfinite_fields
        expected += [line] if again is None else [line, again]
        expected_ts.append(sample.ts_ns)
    columns = SerializeStats()
    out = sample_lines_of_columns(
        list(range(len(samples))),
        [(s.enterprise, s.plant, s.line, s.process, s.signal) for s in samples],
        [s.ts_ns for s in samples],
        [s.value for s in samples],
        [s.status for s in samples],
        [s.recv_ns for s in samples],
        [s.server_ts_ns for s in samples],
        edge,
        seq,
        columns,
        backfill=[i for i, s in enumerate(samples) if s.backfill],
    )
    assert out.lines == expected
    assert out.stored_ts == expected_ts
    assert [row for row, _ in out.failed] == expected_failed
    assert columns.nonfinite_fields == one_by_one.nonfinite_fields


def test_columns_take_only_the_rows_given_with_their_tags() -> None:
    ts = [TS, TS + 1, TS + 2]
    out = sample_lines_of_columns(
        [2, 0],
        [("ent", "p1", "l1", "b", "s"), ("ent", "p1", "l1", "a", "s")],
        ts,
        [1.0, 2.0, 3],
        [0, 0, 0],
        [t + 10 for t in ts],
        [None, None, None],
        "edge-1",
        4,
    )
    assert out.lines == [
        f'sample,enterprise=ent,line=l1,plant=p1,process=b,signal=s value=3.0,status=0i,recv_ns={TS + 12}i,edge="edge-1",seq=4i {TS + 2}',
        f'sample,enterprise=ent,line=l1,plant=p1,process=a,signal=s value=1.0,status=0i,recv_ns={TS + 10}i,edge="edge-1",seq=4i {TS}',
    ]
    assert out.stored_ts == [TS + 2, TS] and out.failed == []


def test_a_backfilled_sample_is_flagged_and_never_a_reconfirmation() -> None:
    late = make_sample(recv_ns=TS + 3600 * 10**9)  # read from history an hour later
    assert reconfirm_line(late) is not None
    backfilled = make_sample(recv_ns=TS + 3600 * 10**9, backfill=True)
    assert reconfirm_line(backfilled) is None
    assert sample_line(backfilled).endswith(f",seq=7i,backfill=true {TS}")
    assert "backfill" not in sample_line(late)
