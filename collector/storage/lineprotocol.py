"""InfluxDB line protocol, written by hand because it is the hot path (influxdb-client's
``Point`` tops out near 71 k points/s in collectors that use it, the database near 470 k).

Pure functions, no I/O. Every line produced is valid line protocol, or the function
raises :class:`LineProtocolError` naming the culprit; nothing is silently written wrong.
The rules (round-trips checked against influxd 1.6.7 in ``tests/collector/storage``):

- measurement: ``,`` and space are escaped; it must not start with ``#`` (a comment line);
- tag keys, tag values, field keys: ``,``, ``=`` and space are escaped;
- a backslash in a name, tag key or tag value is rejected: influxd 1.6 keeps ``\\\\`` as
  two backslashes while later parsers read it as one, and a trailing backslash breaks the
  line, so no escaping is portable (register ids never contain one);
- newlines (``\\n``, ``\\r``) are rejected in names and tags; in string fields they are
  written as the two-character escapes ``\\n`` and ``\\r`` so a point always stays on one
  physical line (reading back gives the backslash sequence, not the control character);
- string fields escape ``"`` and ``\\``;
- integers get the ``i`` suffix; floats that are NaN or ±inf cannot be stored in InfluxDB:
  the field is skipped and counted in :class:`SerializeStats`, and a point left with no
  field at all is dropped and counted;
- ``time`` is not allowed as a tag or field key; empty tag values are rejected (omit the
  tag instead).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from collector.storage.schema import KPI_REPLICA, LIVENESS, RECONFIRM, SAMPLE, WATERMARK
from common.wire import LivenessEvent

_RECONFIRM = RECONFIRM.name
_SAMPLE_NAME_CHARS = len(SAMPLE.name)
"""A reconfirm point is its sample's line prefix under the other measurement name."""
RECONFIRM_MIN_AGE_NS = 1_000_000_000
"""A sample received at least this long after its source time is (also) stored as a
``reconfirm`` point at its receive time: a value a source re-sends after an outage (OPC UA
re-subscription, a retained MQTT message) keeps its source time, so its ``sample`` point is
overwritten by every re-send, and only these points keep each receipt (docs/kpi.md)."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# influxd rejects the two extreme int64 values as timestamps ("time outside range").
TIME_MIN = INT64_MIN + 2
TIME_MAX = INT64_MAX - 1

FieldValue = float | int | bool | str
SampleValue = float | int | bool | str | None


class LineProtocolError(ValueError):
    """A point that cannot be written as valid line protocol; the message names the part."""


@dataclass(slots=True)
class SerializeStats:
    """What serialization had to leave out. Pass one in and read it afterwards."""

    nonfinite_fields: int = 0
    """Float fields skipped because they were NaN or ±inf."""
    empty_points: int = 0
    """Points not written because no storable field was left."""


# -- escaping -----------------------------------------------------------------------------

_KEY_SPECIAL = re.compile(r"[,= ]")
_FORBIDDEN_IN_NAMES = re.compile(r"[\\\n\r]")
_STRING_SPECIAL = re.compile(r'["\\\n\r]')
_STRING_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r"})


def _check_name(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise LineProtocolError(f"{what} must be a string, got {type(text).__name__} {text!r}")
    if not text:
        raise LineProtocolError(f"{what} is empty")
    bad = _FORBIDDEN_IN_NAMES.search(text)
    if bad:
        raise LineProtocolError(
            f"{what} {text!r} contains {bad.group()!r}: backslashes and newlines cannot be "
            "written portably in line protocol names and tags"
        )


def escape_measurement(name: str) -> str:
    _check_name(name, "measurement")
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name!r} starts with '#' and would be a comment")
    if "," in name or " " in name:
        return name.replace(",", r"\,").replace(" ", r"\ ")
    return name


def escape_key(text: str, what: str = "tag key") -> str:
    """Escape a tag key, tag value or field key."""
    _check_name(text, what)
    if _KEY_SPECIAL.search(text):
        return text.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")
    return text


def escape_string_field(text: str) -> str:
    """A quoted string field value."""
    if _STRING_SPECIAL.search(text):
        return '"' + text.translate(_STRING_ESCAPES) + '"'
    return '"' + text + '"'


def format_field(value: FieldValue, where: str = "field") -> str | None:
    """The line-protocol form of a field value, or None for NaN/±inf (not storable)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise LineProtocolError(f"{where}: integer {value} does not fit in int64")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return repr(value)
    if isinstance(value, str):
        return escape_string_field(value)
    raise LineProtocolError(
        f"{where}: {type(value).__name__} {value!r} is not a float, int, bool or str"
    )


def _check_time(ts_ns: int, where: str) -> None:
    if isinstance(ts_ns, bool) or not isinstance(ts_ns, int):
        raise LineProtocolError(f"{where}: timestamp {ts_ns!r} must be int nanoseconds")
    if not TIME_MIN <= ts_ns <= TIME_MAX:
        raise LineProtocolError(f"{where}: timestamp {ts_ns} is outside InfluxDB's range")


# -- generic points -----------------------------------------------------------------------


def point_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    ts_ns: int,
    stats: SerializeStats | None = None,
) -> str | None:
    """One point; None (counted in ``stats``) when every field was NaN/±inf.

    Tags are written sorted by key, as InfluxDB recommends. Only low-cardinality labels
    belong in ``tags`` (ids from the register, versions); values and times are fields.
    """
    where = f"{measurement} point"
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        if key == "time":
            raise LineProtocolError(f"{where}: 'time' cannot be a tag key")
        tag_value = tags[key]
        parts.append(f",{escape_key(key)}={escape_key(tag_value, f'tag {key!r} value')}")
    field_parts = []
    for key, value in fields.items():
        if key == "time":
            raise LineProtocolError(f"{where}: 'time' cannot be a field key")
        text = format_field(value, f"{where}, field {key!r}")
        if text is None:
            if stats is not None:
                stats.nonfinite_fields += 1
            continue
        field_parts.append(f"{escape_key(key, 'field key')}={text}")
    if not field_parts:
        if not fields:
            raise LineProtocolError(f"{where}: a point needs at least one field")
        if stats is not None:
            stats.empty_points += 1
        return None
    _check_time(ts_ns, where)
    return f"{''.join(parts)} {','.join(field_parts)} {ts_ns}"


# -- samples ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredSample:
    """One received sample, resolved against the register, as it is stored.

    ``ts_ns`` is the source timestamp and becomes the point's time; ``recv_ns`` is when
    the edge received it and ``server_ts_ns`` the OPC UA server timestamp, if any.
    ``value`` is None when the source reported a status without a value.
    """

    enterprise: str
    plant: str
    line: str
    process: str
    signal: str
    ts_ns: int
    value: SampleValue
    status: int
    recv_ns: int
    server_ts_ns: int | None
    edge: str
    seq: int
    backfill: bool = False
    """Read from the source's history after a gap: stored with ``backfill=true`` and never
    as a reconfirmation (its receipt says nothing about the value being current then)."""


@lru_cache(maxsize=65536)
def _sample_prefix(enterprise: str, plant: str, line: str, process: str, signal: str) -> str:
    # Tag keys in sorted order; the set of signals is bounded by the register, so the
    # cache holds every series once.
    return (
        f"{SAMPLE.name},enterprise={escape_key(enterprise, 'tag enterprise value')}"
        f",line={escape_key(line, 'tag line value')}"
        f",plant={escape_key(plant, 'tag plant value')}"
        f",process={escape_key(process, 'tag process value')}"
        f",signal={escape_key(signal, 'tag signal value')} "
    )


Series = tuple[str, str, str, str, str]
"""A sample's tags: enterprise, plant, line, process, signal."""


def sample_line(sample: StoredSample, stats: SerializeStats | None = None) -> str:
    """The ``sample`` point for one sample (always a line: status etc. are always stored)."""
    prefix = _sample_prefix(
        sample.enterprise, sample.plant, sample.line, sample.process, sample.signal
    )
    return _sample_line(
        prefix,
        sample.ts_ns,
        sample.value,
        sample.status,
        sample.recv_ns,
        sample.server_ts_ns,
        f"edge={escape_string_field(sample.edge)}",
        sample.seq,
        _where(sample),
        stats,
        sample.backfill,
    )


def _sample_line(
    prefix: str,
    ts: int,
    value: SampleValue,
    status: int,
    recv: int,
    server_ts: int | None,
    edge_field: str,
    seq: int,
    where: str,
    stats: SerializeStats | None,
    backfill: bool = False,
) -> str:
    fields: list[str] = []
    nonfinite = False
    if isinstance(value, bool):
        fields.append("value_bool=true" if value else "value_bool=false")
    elif isinstance(value, int | float):
        # Integers are stored as float so the ``value`` field has one type forever
        # (exact up to 2**53).
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            fields.append(f"value={number!r}")
        else:
            nonfinite = True  # counted once the line is known to be written
    elif isinstance(value, str):
        fields.append(f"value_str={escape_string_field(value)}")
    elif value is not None:
        raise LineProtocolError(
            f"{where}: value {value!r} ({type(value).__name__}) is not a number, bool or string"
        )
    fields.append(f"status={_int_field(where, 'status', status)}")
    fields.append(f"recv_ns={_int_field(where, 'recv_ns', recv)}")
    if server_ts is not None:
        fields.append(f"server_ns={_int_field(where, 'server_ns', server_ts)}")
    fields.append(edge_field)
    fields.append(f"seq={_int_field(where, 'seq', seq)}")
    if backfill:
        fields.append("backfill=true")
    if type(ts) is not int or not TIME_MIN <= ts <= TIME_MAX:
        _check_time(ts, where)
        ts = int(ts)
    if nonfinite and stats is not None:
        stats.nonfinite_fields += 1
    return f"{prefix}{','.join(fields)} {ts}"


def sample_lines(samples: Iterable[StoredSample], stats: SerializeStats | None = None) -> list[str]:
    return [sample_line(sample, stats) for sample in samples]


@dataclass(slots=True)
class ColumnLines:
    """What :func:`sample_lines_of_columns` made of the rows it was given."""

    lines: list[str]
    """Each row's ``sample`` line, followed by its ``reconfirm`` line where it has one."""
    stored_ts: list[int]
    """The source time of each row written."""
    failed: list[tuple[int, str]]
    """Rows that cannot be written, and why (:class:`LineProtocolError`'s message)."""


def sample_lines_of_columns(
    rows: Sequence[int],
    series: Sequence[Series],
    ts: Sequence[int],
    value: Sequence[SampleValue],
    status: Sequence[int],
    recv: Sequence[int],
    server_ts: Sequence[int | None],
    edge: str,
    seq: int,
    stats: SerializeStats | None = None,
    backfill: Collection[int] = (),
) -> ColumnLines:
    """The lines of an uplink batch's rows ``rows`` (indices into the columns), ``series[k]``
    the tags of ``rows[k]``: :func:`sample_line` and :func:`reconfirm_line` for each row,
    without a :class:`StoredSample` per row (the collector's hot path, measured in
    docs/benchmarks.md, "Collector ingest"). The common case (a finite float or an int
    value, in-range integers) is written inline; anything else goes through
    :func:`sample_line`'s checks. Tests hold the two to the same output. ``backfill``: the
    column indices of samples read from history after a gap."""
    out = ColumnLines([], [], [])
    lines, stored_ts, failed = out.lines, out.stored_ts, out.failed
    edge_field = f"edge={escape_string_field(edge)}"
    tail = f",{edge_field},seq={seq}i"
    if type(seq) is not int or not INT64_MIN <= seq <= INT64_MAX:
        tail = ""  # every row takes the checked path, which names the problem
    prefixes: dict[Series, str] = {}
    reconfirm_age = RECONFIRM_MIN_AGE_NS
    backfilled = frozenset(backfill)
    for k, i in enumerate(rows):
        tags = series[k]
        t, v, st, r, srv = ts[i], value[i], status[i], recv[i], server_ts[i]
        try:
            prefix = prefixes.get(tags)
            if prefix is None:
                prefix = prefixes[tags] = _sample_prefix(*tags)
            kind = type(v)
            if backfilled and i in backfilled:
                where = f"sample {tags[3]}/{tags[4]} at {t}"
                line = _sample_line(prefix, t, v, st, r, srv, edge_field, seq, where, stats, True)
                again = None
            elif (
                tail
                and (kind is float or kind is int)
                and type(t) is int
                and type(st) is int
                and type(r) is int
                and TIME_MIN <= t <= TIME_MAX
                and INT64_MIN <= st <= INT64_MAX
                and TIME_MIN <= r <= TIME_MAX
                and (srv is None or (type(srv) is int and INT64_MIN <= srv <= INT64_MAX))
                and (kind is float or INT64_MIN <= v <= INT64_MAX)  # type: ignore[operator]
            ):
                number: float = v if kind is float else float(v)  # type: ignore[assignment,arg-type]
                if number - number == 0.0:  # finite
                    head = f"{prefix}value={number!r},status={st}i,recv_ns={r}i"
                else:
                    if stats is not None:
                        stats.nonfinite_fields += 1
                    head = f"{prefix}status={st}i,recv_ns={r}i"
                line = f"{head}{tail} {t}" if srv is None else f"{head},server_ns={srv}i{tail} {t}"
                again = (
                    f"{_RECONFIRM}{prefix[_SAMPLE_NAME_CHARS:]}of_ns={t}i,status={st}i {r}"
                    if r - t >= reconfirm_age
                    else None
                )
            else:
                where = f"sample {tags[3]}/{tags[4]} at {t}"
                counted = SerializeStats()  # kept only if the row is written
                line = _sample_line(prefix, t, v, st, r, srv, edge_field, seq, where, counted)
                again = _reconfirm_line(prefix, t, st, r, where)
                if stats is not None:
                    stats.nonfinite_fields += counted.nonfinite_fields
        except LineProtocolError as exc:
            failed.append((i, str(exc)))
            continue
        lines.append(line)
        if again is not None:
            lines.append(again)
        stored_ts.append(t)
    return out


def _where(sample: StoredSample) -> str:
    # Built only for error messages: this module is on the hot path.
    return f"sample {sample.process}/{sample.signal} at {sample.ts_ns}"


def _int_field(where: str, name: str, value: int) -> str:
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return f"{value}i"
    if isinstance(value, bool) or not isinstance(value, int):
        raise LineProtocolError(f"{where}: field {name} must be an integer, got {value!r}")
    if INT64_MIN <= value <= INT64_MAX:  # an int subclass such as IntEnum
        return f"{int(value)}i"
    raise LineProtocolError(f"{where}: field {name} = {value} does not fit in int64")


# -- liveness -----------------------------------------------------------------------------


def reconfirm_line(sample: StoredSample) -> str | None:
    """The ``reconfirm`` point of a sample received long after its source time, else None.

    Stamped with the receive time, so each receipt of a re-sent value is a point of its
    own: ``of_ns`` names the sample (its source time) it re-confirms."""
    prefix = _sample_prefix(
        sample.enterprise, sample.plant, sample.line, sample.process, sample.signal
    )
    if sample.backfill:
        return None
    return _reconfirm_line(prefix, sample.ts_ns, sample.status, sample.recv_ns, _where(sample))


def _reconfirm_line(prefix: str, ts: int, status: int, recv: int, where: str) -> str | None:
    if recv - ts < RECONFIRM_MIN_AGE_NS:
        return None
    fields = f"of_ns={_int_field(where, 'ts', ts)},status={_int_field(where, 'status', status)}"
    _check_time(recv, where)
    return f"{_RECONFIRM}{prefix[_SAMPLE_NAME_CHARS:]}{fields} {recv}"


def replica_line(replica: int, replicas: int, ts_ns: int) -> str:
    """The heartbeat of KPI replica ``replica`` (of ``replicas``): it evaluates its share."""
    line = point_line(KPI_REPLICA.name, {"replica": str(replica)}, {"replicas": replicas}, ts_ns)
    assert line is not None  # integer fields are always storable
    return line


def watermark_line(
    enterprise: str, plant: str, edge: str, complete_until: int, boot: int, seq: int
) -> str:
    """The ``watermark`` point of one batch: stamped with the edge's ``complete_until``."""
    line = point_line(
        WATERMARK.name,
        {"enterprise": enterprise, "plant": plant, "edge": edge},
        {"boot": boot, "seq": seq},
        complete_until,
    )
    assert line is not None  # integer fields are always storable
    return line


@dataclass(frozen=True, slots=True)
class StoredLiveness:
    """A source (or the edge agent, source ``_edge``) went up or down at ``ts_ns``.

    For the edge agent's own births and deaths, ``boot``, ``link`` and ``shutdown`` come
    from its state message (``common.wire.EdgeState``); 0/0/False elsewhere."""

    enterprise: str
    plant: str
    source: str
    ts_ns: int
    up: bool
    detail: str
    edge: str
    boot: int = 0
    link: int = 0
    shutdown: bool = False


def liveness_line(event: StoredLiveness) -> str:
    fields: dict[str, FieldValue] = {
        "up": bool(event.up),
        "detail": event.detail,
        "edge": event.edge,
    }
    if event.boot:
        fields.update(boot=event.boot, link=event.link, shutdown=bool(event.shutdown))
    line = point_line(
        LIVENESS.name,
        {"enterprise": event.enterprise, "plant": event.plant, "source": event.source},
        fields,
        event.ts_ns,
    )
    assert line is not None  # bool, int and string fields are always storable
    return line


def liveness_lines(
    enterprise: str, plant: str, edge: str, events: Iterable[LivenessEvent]
) -> list[str]:
    """Lines for the liveness events of one uplink batch."""
    return [
        liveness_line(StoredLiveness(enterprise, plant, e.source, e.ts, e.up, e.detail, edge))
        for e in events
    ]
