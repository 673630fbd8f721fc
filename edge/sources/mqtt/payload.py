"""Parse one device payload into sample fields. Pure: no I/O, unit-tested on its own.

Accepted: a JSON object with the value at ``path`` (dotted; ``.`` means the whole payload),
an optional source timestamp at ``timestamp_path`` (ms since the epoch, or ISO 8601) and an
optional quality at ``quality_path`` (``good``/``uncertain``/``bad``/``override`` or an OPC UA
status code). A plain payload (``21.5``, ``true``, ``RUNNING``) is read with ``path: .``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from common.quality import GOOD, classify, status_from_label
from common.wire import Value

MAX_STRING = 1024


class PayloadError(ValueError):
    """The payload cannot become a sample; the message says which part and why."""


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    if path == ".":
        return True, document
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _timestamp_ns(raw: Any) -> int:
    if isinstance(raw, bool):
        raise PayloadError(f"timestamp {raw!r} is not a time")
    if isinstance(raw, int | float):
        if not math.isfinite(raw) or raw < 0:
            raise PayloadError(f"timestamp {raw!r} is not a time")
        return int(raw * 1_000_000)  # milliseconds since the epoch
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError(f"timestamp {raw!r} is not ISO 8601 or ms since epoch") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1_000_000) * 1000
    raise PayloadError(f"timestamp {raw!r} is not a time")


def parse_payload(
    payload: bytes,
    *,
    path: str,
    timestamp_path: str | None,
    quality_path: str | None,
    recv_ns: int,
) -> tuple[int, Value, int]:
    """Return (source ts ns, value, status code) or raise PayloadError."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        if path != ".":
            raise PayloadError(f"payload is not JSON (starts {text[:40]!r})") from None
        document = text.strip()

    found, value = _lookup(document, path)
    if not found:
        raise PayloadError(f"payload has no value at {path!r}")
    if isinstance(value, dict | list):
        raise PayloadError(
            f"value at {path!r} is a {type(value).__name__}, not a number/bool/string"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadError(f"value at {path!r} is {value}, which cannot be stored")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise PayloadError(f"string value at {path!r} is longer than {MAX_STRING} characters")

    status = GOOD
    if quality_path is not None and isinstance(document, dict):
        found_q, quality = _lookup(document, quality_path)
        if found_q:
            try:
                status = status_from_label(quality)
            except ValueError as exc:
                raise PayloadError(str(exc)) from None
    if value is None and classify(status).value == "good":
        raise PayloadError(f"value at {path!r} is null with good quality")

    ts = recv_ns
    if timestamp_path is not None and isinstance(document, dict):
        found_t, raw_ts = _lookup(document, timestamp_path)
        if found_t and raw_ts is not None:
            ts = _timestamp_ns(raw_ts)
    parsed: Value = value
    return ts, parsed, status
