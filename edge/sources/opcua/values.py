"""Turn an OPC UA DataValue into sample fields, keeping what the server said.

The raw status code is kept as it came; a value is never invented. Types that are not a
scalar the storage can hold (arrays, structures) are rejected with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

from asyncua import ua

from common.limits import value_problem
from common.timestamps import datetime_to_ns
from common.wire import Value


class UnsupportedValue(ValueError):
    pass


_MIN_VALID = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_VALID = datetime(2200, 1, 1, tzinfo=UTC)


def to_ns(moment: datetime | None) -> int | None:
    """Nanoseconds since the epoch; None for a missing timestamp or OPC UA's min/max
    sentinels (some servers send 9999-12-31 as "no server timestamp")."""
    if moment is None:
        return None
    if moment.tzinfo is None:  # asyncua returns naive UTC datetimes
        moment = moment.replace(tzinfo=UTC)
    if not _MIN_VALID < moment < _MAX_VALID:
        return None
    return datetime_to_ns(moment)


def scalar(value: object) -> Value:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, datetime):
        return to_ns(value)
    if isinstance(value, bytes):
        raise UnsupportedValue("ByteString values are not stored")
    if isinstance(value, list):
        raise UnsupportedValue(f"array values are not stored (got {len(value)} elements)")
    raise UnsupportedValue(f"{type(value).__name__} values are not stored")


def sample_fields(dv: ua.DataValue, recv_ns: int) -> tuple[int, Value, int, int | None]:
    """(source ts, value, status code, server ts) of a DataValue received at ``recv_ns``."""
    status = dv.StatusCode.value if dv.StatusCode is not None else 0
    value = scalar(dv.Value.Value) if dv.Value is not None else None
    # The rules the collector applies (docs/hostile-input.md), applied here as well: a
    # lone surrogate in a string would make the whole uplink batch unencodable.
    problem = value_problem(value)
    if problem is not None:
        raise UnsupportedValue(problem.message)
    server_ts = to_ns(dv.ServerTimestamp)
    source_ts = to_ns(dv.SourceTimestamp) or server_ts or recv_ns
    return source_ts, value, status, server_ts
