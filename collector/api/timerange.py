"""Time ranges from query parameters: time zone required, ``end > start``, bounded length.

A range error names the parameter (``field``), so a client or the ``kpi`` CLI can say
which of its arguments to fix.
"""

from __future__ import annotations

from datetime import UTC, datetime

from collector.api.errors import bad_range
from common.timestamps import datetime_to_ns, ns_to_datetime

EXAMPLE = "2026-11-28T08:00:00Z"
# InfluxDB stores int64 ns: 1677-09-21 to 2262-04-11. Stay a day inside.
EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
LATEST = datetime(2262, 4, 10, tzinfo=UTC)


def iso(ts_ns: int) -> str:
    """ISO 8601 UTC text of an ns timestamp (microsecond precision)."""
    return ns_to_datetime(ts_ns).isoformat().replace("+00:00", "Z")


def check_range(start: datetime, end: datetime, max_s: float, what: str) -> tuple[int, int]:
    """``(start_ns, end_ns)`` or a 422 ``bad_time_range`` naming the parameter at fault."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise bad_range(f"{name} needs a time zone, e.g. {EXAMPLE}", name)
        if not EARLIEST <= value <= LATEST:
            raise bad_range(f"{name} must be between {EARLIEST.date()} and {LATEST.date()}", name)
    start_ns, end_ns = datetime_to_ns(start), datetime_to_ns(end)
    if end_ns <= start_ns:
        raise bad_range(f"end ({end.isoformat()}) must be after start ({start.isoformat()})", "end")
    if (end_ns - start_ns) / 1e9 > max_s:
        raise bad_range(
            f"{what} covers at most {_days(max_s)}; asked for {_days((end_ns - start_ns) / 1e9)}",
            "end",
        )
    return start_ns, end_ns


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    return f"{seconds / 3600:g} h"
