"""Standard machines in the simulated OPC UA servers (OPC 40001-1 Machinery, OPC 40501-1
Machine Tools), found by browse name and data type as a client that knows the standards
finds them, with the values the machines report; and one run through edge, collector and
InfluxDB that stores exactly what the servers wrote."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.object_ids import ObjectIds

from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from common.register import SignalRole
from edge.sources.opcua.machines import recognize_machines
from harness.plant import PlantStack
from harness.servers import InfluxServer, MosquittoServer, free_port
from simulators.equipment import SimulatorError
from simulators.ledger import Ledger, LedgerRecord, read_ledger
from simulators.machine import SignalSpec
from simulators.opcua_server import OpcUaBinding, OpcUaSourceServer
from simulators.runner import Simulator
from simulators.scenario import load_scenario
from tests import registers
from tests.simulators.conftest import write_scenario

pytestmark = pytest.mark.integration

MACHINERY = "http://opcfoundation.org/UA/Machinery/"
MACHINE_TOOL = "http://opcfoundation.org/UA/MachineTool/"
OPC_UA = "http://opcfoundation.org/UA/"
URI = "urn:test:machines"
OWN = URI
SERVER_NUMBERING = {"Manual": 10, "Automatic": 20, "Setup": 30, "Service": 40}
"""Source s2's own MachineOperationMode numbers: not 0..n-1, so served as EnumValues."""
SHORT_CHANNEL_MODE = {"Automatic": 0, "MdaMdi": 1, "JogManual": 2}
"""Source s2's ChannelMode: three of the standard's eight, 0..n-1, so EnumStrings."""

BLOCKS = (MACHINERY, "MachineryBuildingBlocks")
CURRENT_STATE = (OPC_UA, "CurrentState")
PLACES: dict[str, tuple[tuple[str, str], ...]] = {
    "MachineryItemState": (BLOCKS, (MACHINERY, "MachineryItemState"), CURRENT_STATE),
    "MachineryOperationMode": (BLOCKS, (MACHINERY, "MachineryOperationMode"), CURRENT_STATE),
    "MachineOperationMode": (
        (MACHINE_TOOL, "Monitoring"),
        (MACHINE_TOOL, "MachineTool"),
        (MACHINE_TOOL, "OperationMode"),
    ),
    "ChannelMode": ((MACHINE_TOOL, "Monitoring"), (OWN, "Channel1"), (MACHINE_TOOL, "ChannelMode")),
    "ChannelState": (
        (MACHINE_TOOL, "Monitoring"),
        (OWN, "Channel1"),
        (MACHINE_TOOL, "ChannelState"),
    ),
}
"""The standard places, as the OPC Foundation nodesets name them (OWN: the machine's)."""


def node(process: str, signal: str) -> str:
    return f"nsu={URI};s={process}.{signal}"


def sig(
    process: str,
    signal: str,
    role: str,
    source: str,
    profile: str | None = None,
    numbering: dict[str, int] | None = None,
) -> dict[str, Any]:
    extra: dict[str, Any] = {"node": node(process, signal)}
    if profile is not None:
        extra["profile"] = profile
    if numbering is not None:
        extra["numbering"] = numbering
    update = "periodic" if role == "parameter" else "on_change"
    return registers.sig(signal, role, source, update, "100ms", **extra)


PROFILES = {
    "state": ("state", "MachineryItemState"),
    "machinery_mode": ("mode", "MachineryOperationMode"),
    "op_mode": ("mode", "MachineOperationMode"),
    "channel_mode": ("mode", "ChannelMode"),
    "channel_state": ("state", "ChannelState"),
}
"""A machine tool's standard signals: id → (role, profile)."""


def machine_tool(process: str, source: str, **numbering: dict[str, int]) -> dict[str, Any]:
    signals = [
        sig(process, sid, role, source, profile, numbering.get(sid))
        for sid, (role, profile) in PROFILES.items()
    ]
    signals.append(sig(process, "spindle_speed", "parameter", source))
    return registers.process(process, signals, name=f"Machine tool {process}")


def document() -> dict[str, Any]:
    """s1: machine tool ``mill`` (manual after 1 s) and the plain ``oven``; s2: machine
    tools ``lathe`` and ``press`` (manual) numbering MachineOperationMode and ChannelMode
    their own way."""
    own = {"op_mode": SERVER_NUMBERING, "channel_mode": SHORT_CHANNEL_MODE}
    processes = [
        machine_tool("mill", "s1"),
        registers.process(
            "oven",
            [sig("oven", "state", "state", "s1"), sig("oven", "temperature", "parameter", "s1")],
            industry="process",
            name="Oven",
        ),
        machine_tool("lathe", "s2", **own),
        machine_tool("press", "s2", **own),
    ]
    sources = [registers.opcua_source(sid, publishing_interval="100ms") for sid in ("s1", "s2")]
    plant = registers.plant("p1", sources, [registers.line("l1", processes)])
    return registers.document([plant], enterprise="test-ent", region="Test", version=None)


SCENARIO = """\
seed: 3
register: register.yaml
machines:
  mill: {behaviour: manual_mode, after: 1s}
  press: {behaviour: manual_mode}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def simulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Simulator]:
    folder = tmp_path_factory.mktemp("opcua-machines")
    scenario = load_scenario(write_scenario(folder, registers.to_yaml(document()), SCENARIO))
    endpoints = {sid: f"opc.tcp://127.0.0.1:{free_port()}" for sid in ("s1", "s2")}
    sim = Simulator(scenario, endpoints=endpoints, tick=0.02, ledger=Ledger(keep=True))
    async with sim:
        await asyncio.sleep(1.5)  # mill turns manual after 1 s
        yield sim


@pytest_asyncio.fixture(loop_scope="session")
async def s1(simulator: Simulator) -> AsyncIterator[Client]:
    async with Client(simulator.endpoints["s1"], timeout=5) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def s2(simulator: Simulator) -> AsyncIterator[Client]:
    async with Client(simulator.endpoints["s2"], timeout=5) as client:
        yield client


async def translate(
    client: Client, start: ua.NodeId, path: Sequence[tuple[str, str]]
) -> ua.NodeId | None:
    """TranslateBrowsePathsToNodeIds of (namespace URI, name) steps, each URI resolved to
    the index this server gives it; None when the path does not resolve."""
    namespaces = await client.get_namespace_array()
    elements = [
        ua.RelativePathElement(
            ReferenceTypeId=ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences)),
            IsInverse=cast(ua.Boolean, False),
            IncludeSubtypes=cast(ua.Boolean, True),
            TargetName=ua.QualifiedName(name, ua.UInt16(namespaces.index(uri))),
        )
        for uri, name in path
    ]
    browse_path = ua.BrowsePath(StartingNode=start, RelativePath=ua.RelativePath(elements))
    (result,) = await client.uaclient.translate_browsepaths_to_nodeids([browse_path])
    if not result.StatusCode.is_good() or not result.Targets:
        return None
    target = result.Targets[0].TargetId
    return ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType)


OBJECTS = ua.NodeId(ua.Int32(ObjectIds.ObjectsFolder))


async def machine_path(client: Client, process: str) -> ua.NodeId | None:
    return await translate(client, OBJECTS, [(MACHINERY, "Machines"), (URI, process)])


async def register_node(client: Client, process: str, signal: str) -> ua.NodeId:
    index = await client.get_namespace_index(URI)
    return ua.NodeId(ua.String(f"{process}.{signal}"), ua.Int16(index))


def last_written(simulator: Simulator, process: str, signal: str) -> LedgerRecord:
    assert simulator.ledger is not None
    return [r for r in simulator.ledger.records if (r.process, r.signal) == (process, signal)][-1]


def written(simulator: Simulator, process: str, signal: str) -> list[object]:
    assert simulator.ledger is not None
    return [r.value for r in simulator.ledger.records if (r.process, r.signal) == (process, signal)]


async def test_machines_are_objects_in_the_machinery_machines_folder(
    simulator: Simulator, s1: Client
) -> None:
    folder_id = await translate(s1, OBJECTS, [(MACHINERY, "Machines")])
    assert folder_id is not None
    folder = s1.get_node(folder_id)
    assert await folder.read_type_definition() == ua.NodeId(ua.Int32(ObjectIds.FolderType))
    machines = await folder.get_children(refs=ObjectIds.Organizes)
    assert [(await m.read_browse_name()).Name for m in machines] == ["mill"]
    mill = await machine_path(s1, "mill")
    assert mill == ua.NodeId(ua.String("mill"), ua.Int16(await s1.get_namespace_index(URI)))
    assert await s1.get_node(mill).read_node_class() == ua.NodeClass.Object
    assert await s1.get_node(mill).read_type_definition() == ua.NodeId(
        ua.Int32(ObjectIds.BaseObjectType)
    )
    # Its other signals stay directly below it; a process without profiles stays a folder.
    assert await translate(s1, mill, [(URI, "spindle_speed")]) == await register_node(
        s1, "mill", "spindle_speed"
    )
    oven = await translate(s1, OBJECTS, [(URI, "oven")])
    assert oven is not None
    assert await s1.get_node(oven).read_type_definition() == ua.NodeId(
        ua.Int32(ObjectIds.FolderType)
    )
    assert await translate(s1, oven, [(URI, "state")]) == await register_node(s1, "oven", "state")


async def test_standard_paths_lead_to_the_registers_nodes(s1: Client, s2: Client) -> None:
    for session, process in ((s1, "mill"), (s2, "lathe"), (s2, "press")):
        machine = await machine_path(session, process)
        assert machine is not None, process
        for signal, (_, profile) in PROFILES.items():
            found = await translate(session, machine, PLACES[profile])
            assert found == await register_node(session, process, signal), (process, signal)


async def enumeration(client: Client, variable: ua.NodeId) -> tuple[str, list[tuple[str, int]]]:
    """The variable's DataType (an Enumeration subtype in MachineTool) and its (name, number)
    from EnumStrings or EnumValues."""
    data_type = await client.get_node(variable).read_data_type()
    node = client.get_node(data_type)
    name = await node.read_browse_name()
    assert name.NamespaceIndex == await client.get_namespace_index(MACHINE_TOOL)
    supertypes = await node.get_references(ObjectIds.HasSubtype, ua.BrowseDirection.Inverse)
    assert [ref.NodeId for ref in supertypes] == [ua.NodeId(ua.Int32(ObjectIds.Enumeration))]
    strings = await translate(client, data_type, [(OPC_UA, "EnumStrings")])
    values = await translate(client, data_type, [(OPC_UA, "EnumValues")])
    assert (strings is None) != (values is None)
    if strings is not None:
        texts = await client.get_node(strings).read_value()
        return name.Name, [(text.Text, number) for number, text in enumerate(texts)]
    assert values is not None
    items = await client.get_node(values).read_value()
    return name.Name, [(item.DisplayName.Text, item.Value) for item in items]


async def test_the_standards_enumerations_carry_its_numbers(s1: Client) -> None:
    mode = await enumeration(s1, await register_node(s1, "mill", "op_mode"))
    assert mode == (
        "MachineOperationMode",
        [
            ("Manual", 0),
            ("Automatic", 1),
            ("Setup", 2),
            ("AutoWithManualIntervention", 3),
            ("Service", 4),
            ("Other", 5),
        ],
    )
    channel = await enumeration(s1, await register_node(s1, "mill", "channel_mode"))
    assert channel[0] == "ChannelMode" and channel[1][:3] == [
        ("Automatic", 0),
        ("MdaMdi", 1),
        ("JogManual", 2),
    ]
    assert len(channel[1]) == 8
    state = await enumeration(s1, await register_node(s1, "mill", "channel_state"))
    assert state == ("ChannelState", [("Active", 0), ("Interrupted", 1), ("Reset", 2)])
    text = await s1.get_node(await register_node(s1, "mill", "state")).read_data_type()
    assert text == ua.NodeId(ua.Int32(ObjectIds.LocalizedText))


async def test_a_register_numbering_is_the_servers_enumeration(s2: Client) -> None:
    mode = await enumeration(s2, await register_node(s2, "lathe", "op_mode"))
    assert mode == ("MachineOperationMode", sorted(SERVER_NUMBERING.items(), key=lambda i: i[1]))
    channel = await enumeration(s2, await register_node(s2, "press", "channel_mode"))
    assert channel == ("ChannelMode", list(SHORT_CHANNEL_MODE.items()))


async def read(client: Client, process: str, signal: str) -> ua.Variant:
    dv = await client.get_node(await register_node(client, process, signal)).read_data_value()
    assert dv.Value is not None
    return dv.Value


async def test_values_are_the_profiles_names_and_numbers(
    simulator: Simulator, s1: Client, s2: Client
) -> None:
    # mill: automatic for its first second, then manual.
    assert written(simulator, "mill", "op_mode") == [1, 0]  # Automatic, Manual
    assert written(simulator, "mill", "channel_mode") == [0, 1]  # Automatic, MdaMdi
    assert written(simulator, "mill", "machinery_mode") == ["Processing", "Maintenance"]
    # s2 numbers MachineOperationMode its own way; lathe runs automatic, press manual.
    assert written(simulator, "lathe", "op_mode") == [20]
    assert written(simulator, "press", "op_mode") == [10]
    assert written(simulator, "lathe", "channel_mode") == [0]
    assert written(simulator, "press", "channel_mode") == [1]
    for client, process in ((s1, "mill"), (s2, "lathe"), (s2, "press")):
        for signal in PROFILES:
            variant = await read(client, process, signal)
            record = last_written(simulator, process, signal)
            if signal in ("op_mode", "channel_mode", "channel_state"):
                assert variant.VariantType == ua.VariantType.Int32, (process, signal)
                assert variant.Value == record.value and isinstance(record.value, int)
            else:
                assert variant.VariantType == ua.VariantType.LocalizedText, (process, signal)
                assert variant.Value.Text == record.value and isinstance(record.value, str)
    # Machines start running: Executing, and the channel Active.
    assert written(simulator, "mill", "state")[0] == "Executing"
    assert written(simulator, "mill", "channel_state")[0] == 0
    assert written(simulator, "oven", "state")[0] == "RUNNING"  # no profile: as before


def test_one_place_per_machine_and_one_numbering_per_server(tmp_path: Path) -> None:
    doc = document()
    mill = doc["plants"][0]["lines"][0]["processes"][0]
    mill["signals"].append(sig("mill", "op_mode2", "mode", "s1", "MachineOperationMode"))
    scenario = load_scenario(
        write_scenario(tmp_path, registers.to_yaml(doc), "register: register.yaml\n")
    )
    with pytest.raises(
        SimulatorError,
        match=r"source s1: signals mill\.op_mode and mill\.op_mode2 both have profile Machine",
    ):
        Simulator(scenario)

    doc = document()
    press = doc["plants"][0]["lines"][0]["processes"][3]
    assert press["id"] == "press"
    press["signals"][2]["numbering"] = {"Manual": 1, "Automatic": 2}
    scenario = load_scenario(
        write_scenario(tmp_path, registers.to_yaml(doc), "register: register.yaml\n")
    )
    with pytest.raises(
        SimulatorError,
        match=r"source s2: signals lathe\.op_mode and press\.op_mode number MachineOperationMode "
        r"differently \(Manual=10, Automatic=20, Setup=30, Service=40 and Manual=1, Automatic=2\)",
    ):
        Simulator(scenario)


def test_a_machine_tool_signal_must_report_numbers() -> None:
    names = SignalSpec("mode", SignalRole.MODE, profile="ChannelMode")  # not numbered
    binding = OpcUaBinding("mill", names, node("mill", "mode"))
    with pytest.raises(SimulatorError, match=r"signal mill\.mode: MT:Monitoring/<machine ns>:Ch"):
        OpcUaSourceServer("s1", "opc.tcp://127.0.0.1:0", [binding])


# -- through edge, collector and InfluxDB -----------------------------------------------

RUN_S = 14


def wait_for_drain(api: str, quiet_s: float = 3.0, timeout: float = 60.0) -> None:
    """Until the collector has written nothing new for ``quiet_s`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        stats = httpx.get(f"{api}/api/v1/stats", timeout=5).json()
        if stats["samples_written"] != last:
            last, since = stats["samples_written"], time.monotonic()
        elif time.monotonic() - since > quiet_s and stats["queue_depth"] == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"collector did not drain: {stats}")


async def test_the_edge_stores_exactly_what_the_machines_servers_wrote(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: str
) -> None:
    register = registers.write(tmp_path, document())
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.replace("after: 1s", "after: 8s"))
    influx_env = {
        "COLLECTOR_INFLUX__URL": influxdb.url,
        "COLLECTOR_INFLUX__MODE": "v1",
        "COLLECTOR_INFLUX__DATABASE": influx_db,
    }
    stack = PlantStack(register, scenario, mosquitto.url, influx_env, tmp_path / "run")
    ledger_path = tmp_path / "ledger.jsonl"
    try:
        stack.start_collector(window="20s", period="5s")
        await asyncio.to_thread(stack.wait_for_api)
        simulators = stack.start_simulators(duration=f"{RUN_S}s", ledger=ledger_path)
        await asyncio.to_thread(stack.wait_for_simulators)
        stack.start_edges()
        await asyncio.to_thread(simulators.proc.wait, RUN_S + 60)
        stack.check_alive()
        await asyncio.to_thread(wait_for_drain, stack.api_url)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop_all()

    reader = InfluxQLReader(InfluxSettings(url=influxdb.url, database=influx_db))
    try:
        end = time.time_ns() + 10**9
        stored = await reader.samples(0, end, 0, "test-ent")
        liveness = await reader.liveness(0, end, "test-ent")
    finally:
        await reader.close()
    first_up = {
        source: min(e.ts for e in events if e.up)
        for (_, source), events in liveness.items()
        if any(e.up for e in events)
    }
    assert {"s1", "s2"} <= set(first_up)
    source_of = {(r.process.id, r.signal.id): r.signal.source for r in stack.register.signals()}
    ledger = read_ledger(ledger_path)
    # Once its edge was reading the source (and a second more), every sample written.
    expected = [
        r for r in ledger if r.ts_ns >= first_up[str(source_of[(r.process, r.signal)])] + 10**9
    ]
    assert len(expected) > 200, "the simulators produced too little to judge"
    machines = {(p, signal) for p in ("mill", "lathe", "press") for signal in PROFILES}
    assert machines <= set(stored), sorted(machines - set(stored))
    index = {
        key: dict(zip(cols.ts, zip(cols.status, cols.value, strict=True), strict=True))
        for key, cols in stored.items()
    }
    missing, wrong = [], []
    for rec in expected:
        got = index.get((rec.process, rec.signal), {}).get(rec.ts_ns)
        if got is None:
            missing.append(rec)
        elif got[0] != rec.status or not same_value(got[1], rec.value):
            wrong.append((rec, got))
    assert not missing, f"{len(missing)} of {len(expected)} samples missing, e.g. {missing[:3]}"
    assert not wrong, f"{len(wrong)} samples stored differently, e.g. {wrong[:3]}"
    # Every stored sample of the machines is one their servers wrote, of the type written:
    # the enumerations' numbers as numbers, the state machines' names as text (the first of
    # each signal is the value current when the edge subscribed, written before that).
    written_at = {(r.process, r.signal, r.ts_ns): r for r in ledger}
    for (process, signal), cols in stored.items():
        for ts, status, value in zip(cols.ts, cols.status, cols.value, strict=True):
            row = written_at.get((process, signal, ts))
            assert row is not None, (process, signal, ts, value)
            assert row.status == status and same_value(value, row.value), (row, value)
    kinds = {(r.signal, type(r.value)) for r in ledger if r.signal in PROFILES}
    assert kinds == {
        ("state", str),
        ("machinery_mode", str),
        ("op_mode", int),
        ("channel_mode", int),
        ("channel_state", int),
    }
    # mill: automatic when the edge subscribed, manual from 8 s on.
    assert list(stored[("mill", "op_mode")].value) == [1, 0]
    assert list(stored[("mill", "machinery_mode")].value) == ["Processing", "Maintenance"]
    assert list(stored[("press", "op_mode")].value) == [10]


def same_value(stored: object, produced: object) -> bool:
    """InfluxDB holds every number as a float; text stays text."""
    if isinstance(produced, int | float) and not isinstance(produced, bool):
        return isinstance(stored, int | float) and math.isclose(float(stored), float(produced))
    return stored == produced


async def test_browse_machines_proposes_what_the_register_binds(s1: Client, s2: Client) -> None:
    """``plantkpi-edge browse --machines`` against the simulated servers gives back each
    machine's state and modes bound to the register's own nodes, with the server's
    numbering where it is not the standard's; the plain oven is not a machine."""
    proposed = {
        process.id: process for session in (s1, s2) for process in await recognize_machines(session)
    }
    assert set(proposed) == {"mill", "lathe", "press"}
    for process_id, process in proposed.items():
        bound = {s.profile: s.node for s in process.signals}
        expected = {
            profile: node(process_id, signal)
            for signal, (_, profile) in PROFILES.items()
            if profile != "ChannelState"  # the machine's own state is the one proposed
        }
        assert bound == expected, process_id
        assert [n for n in process.notes if "ChannelState" in n], process.notes
        numbering = {s.profile: dict(s.numbering) for s in process.signals}
        if process_id == "mill":
            assert not any(numbering.values())
        else:  # s2's own MachineOperationMode numbers; its ChannelMode keeps the standard's
            assert numbering["MachineOperationMode"] == SERVER_NUMBERING
            assert numbering["ChannelMode"] == {}
