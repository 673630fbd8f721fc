"""The protocol registry: every protocol is a folder under edge/sources/ with a README whose
register snippets load, and a ``build_source``; its binding fields are its own."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from common.protocols import PROTOCOLS
from common.register import Signal
from common.register_loader import RegisterError, parse_register
from tests import registers
from tests.edge.readme_snippets import as_register, readme, snippets


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.kind)
def test_every_register_snippet_of_a_protocols_readme_loads(protocol: Any) -> None:
    found = snippets(protocol.kind)
    assert found, f"{readme(protocol.kind)} shows no register snippet (a ```yaml block)"
    for number, snippet in enumerate(found):
        try:
            parse_register(as_register(snippet).encode(), Path(f"snippet-{number}.yaml"))
        except RegisterError as exc:
            pytest.fail(f"{readme(protocol.kind)}, YAML block {number + 1}: {exc}")


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.kind)
def test_a_protocol_is_a_folder_with_its_readme_and_its_builder(protocol: Any) -> None:
    assert readme(protocol.kind).is_file()
    assert protocol.edge_module == f"edge.sources.{protocol.kind}.build"
    assert callable(importlib.import_module(protocol.edge_module).build_source)
    assert protocol.source.model_fields["kind"].annotation is not str
    assert protocol.binding.model_fields["kind"].default == protocol.kind
    if protocol.simulator_module is not None:  # simulated as equipment on an endpoint
        assert callable(importlib.import_module(protocol.simulator_module).serve)
        assert "endpoint" in protocol.source.model_fields


def test_kinds_are_unique_and_no_binding_field_shadows_a_signals_own() -> None:
    kinds = [p.kind for p in PROTOCOLS]
    assert len(kinds) == len(set(kinds))
    for protocol in PROTOCOLS:
        clash = (set(protocol.binding.model_fields) - {"kind"}) & set(Signal.model_fields)
        assert not clash, f"{protocol.kind} binding fields {clash} are also Signal fields"


def test_a_field_of_another_protocol_is_an_error_at_its_line() -> None:
    """``node`` is OPC UA's: on a signal of an MQTT source it is no field of the binding."""
    signal = registers.sig("torque", source="dev", node="ns=2;s=T")
    process = registers.process("m1", [signal])
    plant = registers.plant("p1", [registers.mqtt_source()], [registers.line("l1", [process])])
    text = registers.to_yaml(registers.document([plant]))
    with pytest.raises(RegisterError) as caught:
        parse_register(text.encode(), Path("plant.yaml"))
    node_line = next(n for n, line in enumerate(text.splitlines(), 1) if "node:" in line)
    assert f"plant.yaml:{node_line}: plants[0].lines[0].processes[0].signals[0].node" in str(
        caught.value
    )
