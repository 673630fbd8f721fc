"""The OPC UA servers, read and subscribed to by a real asyncua client."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client

from common.quality import BAD, BAD_WAITING_FOR_INITIAL_DATA, GOOD, GOOD_LOCAL_OVERRIDE
from common.register import SignalRole
from harness.servers import free_port
from simulators.ledger import Ledger, LedgerRecord
from simulators.machine import SignalSpec
from simulators.opcua_server import NodeIdError, OpcUaBinding, OpcUaSourceServer, parse_node_id
from simulators.runner import Simulator
from simulators.scenario import load_scenario
from tests import registers
from tests.simulators.conftest import (
    OPCUA_REGISTER,
    OPCUA_SCENARIO,
    opcua_document,
    write_scenario,
)

pytestmark = pytest.mark.integration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NODES = {
    ("m1", "state"): "nsu=urn:test:sim;s=m1.state",
    ("m1", "mode"): "nsu=urn:test:sim;s=m1.mode",
    ("m1", "spindle_speed"): "nsu=urn:test:sim;s=m1.spindle_speed",
    ("m1", "part_count"): "nsu=urn:test:sim;s=m1.part_count",
    ("m2", "state"): "nsu=urn:test:sim;s=m2.state",
    ("m2", "temperature"): "nsu=urn:test:sim;s=m2.temperature",
    ("m3", "state"): "nsu=urn:test:sim;s=m3.state",
    ("m4", "state"): "nsu=urn:test:other;s=m4.state",
    ("m4", "press_force"): "nsu=urn:test:other;s=m4.press_force",
}


def to_ns(dt: datetime | None) -> int:
    assert dt is not None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // timedelta(microseconds=1) * 1000


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def simulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Simulator]:
    folder = tmp_path_factory.mktemp("opcua-sim")
    scenario = load_scenario(write_scenario(folder, OPCUA_REGISTER, OPCUA_SCENARIO))
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    sim = Simulator(scenario, endpoints={"s1": endpoint}, tick=0.02, ledger=Ledger(keep=True))
    async with sim:
        yield sim


@pytest_asyncio.fixture(loop_scope="session")
async def client(simulator: Simulator) -> AsyncIterator[Client]:
    client = Client(simulator.endpoints["s1"], timeout=5)
    async with client:
        yield client


async def resolve(client: Client, node: str) -> ua.NodeId:
    """What an edge does with a register node id: namespace URI → this session's index."""
    address = parse_node_id(node)
    index = await client.get_namespace_index(address.uri)
    return ua.NodeId(ua.String(address.identifier), ua.Int16(index))


def records(simulator: Simulator, process: str, signal: str) -> list[LedgerRecord]:
    assert simulator.ledger is not None
    return [r for r in simulator.ledger.records if (r.process, r.signal) == (process, signal)]


async def test_reads_return_what_the_simulator_wrote(simulator: Simulator, client: Client) -> None:
    await asyncio.sleep(0.3)  # a few ticks' worth of writes
    expected_status = {
        ("m1", "state"): GOOD,
        ("m1", "mode"): GOOD,
        ("m1", "spindle_speed"): GOOD,
        ("m1", "part_count"): GOOD,
        ("m2", "state"): GOOD,
        ("m2", "temperature"): BAD,
        ("m3", "state"): BAD_WAITING_FOR_INITIAL_DATA,
        ("m4", "state"): GOOD,
        ("m4", "press_force"): GOOD_LOCAL_OVERRIDE,
    }
    expected_type = {
        ("m1", "state"): ua.VariantType.String,
        ("m1", "mode"): ua.VariantType.String,
        ("m1", "spindle_speed"): ua.VariantType.Double,
        ("m1", "part_count"): ua.VariantType.Int64,
        ("m2", "temperature"): ua.VariantType.Double,  # Bad, yet the value is sent
        ("m4", "press_force"): ua.VariantType.Double,
    }
    for key, node in NODES.items():
        dv = await client.get_node(await resolve(client, node)).read_data_value(
            raise_on_bad_status=False
        )
        assert dv.StatusCode is not None
        status = dv.StatusCode.value
        assert status == expected_status[key], key
        value = dv.Value.Value if dv.Value is not None else None
        read = LedgerRecord("s1", *key, to_ns(dv.SourceTimestamp), value, status)
        assert read in records(simulator, *key), key
        assert dv.ServerTimestamp is not None
        if key in expected_type:
            assert dv.Value is not None and dv.Value.VariantType == expected_type[key], key
    # the offline machine never wrote: its initial value has the server's start time
    [initial] = records(simulator, "m3", "state")
    assert initial.value is None and initial.ts <= simulator.start_ns


async def test_one_folder_per_machine(simulator: Simulator, client: Client) -> None:
    index = await client.get_namespace_index("urn:test:sim")
    folder = client.get_node(ua.NodeId(ua.String("m1"), ua.Int16(index)))
    assert (await folder.read_browse_name()).Name == "m1"
    children = {(await c.read_browse_name()).Name for c in await folder.get_children()}
    assert children == {"state", "mode", "spindle_speed", "part_count"}


async def test_subscription_delivers_every_ledger_sample(
    simulator: Simulator, client: Client
) -> None:
    received: dict[str, list[tuple[int, Any, int]]] = {node: [] for node in NODES.values()}
    by_id = {await resolve(client, node): node for node in NODES.values()}

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            dv = data.monitored_item.Value
            received[by_id[node.nodeid]].append(
                (to_ns(dv.SourceTimestamp), dv.Value.Value, dv.StatusCode.value)
            )

    subscription = await client.create_subscription(20, Handler())
    try:
        await subscription.subscribe_data_change(
            [client.get_node(node_id) for node_id in by_id], queuesize=100
        )
        await asyncio.sleep(1.0)
    finally:
        await subscription.delete()

    for (process, signal), node in NODES.items():
        got = received[node]
        assert got, node
        written = [(r.ts, r.value, r.status) for r in records(simulator, process, signal)]
        first, last = got[0][0], got[-1][0]
        # from the value current at subscribe time to the last notification: all of them
        assert got == [w for w in written if first <= w[0] <= last], node
    assert len(received[NODES[("m1", "spindle_speed")]]) >= 5


def test_repeated_values_are_not_written_to_a_subscribed_source(simulator: Simulator) -> None:
    # m4.state is periodic, but a string that stays the same is invisible to a subscriber
    written = [(r.value, r.status) for r in records(simulator, "m4", "state")]
    assert written and all(a != b for a, b in itertools.pairwise(written))


def test_node_ids_other_than_nsu_string_are_rejected() -> None:
    assert parse_node_id("nsu=urn:a:b;s=m1.x").uri == "urn:a:b"
    spec = SignalSpec("speed", SignalRole.PARAMETER)
    for node in ("ns=2;s=m1.speed", "nsu=urn:a;i=1001", "s=m1.speed"):
        with pytest.raises(NodeIdError, match=rf"process m1, signal speed: node '{node}'"):
            OpcUaSourceServer("s1", "opc.tcp://127.0.0.1:0", [OpcUaBinding("m1", spec, node)])
    twice = [OpcUaBinding(p, spec, "nsu=urn:a;s=same") for p in ("m1", "m2")]
    with pytest.raises(NodeIdError, match="also used by source s1, process m1"):
        OpcUaSourceServer("s1", "opc.tcp://127.0.0.1:0", twice)
    clash = [OpcUaBinding("m1", spec, "nsu=urn:a;s=x"), OpcUaBinding("m2", spec, "nsu=urn:a;s=m1")]
    with pytest.raises(
        NodeIdError, match="process m2, signal speed: node 'nsu=urn:a;s=m1' is the fo"
    ):
        OpcUaSourceServer("s1", "opc.tcp://127.0.0.1:0", clash)


def test_simulator_rejects_a_register_with_ns_index_nodes(tmp_path: Path) -> None:
    doc = opcua_document()
    mode = doc["plants"][0]["lines"][0]["processes"][0]["signals"][1]
    assert mode["id"] == "mode"
    mode["node"] = "ns=2;s=m1.mode"
    register = registers.to_yaml(doc)
    scenario = load_scenario(write_scenario(tmp_path, register, OPCUA_SCENARIO))
    with pytest.raises(NodeIdError, match=r"process m1, signal mode: node 'ns=2;s=m1\.mode'"):
        Simulator(scenario)
