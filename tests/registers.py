"""The one way tests build a register: a document from small parts, then YAML, a file or a
loaded register.

A test names only what it is about; everything else takes a default that loads: one
enterprise ``ent`` (region Shanxi, above designated size), key discrete processes, signals
with an interval. Helpers that describe one test's plant (``tests/edge/opcua/helpers.py``,
``tests/fault/rig.py``, ``tests/simulators/conftest.py``, …) compose these parts. Only
tests of the loader itself keep their register as YAML text, because the text is what they
check (line numbers in errors, YAML-level limits): ``tests/common/test_register*.py``,
``tests/fuzz/test_fuzz_register.py`` and two line-number cases in ``tests/edge/opcua``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from common.register_base import SourceConfig
from common.register_loader import LoadedRegister, parse_register

NO_SECURITY = {"policy": "None", "mode": "None"}
"""Sources of tests that are not about OPC UA security run without it."""


def opcua_source(
    source_id: str = "opc",
    endpoint: str = "opc.tcp://127.0.0.1:4840",
    *,
    security: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An OPC UA source, without security unless ``security`` says otherwise."""
    return {
        "id": source_id,
        "kind": "opcua",
        "endpoint": endpoint,
        "security": NO_SECURITY if security is None else security,
        **extra,
    }


def mqtt_source(
    source_id: str = "dev", broker: str = "mqtt://127.0.0.1:1883", **extra: Any
) -> dict[str, Any]:
    return {"id": source_id, "kind": "mqtt", "broker": broker, **extra}


SOURCES = [
    opcua_source("opc"),
    opcua_source("opc2", "opc.tcp://127.0.0.1:4841"),
    mqtt_source("dev"),
]
"""The sources of :func:`register`'s plant: two OPC UA servers and a device broker."""


def sig(
    signal_id: str,
    role: str = "parameter",
    source: str | None = "opc",
    update: str = "periodic",
    interval: str = "1s",
    **extra: Any,
) -> dict[str, Any]:
    """A signal entry. On :data:`SOURCES` the address is made up from the signal id
    (``node: ns=2;s=<id>`` on ``opc``/``opc2``, ``topic: devices/<id>`` on ``dev``);
    elsewhere ``extra`` gives it (``node=…``, ``topic=…``)."""
    out: dict[str, Any] = {"id": signal_id, "role": role, "interval": interval, "update": update}
    if source is not None:
        out["source"] = source
    if source in ("opc", "opc2"):
        out["node"] = f"ns=2;s={signal_id}"
    elif source == "dev":
        out["topic"] = f"devices/{signal_id}"
    out.update(extra)
    return out


def healthy_signals(source: str = "opc") -> list[dict[str, Any]]:
    """An on-change state signal and a periodic key parameter (``speed``)."""
    return [
        sig("state", role="state", update="on_change", source=source),
        sig("speed", source=source),
    ]


def process(
    process_id: str = "p1",
    signals: list[dict[str, Any]] | None = None,
    key: bool = True,
    industry: str = "discrete",
    *,
    name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": process_id,
        "name": process_id if name is None else name,
        "key": key,
        "industry": industry,
        "signals": healthy_signals() if signals is None else signals,
    }
    out.update(extra)
    return out


def line(line_id: str, processes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": line_id, "processes": processes, **extra}


def plant(
    plant_id: str, sources: list[dict[str, Any]], lines: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {"id": plant_id, "sources": sources, "lines": lines, **extra}


def document(
    plants: list[dict[str, Any]],
    *,
    enterprise: str = "ent",
    region: str = "Shanxi",
    version: str | None = "v1",
    above_designated_size: bool = True,
    **enterprise_extra: Any,
) -> dict[str, Any]:
    """A register document; ``enterprise_extra`` are more enterprise keys (``name``,
    ``declared_rate``)."""
    doc: dict[str, Any] = {}
    if version is not None:
        doc["version"] = version
    doc["enterprise"] = {
        "id": enterprise,
        "region": region,
        "above_designated_size": above_designated_size,
        **enterprise_extra,
    }
    doc["plants"] = plants
    return doc


def to_yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def write(folder: Path, doc: dict[str, Any], name: str = "register.yaml") -> Path:
    path = folder / name
    path.write_text(to_yaml(doc), encoding="utf-8")
    return path


def load(doc: dict[str, Any], name: str | None = None) -> LoadedRegister:
    """Parsed as the services parse a file (``<enterprise id>.yaml`` unless ``name``)."""
    return parse_register(to_yaml(doc).encode(), Path(name or f"{doc['enterprise']['id']}.yaml"))


def register(
    processes: list[dict[str, Any]] | None = None,
    *,
    downtime: list[dict[str, str]] | None = None,
    lines: list[dict[str, Any]] | None = None,
    enterprise: str = "ent",
    region: str = "Shanxi",
    version: str | None = "v1",
) -> LoadedRegister:
    """One plant ``pl`` with :data:`SOURCES`; one line ``l1`` unless ``lines`` given."""
    if lines is None:
        first = line("l1", processes if processes is not None else [process()])
        if downtime:
            first["downtime"] = downtime
        lines = [first]
    doc = document(
        [plant("pl", SOURCES, lines)], enterprise=enterprise, region=region, version=version
    )
    return load(doc)


def unreachable(
    sources: Iterable[SourceConfig], port: int
) -> tuple[dict[str, str], dict[str, str]]:
    """Endpoint and broker overrides that point every source at ``port`` on the loopback,
    each in its own scheme (a closed port: an edge whose equipment cannot be reached)."""
    endpoints, brokers = {}, {}
    for source in sources:
        if source.kind == "mqtt":
            brokers[source.id] = f"mqtt://127.0.0.1:{port}"
        else:
            scheme = urlsplit(str(getattr(source, "endpoint", ""))).scheme
            endpoints[source.id] = f"{scheme}://127.0.0.1:{port}"
    return endpoints, brokers
