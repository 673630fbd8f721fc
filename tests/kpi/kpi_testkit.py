"""Builders for small registers and hand-made sample series used by the KPI tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from collector.kpi import SignalSamples, Thresholds, Window
from common.quality import GOOD
from common.register_loader import LoadedRegister, parse_register

S = 1_000_000_000
"""One second in ns."""
T0 = 1_795_852_800 * S
"""2026-11-28T08:00:00Z: window starts are offsets from here."""


def at(seconds: float) -> int:
    return T0 + round(seconds * S)


def window(start_s: float = 0, end_s: float = 100) -> Window:
    return Window(at(start_s), at(end_s))


DEFAULTS = Thresholds()

NO_SECURITY = {"policy": "None", "mode": "None"}
"""The simulated sources of these unit tests run without OPC UA security."""

SOURCES = [
    {"id": "opc", "kind": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840", "security": NO_SECURITY},
    {
        "id": "opc2",
        "kind": "opcua",
        "endpoint": "opc.tcp://127.0.0.1:4841",
        "security": NO_SECURITY,
    },
    {"id": "dev", "kind": "mqtt", "broker": "mqtt://127.0.0.1:1883"},
]


def sig(
    signal_id: str,
    role: str = "parameter",
    source: str | None = "opc",
    update: str = "periodic",
    interval: str = "1s",
    **extra: Any,
) -> dict[str, Any]:
    """A signal entry; OPC UA node ids are made up from the signal id."""
    out: dict[str, Any] = {"id": signal_id, "role": role, "interval": interval, "update": update}
    if source is not None:
        out["source"] = source
    if source in ("opc", "opc2"):
        out["node"] = f"ns=2;s={signal_id}"
    elif source == "dev":
        out["topic"] = f"devices/{signal_id}"
    out.update(extra)
    return out


def healthy_signals() -> list[dict[str, Any]]:
    """An on-change state signal and a periodic key parameter, both on source ``opc``."""
    return [sig("state", role="state", update="on_change"), sig("speed")]


def process(
    process_id: str = "p1",
    signals: list[dict[str, Any]] | None = None,
    key: bool = True,
    industry: str = "discrete",
) -> dict[str, Any]:
    return {
        "id": process_id,
        "name": process_id,
        "key": key,
        "industry": industry,
        "signals": healthy_signals() if signals is None else signals,
    }


def register(
    processes: list[dict[str, Any]] | None = None,
    *,
    downtime: list[dict[str, str]] | None = None,
    lines: list[dict[str, Any]] | None = None,
    enterprise: str = "ent",
    region: str = "Shanxi",
    version: str | None = "v1",
) -> LoadedRegister:
    """One plant ``pl`` with sources opc/opc2/dev; one line ``l1`` unless ``lines`` given."""
    if lines is None:
        line: dict[str, Any] = {
            "id": "l1",
            "processes": processes if processes is not None else [process()],
        }
        if downtime:
            line["downtime"] = downtime
        lines = [line]
    doc: dict[str, Any] = {
        "enterprise": {"id": enterprise, "region": region, "above_designated_size": True},
        "plants": [{"id": "pl", "sources": SOURCES, "lines": lines}],
    }
    if version is not None:
        doc["version"] = version
    return parse_register(yaml.safe_dump(doc).encode(), Path(f"{enterprise}.yaml"))


def series(
    start_s: float,
    end_s: float,
    every_s: float = 1.0,
    status: int = GOOD,
    value: Any = 1.0,
) -> SignalSamples:
    """Samples every ``every_s`` seconds from ``start_s`` (inclusive) to ``end_s`` (exclusive)."""
    ts: list[int] = []
    t = at(start_s)
    end = at(end_s)
    step = round(every_s * S)
    while t < end:
        ts.append(t)
        t += step
    return SignalSamples(ts, [status] * len(ts), [value] * len(ts))


def points(*items: tuple[float, int] | tuple[float, int, Any]) -> SignalSamples:
    """Samples at given offsets: ``(seconds, status)`` or ``(seconds, status, value)``."""
    ts = [at(item[0]) for item in items]
    status = [item[1] for item in items]
    value = [item[2] if len(item) > 2 else 1.0 for item in items]
    return SignalSamples(ts, status, value)


def concat(*parts: SignalSamples) -> SignalSamples:
    ts: list[int] = []
    status: list[int] = []
    value: list[Any] = []
    for part in parts:
        ts += part.ts
        status += part.status
        value += part.value
    return SignalSamples(ts, status, value)


def on_change_state(start_s: float = -10.0, value: Any = "RUNNING") -> SignalSamples:
    """One good state sample before the window: held for the whole window."""
    return points((start_s, GOOD, value))


def iso(seconds: float) -> str:
    """The instant ``at(seconds)`` as ISO 8601 text for register downtime entries."""
    return (datetime(2026, 11, 28, 8, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()
