"""An MTConnect source in a register: read by the agent as its protocol builds it, and a wrong
field named with its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.protocols.mtconnect import MtconnectSignalBinding, MtconnectSource
from common.register_loader import RegisterError, parse_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources.mtconnect.source import BoundItem, MtconnectAgentSource
from tests import registers


def mtconnect_document(
    source_fields: dict[str, Any] | None = None, **signal_fields: Any
) -> dict[str, Any]:
    source = {"id": "agent", "kind": "mtconnect", "endpoint": "http://10.0.0.20:5000"}
    signals = [
        registers.sig("execution", "state", "agent", "on_change", data_item="exec"),
        registers.sig("speed", source="agent", update="on_change", **signal_fields),
    ]
    if "data_item" not in signal_fields:
        signals[1]["data_item"] = "S1speed"
    process = registers.process("vmc", signals)
    plant = registers.plant(
        "p1", [{**source, **(source_fields or {})}], [registers.line("l1", [process])]
    )
    return registers.document([plant])


def load_error(doc: dict[str, Any]) -> tuple[str, str]:
    text = registers.to_yaml(doc)
    with pytest.raises(RegisterError) as caught:
        parse_register(text.encode(), Path("plant.yaml"))
    return text, str(caught.value)


def test_the_agent_builds_an_mtconnect_reader_with_the_endpoint_override(tmp_path: Path) -> None:
    path = registers.write(tmp_path, mtconnect_document({"device": "VMC-3Axis"}))
    settings = EdgeSettings(
        _env_file=None,
        register_file=path,
        plant="p1",
        endpoints={"agent": "http://127.0.0.1:5001/mtc/"},
        buffer_dir=tmp_path / "buffer",
    )
    (source,) = build_sources(parse_register(path.read_bytes(), path), settings)
    assert isinstance(source, MtconnectAgentSource)
    assert source.endpoint == "http://127.0.0.1:5001/mtc/"
    assert source.urls["sample"] == "http://127.0.0.1:5001/mtc/VMC-3Axis/sample"
    assert source.items == [
        BoundItem("vmc", "execution", "exec", "VMC-3Axis"),
        BoundItem("vmc", "speed", "S1speed", "VMC-3Axis"),
    ]
    assert source.health()["mode"] == "poll"


def test_a_modbus_endpoint_override_for_an_mtconnect_source_fails_at_start(tmp_path: Path) -> None:
    path = registers.write(tmp_path, mtconnect_document())
    settings = EdgeSettings(
        _env_file=None, register_file=path, plant="p1", endpoints={"agent": "modbus://h:502"}
    )
    with pytest.raises(ValueError, match=r"'modbus://h:502' is not http\(s\)://host"):
        build_sources(parse_register(path.read_bytes(), path), settings)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "opc.tcp://10.0.0.20:4840",
            "'opc.tcp://10.0.0.20:4840' is not http(s)://host[:port][/path]",
        ),
        ("http://:5000", "is not http(s)://host"),
        ("http://10.0.0.20:99999", "'http://10.0.0.20:99999': Port out of range"),
        ("http://10.0.0.20:5000/probe?x=1", "no query or fragment"),
        ("http://user:secret@10.0.0.20:5000", "'http://***@10.0.0.20:5000': credentials do not"),
    ],
)
def test_a_bad_endpoint_is_named_with_its_line(url: str, reason: str) -> None:
    text, message = load_error(mtconnect_document({"endpoint": url}))
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "endpoint:" in row)
    assert f"plant.yaml:{line}: plants[0].sources[0].endpoint" in message, message
    assert reason in message, message
    assert "secret" not in message


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"address": 3}, "address", "unknown key"),  # Modbus's, not MTConnect's
        ({"node": "ns=2;s=X"}, "node", "unknown key"),  # OPC UA's
        ({"data_itme": "S1speed"}, "data_itme", "unknown key"),
        ({"data_item": "spindle speed"}, "data_item", "'spindle speed' is not a name"),
    ],
)
def test_a_wrong_mtconnect_field_is_named_with_its_line(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    text, message = load_error(mtconnect_document(**fields))
    # The last: the first signal has a data_item of its own.
    line = max(n for n, row in enumerate(text.splitlines(), 1) if f"{field}:" in row)
    assert f"plant.yaml:{line}: plants[0].lines[0].processes[0].signals[1].{field}" in message
    assert reason in message, message


def test_a_signal_without_a_data_item_is_an_error() -> None:
    doc = mtconnect_document()
    del doc["plants"][0]["lines"][0]["processes"][0]["signals"][1]["data_item"]
    _, message = load_error(doc)
    assert "signals[1].data_item" in message and "Field required" in message, message


def test_a_signal_of_another_device_than_its_sources_is_named() -> None:
    _, message = load_error(mtconnect_document({"device": "VMC-3Axis"}, device="Lathe-2"))
    assert (
        "data item 'S1speed' is bound to device 'Lathe-2', but source 'agent' reads only "
        "device 'VMC-3Axis'"
    ) in message, message


def test_defaults_and_limits() -> None:
    source = MtconnectSource.model_validate(
        {"id": "a", "kind": "mtconnect", "endpoint": "https://agent.plant/mtc"}
    )
    assert (source.poll_interval, source.timeout, source.sample_count) == (1.0, 5.0, 1000)
    assert source.device is None
    with pytest.raises(ValueError, match="sample_count"):
        MtconnectSource.model_validate({**source.model_dump(), "sample_count": 0})
    with pytest.raises(ValueError, match="device 'a/b' is not a name"):
        MtconnectSource.model_validate({**source.model_dump(), "device": "a/b"})
    binding = MtconnectSignalBinding(data_item="Xact")
    assert (binding.kind, binding.device) == ("mtconnect", None)
