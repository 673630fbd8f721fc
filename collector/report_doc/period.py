"""The report's period: a calendar month, quarter or year around a date, the trend's bucket
(a day, or a week for periods longer than about three months) and the files' names."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

__all__ = [
    "DAILY_MAX_DAYS",
    "Bucket",
    "CalendarPeriod",
    "bucket_of",
    "calendar_period",
    "file_stem",
    "local_midnight",
    "stamp",
]

CalendarPeriod = Literal["month", "quarter", "year"]
Bucket = Literal["day", "week"]

S = 1_000_000_000
DAY_NS = 86400 * S
WEEK_NS = 7 * DAY_NS
DAILY_MAX_DAYS = 92
"""Up to this many days (a quarter) the trend is per day; longer periods per week."""
_MONDAY_NS = 4 * DAY_NS
"""The epoch was a Thursday: weeks on InfluxDB's grid start on Mondays with this offset."""


def calendar_period(moment: datetime, period: CalendarPeriod) -> tuple[datetime, datetime]:
    """``[start, end)`` of the calendar month / quarter / year that contains ``moment``, in
    ``moment``'s own time zone (``2026-11-05T10:00+08:00``, month → November 1st 00:00
    +08:00 to December 1st 00:00 +08:00)."""
    if period == "month":
        first_month, months = moment.month, 1
    elif period == "quarter":
        first_month, months = (moment.month - 1) // 3 * 3 + 1, 3
    else:
        first_month, months = 1, 12
    start = moment.replace(month=first_month, day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = divmod(first_month - 1 + months, 12)
    return start, start.replace(year=start.year + year, month=month + 1)


def local_midnight(utc_offset_s: int) -> int:
    """Midnight in a zone ``utc_offset_s`` ahead of UTC, from midnight UTC (ns): -8 h for
    +08:00 (its day starts at 16:00 UTC the day before), +5 h for -05:00."""
    return -utc_offset_s * S


def bucket_of(start_ns: int, end_ns: int, day_offset_ns: int) -> tuple[Bucket, int, int]:
    """The trend's bucket for ``[start, end)``: ``(kind, length ns, offset ns)``, buckets
    ``[k·length + offset, (k+1)·length + offset)`` as InfluxQL's ``GROUP BY time(length,
    offset)``, ``0 <= offset < length``. Days start ``day_offset_ns`` after midnight UTC
    (negative: before it; the report's days start at midnight in the zone the period was
    asked in, :func:`local_midnight`); weeks on the Mondays that start so."""
    if end_ns - start_ns <= DAILY_MAX_DAYS * DAY_NS:
        return "day", DAY_NS, day_offset_ns % DAY_NS
    return "week", WEEK_NS, (_MONDAY_NS + day_offset_ns) % WEEK_NS


def stamp(moment: datetime) -> str:
    """``20261101`` at midnight, else ``20261101T0830``; ``+0800`` after it when the time
    is not UTC (so a name says which day the period starts on where it was asked)."""
    text = moment.strftime("%Y%m%d")
    if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
        text += moment.strftime("T%H%M") + (moment.strftime("%S") if moment.second else "")
    offset = moment.utcoffset() or timedelta(0)
    if offset:
        text += moment.strftime("%z")
    return text


def file_stem(enterprise: str, start: datetime, end: datetime, lang: str) -> str:
    """``plantkpi-report_<enterprise>_<from>_<to>`` (``_zh`` added for Chinese)."""
    suffix = "" if lang == "en" else f"_{lang}"
    return f"plantkpi-report_{enterprise}_{stamp(start)}_{stamp(end)}{suffix}"
