"""Pure logic of the OPC UA source: node grouping, monitoring parameters, limits, register."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from asyncua import ua
from pydantic import ValidationError

from common.protocols.opcua import Deadband, OpcUaSignalBinding
from common.register_loader import RegisterError, parse_register
from edge.sources.opcua.limits import chunks, effective
from edge.sources.opcua.nodes import (
    NodeBinding,
    NodeResolutionError,
    data_change_filter,
    monitoring_for,
    resolve_node_id,
    split_by_node,
)
from tests import registers


def binding(node: str, interval: float = 1.0, **kw: object) -> NodeBinding:
    return NodeBinding(node, "p", node, interval, **kw)  # type: ignore[arg-type]


def test_split_keeps_every_binding_of_a_node_together_and_sizes_groups_evenly() -> None:
    bindings = [binding(f"ns=2;i={i}") for i in range(10)]
    bindings.insert(3, NodeBinding("ns=2;i=0", "q", "again", 1.0))  # a node bound twice
    groups = split_by_node(bindings, 4)
    assert [len({b.node for b in g}) for g in groups] == [4, 3, 3]
    assert sum(len(g) for g in groups) == 11
    assert {b.signal for b in groups[0]} >= {"ns=2;i=0", "again"}
    (single,) = split_by_node(bindings, 3000)
    assert sorted(single, key=id) == sorted(bindings, key=id)
    assert split_by_node([], 10) == [[]]


def test_monitoring_serves_every_signal_of_a_node() -> None:
    absolute = Deadband(type="absolute", value=2.0)
    fast = binding("n", 0.1, deadband=absolute)
    slow = binding("n", 1.0, deadband=absolute, queue_size=3)
    assert monitoring_for([fast, slow], 0.5) == monitoring_for([slow, fast], 0.5)
    merged = monitoring_for([fast, slow], 0.5)
    assert (merged.sampling_interval, merged.queue_size, merged.deadband) == (0.1, 3, absolute)
    # A signal without a deadband must see every change: no filter for the node.
    assert monitoring_for([fast, binding("n", 0.1)], 0.5).deadband is None
    # No queue size given: room for 20 publishing cycles, at least the minimum.
    assert monitoring_for([binding("n", 0.1)], 0.5).queue_size == 100
    assert monitoring_for([binding("n", 1.0)], 0.5, min_queue=10).queue_size == 10


def test_deadband_filter_uses_the_opc_ua_deadband_types() -> None:
    assert data_change_filter(None) is None
    percent = data_change_filter(Deadband(type="percent", value=1.5))
    assert percent is not None
    assert (percent.DeadbandType, percent.DeadbandValue) == (2, 1.5)
    assert percent.Trigger == ua.DataChangeTrigger.StatusValue
    absolute = data_change_filter(Deadband(type="absolute", value=0.5))
    assert absolute is not None and absolute.DeadbandType == 1


@pytest.mark.parametrize(
    ("configured", "server", "expected"), [(500, 0, 500), (500, 5, 5), (100, 1000, 100)]
)
def test_effective_limit_is_ours_lowered_to_the_servers(
    configured: int, server: int, expected: int
) -> None:
    assert effective(configured, server) == expected


def test_chunks_cover_everything_in_order() -> None:
    assert [list(c) for c in chunks(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_nsu_is_resolved_against_this_sessions_namespace_array() -> None:
    node = "nsu=urn:a;s=X"
    assert resolve_node_id(node, ["http://opcfoundation.org/UA/", "urn:a"]).NamespaceIndex == 1
    assert (
        resolve_node_id(node, ["http://opcfoundation.org/UA/", "urn:b", "urn:a"]).NamespaceIndex
        == 2
    )
    with pytest.raises(NodeResolutionError, match="urn:a"):
        resolve_node_id(node, ["http://opcfoundation.org/UA/"])


def test_register_deadband_and_queue_size_are_validated() -> None:
    common = {"node": "ns=2;i=1"}
    binding = OpcUaSignalBinding.model_validate(
        {**common, "deadband": {"type": "percent", "value": 5}, "queue_size": 4}
    )
    assert binding.deadband == Deadband(type="percent", value=5.0) and binding.queue_size == 4
    with pytest.raises(ValidationError, match=r"0\.\.100"):
        OpcUaSignalBinding.model_validate({**common, "deadband": {"type": "percent", "value": 150}})
    with pytest.raises(ValidationError, match="type"):
        OpcUaSignalBinding.model_validate({**common, "deadband": {"type": "relative", "value": 1}})
    with pytest.raises(ValidationError, match="queue_size"):
        OpcUaSignalBinding.model_validate({**common, "queue_size": 0})


def test_deadband_on_an_mqtt_signal_is_a_start_up_error_naming_its_line() -> None:
    """An OPC UA field on a signal of an MQTT source is not one of the MQTT binding's."""
    torque = registers.sig(
        "torque", source="dev", topic="t/torque", deadband={"type": "absolute", "value": 1}
    )
    doc = registers.document(
        [
            registers.plant(
                "p1",
                [registers.mqtt_source("dev")],
                [registers.line("l1", [registers.process("m1", [torque])])],
            )
        ]
    )
    with pytest.raises(RegisterError) as caught:
        parse_register(registers.to_yaml(doc).encode(), Path("plant.yaml"))
    message = str(caught.value)
    assert "processes[0].signals[0].deadband: unknown key" in message, message
    assert re.search(r"plant\.yaml:\d+:", message), message


def test_a_health_report_names_a_bounded_number_of_failed_nodes() -> None:
    from edge.sources.opcua.source import REPORTED_FAILED_NODES, _bounded

    failed = {f"ns=2;s=n{i}": "BadNodeIdUnknown" for i in range(5000)}
    report = _bounded({"failed_nodes": failed, "nodes_failed": 5000})
    assert len(report["failed_nodes"]) == REPORTED_FAILED_NODES  # type: ignore[arg-type]
    assert report["nodes_failed"] == 5000
    assert _bounded({"failed_nodes": {"a": "x"}})["failed_nodes"] == {"a": "x"}
