"""A Modbus source in a register: read by the agent as its protocol builds it, and a
wrong field named with its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.register_loader import RegisterError, parse_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources.modbus.source import ModbusTcpSource
from tests import registers


def modbus_document(**signal_fields: Any) -> dict[str, Any]:
    source = {"id": "plc", "kind": "modbus", "endpoint": "modbus://10.0.0.7"}
    signals = [
        registers.sig(
            "state",
            "state",
            "plc",
            "on_change",
            table="holding",
            address=0,
            type="string",
            length=4,
        ),
        registers.sig("force", source="plc", address=10, type="float32", **signal_fields),
    ]
    process = registers.process("press", signals)
    plant = registers.plant("p1", [source], [registers.line("l1", [process])])
    return registers.document([plant])


def test_the_agent_builds_a_modbus_reader_with_the_endpoint_override(tmp_path: Path) -> None:
    path = registers.write(tmp_path, modbus_document())
    settings = EdgeSettings(
        _env_file=None,
        register_file=path,
        plant="p1",
        endpoints={"plc": "modbus://127.0.0.1:5020"},
        buffer_dir=tmp_path / "buffer",
    )
    (source,) = build_sources(parse_register(path.read_bytes(), path), settings)
    assert isinstance(source, ModbusTcpSource)
    assert (source.host, source.port) == ("127.0.0.1", 5020)
    assert [(p.process, p.signal, p.device_id) for p in source.points] == [
        ("press", "state", 1),
        ("press", "force", 1),
    ]
    assert [(r.address, r.count) for r, _ in source.reads] == [(0, 12)]  # a gap of 6 ≤ 8: one read


def test_an_opcua_endpoint_override_for_a_modbus_source_fails_at_start(tmp_path: Path) -> None:
    path = registers.write(tmp_path, modbus_document())
    settings = EdgeSettings(
        _env_file=None, register_file=path, plant="p1", endpoints={"plc": "opc.tcp://h:4840"}
    )
    with pytest.raises(ValueError, match="is not modbus://host"):
        build_sources(parse_register(path.read_bytes(), path), settings)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"table": "coil"}, "force", "its type is bool, not float32"),
        ({"adress": 4}, "adress", "unknown key"),
        ({"node": "ns=2;s=X"}, "node", "unknown key"),  # OPC UA's, not Modbus's
    ],
)
def test_a_wrong_modbus_field_is_named_with_its_line(
    fields: dict[str, object], field: str, reason: str
) -> None:
    text = registers.to_yaml(modbus_document(**fields))
    with pytest.raises(RegisterError) as caught:
        parse_register(text.encode(), Path("plant.yaml"))
    message = str(caught.value)
    assert "plant.yaml:" in message and reason in message, message
    if field != "force":
        line = next(n for n, row in enumerate(text.splitlines(), 1) if f"{field}:" in row)
        assert f"plant.yaml:{line}: plants[0].lines[0].processes[0].signals[1].{field}" in message
