"""An S7 source in a register: addresses parsed as STEP 7 writes them, types checked
against them, read by the agent as its protocol builds it, and a wrong field named with its
file and line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common.protocols.s7 import AREAS, S7Address, S7SignalBinding, S7Source, parse_address
from common.register_loader import RegisterError, parse_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources.s7.source import S7Source as S7Reader
from tests import registers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DB1.DBD4", S7Address(AREAS["DB"], 1, 4, None, 4)),
        ("db12.dbx3.7", S7Address(AREAS["DB"], 12, 3, 7, 0)),
        ("DB2.DBW10", S7Address(AREAS["DB"], 2, 10, None, 2)),
        ("DB2.DBB0", S7Address(AREAS["DB"], 2, 0, None, 1)),
        ("M10.5", S7Address(AREAS["M"], 0, 10, 5, 0)),
        ("MW20", S7Address(AREAS["M"], 0, 20, None, 2)),
        ("MD24", S7Address(AREAS["M"], 0, 24, None, 4)),
        ("IB3", S7Address(AREAS["I"], 0, 3, None, 1)),
        ("I0.1", S7Address(AREAS["I"], 0, 0, 1, 0)),
        ("E0.1", S7Address(AREAS["I"], 0, 0, 1, 0)),  # German mnemonic
        ("QW2", S7Address(AREAS["Q"], 0, 2, None, 2)),
        ("A4.0", S7Address(AREAS["Q"], 0, 4, 0, 0)),
        (" q0.0 ", S7Address(AREAS["Q"], 0, 0, 0, 0)),
    ],
)
def test_absolute_addresses_parse_as_step7_writes_them(text: str, expected: S7Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("DB1.DBX4", "names a bit: add which one"),
        ("M10", "names a bit: add which one"),
        ("DB1.DBX0.8", "bits .0 to .7"),
        ("DB1.DBD4.1", "has no bit (drop .1)"),
        ("DB0.DBW2", "numbered from 1"),
        ("DB1.W4", "is not an absolute address"),
        ("%MW20", "is not an absolute address"),
        ("T5", "is not an absolute address"),
    ],
)
def test_a_wrong_address_is_named_with_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as caught:
        parse_address(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"address": "DB1.DBD4"}, "is 4 bytes: give its type"),
        ({"address": "DB1.DBW4", "type": "real"}, "address it as DB1.DBD4"),
        ({"address": "MD8", "type": "int"}, "address it as MW8"),
        ({"address": "DB1.DBX0.0", "type": "int"}, "its type is bool, not int"),
        ({"address": "DB1.DBB0", "type": "bool"}, "give a bit address"),
        ({"address": "DB1.DBB0", "type": "string"}, "needs 'length'"),
        ({"address": "DB1.DBW0", "length": 4}, "'length' applies to type string"),
        ({"address": "DB1.DBB0", "type": "string", "length": 8, "scale": 2}, "apply to numbers"),
    ],
)
def test_a_type_that_does_not_fit_its_address_is_refused(
    fields: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        S7SignalBinding.model_validate(fields)


def test_types_default_from_the_address_width_and_sizes_follow() -> None:
    def binding(**fields: Any) -> S7SignalBinding:
        return S7SignalBinding.model_validate(fields)

    assert binding(address="DB1.DBX0.3").data_type == "bool"
    assert binding(address="MB4").data_type == "byte"
    assert binding(address="DB1.DBW4").data_type == "int"
    assert binding(address="DB1.DBB8", type="lreal").size == 8
    assert binding(address="DB1.DBB20", type="string", length=10).size == 12


def test_a_source_checks_its_endpoint_and_a_value_larger_than_its_pdu() -> None:
    with pytest.raises(ValidationError, match="is not s7://host"):
        S7Source.model_validate({"id": "plc", "kind": "s7", "endpoint": "modbus://h"})
    source = S7Source.model_validate(
        {"id": "plc", "kind": "s7", "endpoint": "s7://10.0.0.9", "pdu_size": 240}
    )
    with pytest.raises(ValueError, match="more than one answer of source 'plc' holds"):
        source.check_binding(
            S7SignalBinding(address="DB1.DBB0", type="string", length=240), "press"
        )


def s7_document(**signal_fields: Any) -> dict[str, Any]:
    source = {"id": "plc", "kind": "s7", "endpoint": "s7://10.0.0.7", "slot": 2}
    signals = [
        registers.sig("running", "state", "plc", "on_change", address="DB1.DBX0.0"),
        registers.sig(
            "force", source="plc", **({"address": "DB1.DBD4", "type": "real"} | signal_fields)
        ),
    ]
    process = registers.process("press", signals)
    plant = registers.plant("p1", [source], [registers.line("l1", [process])])
    return registers.document([plant])


def test_the_agent_builds_an_s7_reader_with_the_endpoint_override(tmp_path: Path) -> None:
    path = registers.write(tmp_path, s7_document())
    settings = EdgeSettings(
        _env_file=None,
        register_file=path,
        plant="p1",
        endpoints={"plc": "s7://127.0.0.1:10102"},
        buffer_dir=tmp_path / "buffer",
    )
    (source,) = build_sources(parse_register(path.read_bytes(), path), settings)
    assert isinstance(source, S7Reader)
    assert (source.host, source.port, source.config.slot) == ("127.0.0.1", 10102, 2)
    assert [(p.signal, p.name) for p in source.points] == [
        ("running", "DB1.DBX0.0"),
        ("force", "DB1.DBD4"),
    ]


def test_a_modbus_endpoint_override_for_an_s7_source_fails_at_start(tmp_path: Path) -> None:
    path = registers.write(tmp_path, s7_document())
    settings = EdgeSettings(
        _env_file=None, register_file=path, plant="p1", endpoints={"plc": "modbus://h:502"}
    )
    with pytest.raises(ValueError, match="is not s7://host"):
        build_sources(parse_register(path.read_bytes(), path), settings)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"type": "int"}, "force", "address it as DB1.DBW4"),
        ({"adress": "DB1.DBW4"}, "adress", "unknown key"),
        ({"table": "holding"}, "table", "unknown key"),  # Modbus's, not S7's
    ],
)
def test_a_wrong_s7_field_is_named_with_its_line(
    fields: dict[str, object], field: str, reason: str
) -> None:
    text = registers.to_yaml(s7_document(**fields))
    with pytest.raises(RegisterError) as caught:
        parse_register(text.encode(), Path("plant.yaml"))
    message = str(caught.value)
    assert "plant.yaml:" in message and reason in message, message
    if field != "force":
        line = next(n for n, row in enumerate(text.splitlines(), 1) if f"{field}:" in row)
        assert f"plant.yaml:{line}: plants[0].lines[0].processes[0].signals[1].{field}" in message
