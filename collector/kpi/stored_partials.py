"""Hourly partials of every key process, stored once final, so reports need no raw read.

Once every slice of an hour is final (``collector/kpi/live.py``), the live loop stores the
hour's partial of each key process as a ``kpi_partial`` point (docs/schema.md). A report
window on the hour grid (an hour, a shift, a day) is then the combination of its hours'
partials, finalised with the rules (``evaluator.finalize``) — exactly what a one-pass
evaluation of the raw samples gives, as the partials combine exactly. A window with an
hour missing, or stored under another register or other thresholds, is computed from the
raw samples instead.
"""

from __future__ import annotations

import json
from typing import Any

from collector.kpi.partials import ProcessPartial, SignalPartial
from collector.storage.lineprotocol import point_line
from collector.storage.schema import KPI_PARTIAL

__all__ = ["HOUR_NS", "decode_partial", "partial_line"]

HOUR_NS = 3600 * 1_000_000_000


def partial_line(
    enterprise: str,
    plant: str,
    process: str,
    hour_start_ns: int,
    partial: ProcessPartial,
    register_digest: str,
    thresholds: str,
) -> str:
    fields: dict[str, Any] = {
        "signals": json.dumps([list(s) for s in partial.signals], separators=(",", ":")),
        "register_digest": register_digest,
        "thresholds": thresholds,
    }
    if partial.manual_ns is not None:
        fields["manual_ns"] = partial.manual_ns
    line = point_line(
        KPI_PARTIAL.name,
        {"enterprise": enterprise, "plant": plant, "process": process},
        fields,
        hour_start_ns,
    )
    assert line is not None  # string and integer fields are always storable
    return line


def decode_partial(fields: dict[str, Any]) -> ProcessPartial:
    """The partial of a stored point's fields. Raises ValueError on a damaged point."""
    try:
        signals = tuple(_signal(values) for values in json.loads(fields["signals"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"unreadable kpi_partial point: {exc}") from None
    manual = fields.get("manual_ns")
    return ProcessPartial(signals, None if manual is None else int(manual))


def _signal(values: list[Any]) -> SignalPartial:
    good, overridden, uncertain, bad, samples, head, tail, longest, whole, end = values
    return SignalPartial(
        int(good),
        int(overridden),
        int(uncertain),
        int(bad),
        int(samples),
        int(head),
        int(tail),
        int(longest),
        bool(whole),
        int(end),
    )
