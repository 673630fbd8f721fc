"""Typed storage errors: what went wrong decides what the caller does with the data.

- :class:`WriteUnavailable`: the server could not be reached, timed out or answered 5xx.
  Retry later; keep the data (do not acknowledge the uplink message).
- :class:`WriteRejected`: the server refused the content (400, e.g. a field type
  conflict). Retrying the same lines cannot succeed; dead-letter them with the message.
- :class:`DatabaseMissing`: the database/bucket or retention policy does not exist (404).
  A configuration problem: keep the data, alert, create the database.
- :class:`WriteUnauthorized`: credentials refused (401/403). Configuration again.

Writing the same lines again is always safe: a point with the same series and timestamp
overwrites itself, so a retry after a partly successful write duplicates nothing.
"""

from __future__ import annotations

import json
import re

_CONFLICT = re.compile(
    r'field type conflict: input field "(?P<field>[^"]+)" on measurement "(?P<measurement>[^"]+)"'
    r" is type (?P<new>\w+), already exists as type (?P<old>\w+)"
)
_INVALID_FIELD = re.compile(
    r'input field "(?P<field>[^"]+)" on measurement "(?P<measurement>[^"]+)" is invalid'
)
_UNPARSABLE = re.compile(
    r"unable to parse '(?P<line>.*)': (?P<reason>[^']*?)(?: dropped=\d+)?$", re.S
)
_DROPPED = re.compile(r"dropped=(\d+)")


class StorageError(Exception):
    """Base of storage errors; ``target`` says which server and database."""

    def __init__(self, target: str, message: str):
        self.target = target
        self.message = message
        super().__init__(f"{target}: {message}")


class WriteError(StorageError):
    kind = "error"
    retryable = False

    def __init__(self, target: str, message: str, *, status: int | None = None):
        super().__init__(target, message)
        self.status = status
        self.written = 0
        """Lines of the same ``write()`` call confirmed stored before this error."""


class WriteUnavailable(WriteError):
    kind = "unavailable"
    retryable = True


class DatabaseMissing(WriteError):
    kind = "database_missing"


class WriteUnauthorized(WriteError):
    kind = "unauthorized"


class WriteRejected(WriteError):
    """The server refused the lines. With InfluxDB a 400 may be a *partial* write: the
    valid points of the request were stored and ``dropped`` were not."""

    kind = "rejected"

    def __init__(self, target: str, status: int, server_message: str):
        self.server_message = server_message
        self.bad_line: str | None = None
        """The first line the server could not parse, when it names one."""
        self.measurement: str | None = None
        self.field: str | None = None
        """Measurement and field of a field type conflict or invalid field."""
        self.existing_type: str | None = None
        self.written_type: str | None = None
        self.dropped: int | None = None
        detail = server_message
        conflict = _CONFLICT.search(server_message)
        invalid = _INVALID_FIELD.search(server_message)
        unparsable = _UNPARSABLE.search(server_message)
        if conflict:
            self.measurement, self.field = conflict["measurement"], conflict["field"]
            self.existing_type, self.written_type = conflict["old"], conflict["new"]
            detail = (
                f"field type conflict on measurement {self.measurement!r}, field {self.field!r}: "
                f"stored as {self.existing_type}, this write has {self.written_type} "
                f"(server: {server_message})"
            )
        elif invalid:
            self.measurement, self.field = invalid["measurement"], invalid["field"]
            detail = (
                f"invalid field {self.field!r} on measurement {self.measurement!r} "
                f"(server: {server_message})"
            )
        elif unparsable:
            self.bad_line = unparsable["line"]
            detail = f"cannot parse line {self.bad_line!r}: {unparsable['reason']}"
        dropped = _DROPPED.search(server_message)
        if dropped:
            self.dropped = int(dropped.group(1))
        super().__init__(target, f"write rejected ({status}): {detail}", status=status)


class QueryError(StorageError):
    """An InfluxQL query failed; the message includes the query text."""

    def __init__(self, target: str, query: str, message: str, *, status: int | None = None):
        self.query = query
        self.status = status
        super().__init__(target, f"query failed: {message}\n  query: {query}")


class QueryUnavailable(QueryError):
    """The server could not be reached, timed out or answered 5xx. Retry later."""


def server_message(body: bytes | str | None, fallback: str) -> str:
    """The error text of an InfluxDB response: 1.x ``{"error"}``, 2.x ``{"message"}``."""
    if not body:
        return fallback
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:2000] or fallback
    if isinstance(data, dict):
        for key in ("error", "message"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return text.strip()[:2000]


def classify_write_failure(target: str, status: int, message: str) -> WriteError:
    """Turn a non-2xx write answer into the typed error the caller acts on."""
    if status == 404 or "database not found" in message or "bucket not found" in message:
        return DatabaseMissing(target, f"database not found ({status}): {message}", status=status)
    if "retention policy not found" in message:
        # influxd 1.x answers 500 here, but waiting will not create the policy.
        return DatabaseMissing(
            target,
            f"retention policy not found ({status}): {message}; create it with "
            "CREATE RETENTION POLICY or leave retention_policy unset",
            status=status,
        )
    if status in (401, 403):
        return WriteUnauthorized(
            target, f"credentials refused ({status}): {message}", status=status
        )
    if status >= 500 or status in (408, 429):
        return WriteUnavailable(target, f"server error ({status}): {message}", status=status)
    return WriteRejected(target, status, message)
