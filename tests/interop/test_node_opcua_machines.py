"""Machine-shaped address spaces from a server we did not write: node-opcua with the OPC
Foundation companion nodesets (Machinery, MachineTool, CNC, PackML) loaded and its machines
built from their ObjectTypes (tests/interop/server.js with INTEROP_MACHINES=1). Checks the
shape a client meets there: browse paths across several namespaces, the specifications'
enumeration DataTypes (EnumValues and EnumStrings), and values that change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif
from asyncua.common.ua_utils import get_node_supertype
from asyncua.ua.object_ids import ObjectIds

from tests.interop.node_server import node_opcua_server

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent

# Prefixes used in the paths below; the indexes come from the server's namespace array.
NAMESPACES = {
    "ua": "http://opcfoundation.org/UA/",
    "machinery": "http://opcfoundation.org/UA/Machinery/",
    "mt": "http://opcfoundation.org/UA/MachineTool/",
    "cnc": "http://opcfoundation.org/UA/CNC",
    "packml": "http://opcfoundation.org/UA/PackML/",
    "our": "urn:plantkpi:interop",
}

MILL = "machinery:Machines/our:Mill1"
PRESS = "machinery:Machines/our:Press7"
CNC_CHANNEL = "cnc:CncInterface/cnc:CncChannelList/our:Channel1"
FILLER = "our:Filler1"
BLOCKS = "machinery:MachineryBuildingBlocks"
ITEM_STATE = f"{BLOCKS}/machinery:MachineryItemState"
OPERATION_MODE = f"{BLOCKS}/machinery:MachineryOperationMode"


@pytest.fixture(scope="module")
def machines_server() -> Iterator[str]:
    # A fast tick: every value goes through its whole cycle in about a second.
    with node_opcua_server(INTEROP_MACHINES="1", INTEROP_TICK_MS="100") as url:
        yield url


@pytest.fixture
async def client(machines_server: str) -> AsyncIterator[Client]:
    async with Client(machines_server) as connected:
        yield connected


async def resolve(client: Client, path: str) -> Node:
    """`prefix:Name/prefix:Name/...` from Objects, one TranslateBrowsePathsToNodeIds call."""
    names = []
    for element in path.split("/"):
        prefix, name = element.split(":")
        index = await client.get_namespace_index(NAMESPACES[prefix])
        names.append(ua.QualifiedName(name, index))
    return await client.nodes.objects.get_child(names)


async def qualified(client: Client, node_id: ua.NodeId) -> tuple[str, str]:
    """(namespace URI, name) of a node's browse name."""
    browse_name = await client.get_node(node_id).read_browse_name()
    namespaces = await client.get_namespace_array()
    return namespaces[browse_name.NamespaceIndex], browse_name.Name


async def type_of(client: Client, node: Node) -> tuple[str, str]:
    type_definition = await node.read_type_definition()
    assert type_definition is not None, node
    return await qualified(client, type_definition)


async def enumeration(data_type: Node) -> tuple[str, dict[int, str]]:
    """Which property describes the enumeration (EnumValues or EnumStrings) and its names."""
    properties = {
        str((await p.read_browse_name()).Name): p for p in await data_type.get_properties()
    }
    assert not {"EnumValues", "EnumStrings"} <= properties.keys(), "one of the two, not both"
    if "EnumValues" in properties:
        values = await properties["EnumValues"].read_value()
        return "EnumValues", {v.Value: v.DisplayName.Text for v in values}
    strings = await properties["EnumStrings"].read_value()
    return "EnumStrings", {i: text.Text for i, text in enumerate(strings)}


async def test_machine_paths_resolve_to_the_specification_types(client: Client) -> None:
    machinery, mt, cnc, packml = (NAMESPACES[p] for p in ("machinery", "mt", "cnc", "packml"))
    expected = {
        MILL: (mt, "MachineToolType"),
        f"{MILL}/{BLOCKS}": (NAMESPACES["ua"], "FolderType"),
        f"{MILL}/{ITEM_STATE}": (machinery, "MachineryItemState_StateMachineType"),
        # MachineTool's subtype of the Machinery operation mode state machine
        f"{MILL}/{OPERATION_MODE}": (mt, "MachineOperationModeStateMachineType"),
        f"{MILL}/mt:Monitoring/mt:MachineTool": (mt, "MachineOperationMonitoringType"),
        f"{MILL}/mt:Monitoring/our:Channel1": (mt, "ChannelMonitoringType"),
        f"{PRESS}/{ITEM_STATE}": (machinery, "MachineryItemState_StateMachineType"),
        f"{PRESS}/{OPERATION_MODE}": (machinery, "MachineryOperationModeStateMachineType"),
        "cnc:CncInterface": (cnc, "CncInterfaceType"),
        CNC_CHANNEL: (cnc, "CncChannelType"),
        FILLER: (packml, "PackMLBaseObjectType"),
        f"{FILLER}/packml:Status": (packml, "PackMLStatusObjectType"),
    }
    for path, type_name in expected.items():
        assert await type_of(client, await resolve(client, path)) == type_name, path
    # Machines is the Machinery nodeset's own entry point.
    machines = await resolve(client, "machinery:Machines")
    machinery_index = await client.get_namespace_index(machinery)
    assert machines.nodeid == ua.NodeId(ua.Int32(1001), ua.Int16(machinery_index))
    # The building blocks are the same nodes as the ones under Monitoring/MachineTool.
    for block in ("machinery:MachineryItemState", "machinery:MachineryOperationMode"):
        via_blocks = await resolve(client, f"{MILL}/{BLOCKS}/{block}")
        via_monitoring = await resolve(client, f"{MILL}/mt:Monitoring/mt:MachineTool/{block}")
        assert via_blocks.nodeid == via_monitoring.nodeid, block
    force = await resolve(client, f"{PRESS}/our:Force")
    assert await force.read_node_class() == ua.NodeClass.Variable
    assert await force.read_data_type() == ua.NodeId(ua.Int32(ObjectIds.Double))


async def test_enumerations_are_the_companion_specifications_own(client: Client) -> None:
    mt, cnc = NAMESPACES["mt"], NAMESPACES["cnc"]
    expected = {
        f"{MILL}/mt:Monitoring/mt:MachineTool/mt:OperationMode": (
            (mt, "MachineOperationMode"),
            "EnumValues",
            {0: "Manual", 1: "Automatic"},
        ),
        f"{MILL}/mt:Monitoring/our:Channel1/mt:ChannelState": (
            (mt, "ChannelState"),
            "EnumValues",
            {0: "Active", 1: "Interrupted", 2: "Reset"},
        ),
        f"{MILL}/mt:Monitoring/our:Channel1/mt:ChannelMode": (
            (mt, "ChannelMode"),
            "EnumValues",
            {0: "Automatic", 2: "JogManual"},
        ),
        # OPC 40502 names them ActOperationMode and ActStatus; one of each enumeration kind.
        f"{CNC_CHANNEL}/cnc:ActOperationMode": (
            (cnc, "CncOperationMode"),
            "EnumStrings",
            {0: "Manual", 1: "MDA", 2: "Automatic"},
        ),
        f"{CNC_CHANNEL}/cnc:ActStatus": (
            (cnc, "CncChannelStatus"),
            "EnumValues",
            {0: "Active", 1: "Interrupted", 2: "Reset"},
        ),
    }
    for path, (data_type_name, kind, names) in expected.items():
        variable = await resolve(client, path)
        data_type = await variable.read_data_type()
        assert await qualified(client, data_type) == data_type_name, path
        found_kind, found_names = await enumeration(client.get_node(data_type))
        assert found_kind == kind, path
        assert found_names.items() >= names.items(), (path, found_names)


async def test_filler_unit_modes_are_a_server_defined_enumeration_with_gaps(
    client: Client,
) -> None:
    our = NAMESPACES["our"]
    unit_mode = await resolve(client, f"{FILLER}/packml:Status/packml:UnitModeCurrent")
    data_type = await unit_mode.read_data_type()
    # The PackML nodeset gives UnitModeCurrent the abstract Enumeration; the server refines it.
    assert await qualified(client, data_type) == (our, "FillerUnitMode")
    supertype = await get_node_supertype(client.get_node(data_type))
    assert supertype is not None and supertype.nodeid == ua.NodeId(ua.Int32(ObjectIds.Enumeration))
    assert await enumeration(client.get_node(data_type)) == (
        "EnumValues",
        {1: "Production", 2: "Maintenance", 3: "Manual", 17: "Clean"},
    )
    supported = await resolve(client, f"{FILLER}/packml:Status/packml:UnitSupportedModes")
    assert await supported.read_value() == data_type

    state = await resolve(client, f"{FILLER}/packml:Status/our:StateCurrent")
    state_type = await state.read_data_type()
    assert await qualified(client, state_type) == (our, "FillerStateEnum")
    kind, names = await enumeration(client.get_node(state_type))
    assert kind == "EnumStrings"
    assert list(names.values())[:7] == [
        "Undefined",
        "Clearing",
        "Stopped",
        "Starting",
        "Idle",
        "Suspended",
        "Execute",
    ]


class Recorder:
    """Every value a subscription delivers, per node; `done` once each node has shown what
    `expected` asks: exactly these values (a set), or at least two different ones (None)."""

    def __init__(self, expected: dict[ua.NodeId, set[Any] | None]) -> None:
        self.expected = expected
        self.values: dict[ua.NodeId, list[Any]] = {node_id: [] for node_id in expected}
        self.done = asyncio.Event()

    def complete(self, node_id: ua.NodeId) -> bool:
        seen, wanted = set(self.values[node_id]), self.expected[node_id]
        return seen >= wanted if wanted is not None else len(seen) > 1

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        self.values[node.nodeid].append(val.Text if isinstance(val, ua.LocalizedText) else val)
        if all(self.complete(node_id) for node_id in self.expected):
            self.done.set()


async def test_values_change_over_time_through_a_subscription(client: Client) -> None:
    executing, modes = {"Executing", "NotExecuting"}, {"Processing", "Setup"}
    expected: dict[str, set[Any] | None] = {
        f"{MILL}/{ITEM_STATE}/ua:CurrentState": executing,
        f"{MILL}/{OPERATION_MODE}/ua:CurrentState": modes,
        f"{MILL}/mt:Monitoring/mt:MachineTool/mt:OperationMode": {0, 1},
        f"{MILL}/mt:Monitoring/our:Channel1/mt:ChannelState": {0, 1, 2},
        f"{MILL}/mt:Monitoring/our:Channel1/mt:ChannelMode": {0, 2},
        f"{PRESS}/{ITEM_STATE}/ua:CurrentState": executing,
        f"{PRESS}/{OPERATION_MODE}/ua:CurrentState": modes,
        f"{PRESS}/our:Force": None,
        f"{CNC_CHANNEL}/cnc:ActOperationMode": {0, 2},
        f"{CNC_CHANNEL}/cnc:ActStatus": {0, 1, 2},
        f"{FILLER}/packml:Status/packml:UnitModeCurrent": {1, 2, 3, 17},
        f"{FILLER}/packml:Status/our:StateCurrent": None,
    }
    nodes = {path: await resolve(client, path) for path in expected}
    recorder = Recorder({nodes[path].nodeid: wanted for path, wanted in expected.items()})
    subscription = await client.create_subscription(50, recorder)
    try:
        await subscription.subscribe_data_change(list(nodes.values()))
        with contextlib.suppress(TimeoutError):  # the asserts below say what is missing
            await asyncio.wait_for(recorder.done.wait(), 15)
    finally:
        await subscription.delete()
    for path, wanted in expected.items():
        seen = recorder.values[nodes[path].nodeid]
        assert recorder.complete(nodes[path].nodeid), (path, seen)
        if wanted is not None:
            assert set(seen) <= wanted, (path, seen)
    assert all(isinstance(v, float) for v in recorder.values[nodes[f"{PRESS}/our:Force"].nodeid])
    state_current = recorder.values[nodes[f"{FILLER}/packml:Status/our:StateCurrent"].nodeid]
    assert set(state_current) <= set(range(18))
