"""Parse one device payload into sample fields. Pure: no I/O, unit-tested on its own.

Accepted: a JSON object with the value at ``path`` (dotted; ``.`` means the whole payload),
an optional source timestamp at ``timestamp_path`` (a number since the epoch — seconds,
milliseconds, microseconds or nanoseconds, told apart by magnitude — or ISO 8601) and an
optional quality at ``quality_path`` (``good``/``uncertain``/``bad``/``override`` or an OPC UA
status code). A plain payload (``21.5``, ``true``, ``RUNNING``) is read with ``path: .``.
A signal that declares ``value_type`` (number, boolean, string) refuses other values.

Hostile input is refused with a :class:`PayloadError`, never another exception (see
docs/hostile-input.md): non-UTF-8 bytes, duplicate keys, nesting too deep for the parser,
numbers with thousands of digits, NaN/±inf (Python's json accepts the ``NaN`` and
``Infinity`` tokens), integers beyond int64, strings longer than the limit or holding lone
surrogates, and timestamps before 1970 or too far ahead of the receive time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.limits import (
    DEVICE_PAYLOAD_MAX_BYTES,
    FUTURE_TOLERANCE_S,
    STRING_MAX_CHARS,
    shown,
    timestamp_problem,
    value_problem,
)
from common.quality import GOOD, classify, status_from_label
from common.wire import Value

MAX_STRING = STRING_MAX_CHARS


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    """What one device message may be (settings ``EDGE_DEVICE_*``)."""

    payload_bytes: int = DEVICE_PAYLOAD_MAX_BYTES
    string_chars: int = STRING_MAX_CHARS
    future_tolerance_s: float = FUTURE_TOLERANCE_S


DEFAULT_LIMITS = DeviceLimits()


class PayloadError(ValueError):
    """The payload cannot become a sample; the message says which part and why, ``rule``
    which kind of problem (counted per source in its health report)."""

    def __init__(self, message: str, rule: str = "payload") -> None:
        super().__init__(message)
        self.rule = rule


EARLIEST_PLAUSIBLE_NS = 946_684_800 * 1_000_000_000
"""2000-01-01: a device time before it is a unit or clock error (seconds since boot, a
PLC that lost its clock), never a reading to store as if it happened then."""
_UNIT_BOUNDS = ((1e11, 1_000_000_000), (1e14, 1_000_000), (1e17, 1_000), (math.inf, 1))
"""Numeric timestamps by magnitude: below 1e11 seconds (1e11 ms would be 1973), below 1e14
milliseconds, below 1e17 microseconds, else nanoseconds."""


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(key)
        document[key] = value
    return document


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)
"""One decoder: ``json.loads`` with a hook builds a new one per call (measured, 2 % of
the edge's CPU in a device burst)."""


def _loads(text: str) -> Any:
    """JSON, refusing what Python's json would accept but a device cannot mean."""
    return _DECODER.decode(text)


def oversize_reason(size: int, limits: DeviceLimits) -> str:
    return (
        f"payload of {size} bytes exceeds the limit of {limits.payload_bytes} "
        "(EDGE_DEVICE_PAYLOAD_MAX_BYTES); not read"
    )


def lookup(document: Any, path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted ``path`` of a decoded payload (``.``: all of it)."""
    if path == ".":
        return True, document
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _scale(size: float) -> int:
    for bound, scale in _UNIT_BOUNDS:
        if size < bound:
            return scale
    return 1


def _timestamp_ns(raw: Any) -> int:
    if isinstance(raw, bool):
        raise PayloadError(f"timestamp {raw!r} is not a time", "ts_format")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise PayloadError(f"timestamp {raw!r} is not a time", "ts_format")
        scale = _scale(abs(raw))
        # Integers exactly (no float rounding of ns); a float can still overflow here.
        ns = raw * scale
        if not (math.isfinite(ns) and -(2**63) < ns < 2**63):
            raise PayloadError(f"timestamp {shown(raw)} is not a time", "ts_format")
        return int(ns)
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        except (ValueError, OverflowError):
            raise PayloadError(
                f"timestamp {shown(raw)} is not ISO 8601 or a number since the epoch",
                "ts_format",
            ) from None
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    raise PayloadError(f"timestamp {shown(raw)} is not a time", "ts_format")


_TYPES: dict[str, tuple[type, ...]] = {"number": (int, float), "boolean": (bool,), "string": (str,)}


def _type_problem(value: Value, value_type: str | None) -> str | None:
    if value_type is None or value is None:
        return None
    wanted = _TYPES[value_type]
    if isinstance(value, bool) and bool not in wanted:
        return f"a boolean where the register declares {value_type}"
    if not isinstance(value, wanted):
        return f"a {type(value).__name__} where the register declares {value_type}"
    return None


def parse_payload(
    payload: bytes,
    *,
    path: str,
    timestamp_path: str | None,
    quality_path: str | None,
    recv_ns: int,
    limits: DeviceLimits = DEFAULT_LIMITS,
    value_type: str | None = None,
) -> tuple[int, Value, int]:
    """Return (source ts ns, value, status code) or raise PayloadError."""
    document = decode_payload(payload, plain=path == ".", limits=limits)
    return read_reading(
        document,
        path=path,
        timestamp_path=timestamp_path,
        quality_path=quality_path,
        recv_ns=recv_ns,
        limits=limits,
        value_type=value_type,
    )


class NotJson:
    """A payload that is not JSON, kept as its text for signals that read it whole
    (``path: .``); any other path on it is "not JSON"."""

    def __init__(self, text: str) -> None:
        self.text = text


def decode_payload(payload: bytes, *, plain: bool, limits: DeviceLimits = DEFAULT_LIMITS) -> Any:
    """The payload's JSON document (decoded once for every signal of its topic); a payload
    that is not JSON is a PayloadError unless ``plain`` (a signal reads it whole)."""
    if len(payload) > limits.payload_bytes:
        raise PayloadError(oversize_reason(len(payload), limits))
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"payload is not UTF-8 text (byte {exc.start})") from None
    try:
        return _loads(text)
    except _DuplicateKey as exc:
        raise PayloadError(f"payload repeats the key {shown(str(exc))}") from None
    except json.JSONDecodeError:
        if not plain:
            raise PayloadError(f"payload is not JSON (starts {text[:40]!r})") from None
        return NotJson(text.strip())
    except RecursionError:
        raise PayloadError("payload is nested too deeply") from None
    except ValueError as exc:  # int() refuses numbers of more than 4300 digits
        raise PayloadError(f"payload holds a number the parser refuses: {exc}") from None


def selected(document: Any, select: Mapping[str, object]) -> bool:
    """Whether a decoded payload is for a signal that ``select``s its messages by payload
    fields (one topic carrying several signals, each message naming its own)."""
    for field_path, wanted in select.items():
        found, value = lookup(document, field_path) if isinstance(document, dict) else (False, None)
        if not found or value != wanted or isinstance(value, bool) != isinstance(wanted, bool):
            return False
    return True


def read_reading(
    document: Any,
    *,
    path: str,
    timestamp_path: str | None,
    quality_path: str | None,
    recv_ns: int,
    limits: DeviceLimits = DEFAULT_LIMITS,
    value_type: str | None = None,
) -> tuple[int, Value, int]:
    """One signal's (source ts ns, value, status code) from a decoded payload, or
    PayloadError."""
    if isinstance(document, NotJson):
        if path != ".":
            raise PayloadError(f"payload is not JSON (starts {document.text[:40]!r})")
        document = document.text

    found, value = lookup(document, path)
    if not found:
        raise PayloadError(f"payload has no value at {path!r}", "no_value")
    if isinstance(value, dict | list):
        raise PayloadError(
            f"value at {path!r} is a {type(value).__name__}, not a number/bool/string"
        )
    problem = value_problem(value, limits.string_chars)
    if problem is not None:
        raise PayloadError(f"value at {path!r}: {problem.message}", problem.rule)
    wrong_type = _type_problem(value, value_type)
    if wrong_type is not None:
        raise PayloadError(f"value {shown(value)} at {path!r}: {wrong_type}", "value_type")

    status = GOOD
    if quality_path is not None and isinstance(document, dict):
        found_q, quality = lookup(document, quality_path)
        if found_q:
            try:
                status = status_from_label(quality)
            except ValueError:
                raise PayloadError(
                    f"quality {shown(quality)} is not a known label or a 32-bit status code"
                ) from None
    if value is None and classify(status).value == "good":
        raise PayloadError(f"value at {path!r} is null with good quality")

    ts = recv_ns
    if timestamp_path is not None and isinstance(document, dict):
        found_t, raw_ts = lookup(document, timestamp_path)
        if found_t and raw_ts is not None:
            ts = _timestamp_ns(raw_ts)
            bad_ts = timestamp_problem(ts, recv_ns, limits.future_tolerance_s)
            if bad_ts is not None:
                raise PayloadError(f"timestamp {shown(raw_ts)}: {bad_ts.message}", bad_ts.rule)
            if ts < EARLIEST_PLAUSIBLE_NS:
                raise PayloadError(
                    f"timestamp {shown(raw_ts)} reads as {_iso(ts)}, before 2000: a unit or "
                    "clock error of the device (seconds since boot?), not stored",
                    "ts_implausible",
                )
    parsed: Value = value
    return ts, parsed, status


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
