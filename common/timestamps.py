"""Datetimes and integer nanoseconds since the Unix epoch (UTC), converted exactly.

``datetime.timestamp()`` is a float: it cannot hold a nanosecond timestamp of this century
exactly, and a window edge one ns off puts a sample in the wrong window. So whole seconds
and microseconds are counted in integers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_to_ns(moment: datetime) -> int:
    """``moment`` (timezone-aware) in ns since the epoch, exactly."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def ns_to_datetime(ts_ns: int) -> datetime:
    """The UTC datetime of ``ts_ns``, to the microsecond (what a datetime holds)."""
    return EPOCH + timedelta(microseconds=ts_ns // 1000)
