"""The storage schema: every measurement the collector writes to InfluxDB, its tags and its
fields with their types, declared once.

The line builders (``lineprotocol.py``, ``collector/kpi/service.py``,
``collector/kpi/stored_partials.py``) write these names and the readers
(``reader.py``, ``collector/history.py``, the exports) read them; tests hold both sides and
docs/schema.md to this declaration (``tests/collector/storage/test_schema.py``). A field keeps one
type forever: InfluxDB refuses a write whose field type differs from what a shard holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

FieldType = Literal["float", "integer", "boolean", "string"]


@dataclass(frozen=True)
class Measurement:
    name: str
    tags: tuple[str, ...]
    fields: Mapping[str, FieldType]
    written_by: str
    """Which part of the collector writes it."""

    def fields_of_type(self, kind: FieldType) -> tuple[str, ...]:
        return tuple(name for name, of in self.fields.items() if of == kind)


def _measurement(
    name: str, tags: tuple[str, ...], fields: dict[str, FieldType], written_by: str
) -> Measurement:
    return Measurement(name, tags, MappingProxyType(fields), written_by)


_SERIES = ("enterprise", "plant", "line", "process", "signal")

SAMPLE = _measurement(
    "sample",
    _SERIES,
    {
        "value": "float",
        "value_bool": "boolean",
        "value_str": "string",
        "status": "integer",
        "recv_ns": "integer",
        "server_ns": "integer",
        "edge": "string",
        "seq": "integer",
        "backfill": "boolean",
    },
    "uplink consumer",
)
RECONFIRM = _measurement(
    "reconfirm", _SERIES, {"of_ns": "integer", "status": "integer"}, "uplink consumer"
)
LIVENESS = _measurement(
    "liveness",
    ("enterprise", "plant", "source"),
    {
        "up": "boolean",
        "detail": "string",
        "edge": "string",
        "boot": "integer",
        "link": "integer",
        "shutdown": "boolean",
    },
    "uplink consumer",
)
WATERMARK = _measurement(
    "watermark",
    ("enterprise", "plant", "edge"),
    {"boot": "integer", "seq": "integer"},
    "uplink consumer",
)
PROCESS_STATUS = _measurement(
    "process_status",
    ("enterprise", "plant", "line", "process", "industry"),
    {
        "status": "string",
        "counted": "boolean",
        "reasons": "string",
        "coverage_min": "float",
        "longest_gap_s": "float",
        "manual_share": "float",
        "scheduled_s": "float",
        "window_s": "float",
        "register_version": "string",
        "register_digest": "string",
        "thresholds": "string",
        "evidence": "string",
        "outages": "string",
        "complete": "boolean",
        "revision": "integer",
    },
    "KPI loop",
)
KPI_RATE = _measurement(
    "kpi_rate",
    ("scope", "scope_id", "industry", "enterprise", "plant"),
    {
        "rate": "float",
        "numerator": "integer",
        "denominator": "integer",
        "not_scheduled": "integer",
        "enterprises": "integer",
        "reasons": "string",
        "register_versions": "string",
        "thresholds": "string",
        "window_s": "float",
        "provisional": "integer",
        "revision": "integer",
    },
    "KPI loop",
)
KPI_PARTIAL = _measurement(
    "kpi_partial",
    ("enterprise", "plant", "process"),
    {
        "signals": "string",
        "manual_ns": "integer",
        "register_digest": "string",
        "thresholds": "string",
    },
    "KPI loop",
)
KPI_REPLICA = _measurement("kpi_replica", ("replica",), {"replicas": "integer"}, "KPI loop")

MEASUREMENTS: tuple[Measurement, ...] = (
    SAMPLE,
    RECONFIRM,
    LIVENESS,
    WATERMARK,
    PROCESS_STATUS,
    KPI_RATE,
    KPI_PARTIAL,
    KPI_REPLICA,
)
BY_NAME: Mapping[str, Measurement] = MappingProxyType({m.name: m for m in MEASUREMENTS})
