"""Standard machines in a simulated OPC UA server: the OPC 40001-1 (Machinery) and
OPC 40501-1 (Machine Tools) shapes, with the browse names the OPC Foundation nodesets use.

A process whose signals include one with a profile placed here is served as a machine: an
Object organized by ``Objects/M:Machines`` (the Machinery nodeset's folder, created once
per server), its profiled signals at their standard places below it, its other signals
directly below it. A signal keeps the register's node id wherever it is placed; the objects
between the machine and it get numeric node ids in the machine's namespace.

- MachineryItemState: ``M:MachineryBuildingBlocks/M:MachineryItemState/0:CurrentState``
- MachineryOperationMode: ``M:MachineryBuildingBlocks/M:MachineryOperationMode/0:CurrentState``
  (both LocalizedText: the state's name)
- MachineOperationMode: ``MT:Monitoring/MT:MachineTool/MT:OperationMode``
- ChannelMode, ChannelState: ``MT:Monitoring/<machine's namespace>:Channel1/MT:ChannelMode``
  and ``.../MT:ChannelState``

The Machine Tools ones are Int32 of an enumeration DataType ``MT:<model>`` (its nodeset's
node id), whose EnumStrings (numbers 0..n-1) or EnumValues give the server's numbering: a
signal's ``numbering``, else the standard's. One DataType per model and server.
``layout`` checks all this before anything is built (pure); ``MachineSpace`` builds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

from common.register import Signal
from simulators.equipment import SimulatorError
from simulators.machine import SignalSpec

MACHINERY = "http://opcfoundation.org/UA/Machinery/"
MACHINE_TOOL = "http://opcfoundation.org/UA/MachineTool/"
OPC_UA = "http://opcfoundation.org/UA/"
MACHINES_FOLDER = 1001
"""``Machines``' node id in the Machinery nodeset (``nsu=<Machinery>;i=1001``)."""
ENUMERATION_IDS = {"ChannelState": 64, "MachineOperationMode": 65, "ChannelMode": 67}
"""The enumeration DataTypes' node ids in the MachineTool nodeset."""
OWN = ""
"""The namespace of a browse name that is the machine's own (its node id's namespace)."""


class Name(NamedTuple):
    uri: str
    """A namespace URI, or ``OWN``."""
    name: str

    def __str__(self) -> str:
        prefix = {MACHINERY: "M", MACHINE_TOOL: "MT", OPC_UA: "0", OWN: "<machine ns>"}
        return f"{prefix.get(self.uri, self.uri)}:{self.name}"


@dataclass(frozen=True)
class Placement:
    """Where a standard puts a signal of one profile, below its machine."""

    parents: tuple[Name, ...]
    name: Name
    enumerated: bool
    """Int32 of the model's enumeration DataType; else LocalizedText (a state's name)."""

    @property
    def path(self) -> str:
        return "/".join(map(str, (*self.parents, self.name)))

    @property
    def variant(self) -> ua.VariantType:
        return ua.VariantType.Int32 if self.enumerated else ua.VariantType.LocalizedText


_BLOCKS = Name(MACHINERY, "MachineryBuildingBlocks")
_MONITORING = Name(MACHINE_TOOL, "Monitoring")
_CHANNEL = Name(OWN, "Channel1")
_CURRENT_STATE = Name(OPC_UA, "CurrentState")

PLACEMENTS: dict[str, Placement] = {
    "MachineryItemState": Placement(
        (_BLOCKS, Name(MACHINERY, "MachineryItemState")), _CURRENT_STATE, False
    ),
    "MachineryOperationMode": Placement(
        (_BLOCKS, Name(MACHINERY, "MachineryOperationMode")), _CURRENT_STATE, False
    ),
    "MachineOperationMode": Placement(
        (_MONITORING, Name(MACHINE_TOOL, "MachineTool")), Name(MACHINE_TOOL, "OperationMode"), True
    ),
    "ChannelMode": Placement((_MONITORING, _CHANNEL), Name(MACHINE_TOOL, "ChannelMode"), True),
    "ChannelState": Placement((_MONITORING, _CHANNEL), Name(MACHINE_TOOL, "ChannelState"), True),
}
"""Profile → its standard place."""


def signal_spec(signal: Signal) -> SignalSpec:
    """A register signal as an OPC UA server reports it: the Machine Tools profiles by
    their enumeration's numbers, everything else by the register."""
    placement = PLACEMENTS.get(signal.profile or "")
    return SignalSpec.from_register(signal, numbered=placement is not None and placement.enumerated)


@dataclass
class Layout:
    """Which processes of one server are machines, where their profiled signals go, and
    the enumerations the server defines."""

    machines: set[str] = field(default_factory=set)
    placements: dict[tuple[str, str], Placement] = field(default_factory=dict)
    """(process, signal) → its place below its machine."""
    enumerations: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    """Model → its (name, number) on this server, by number."""

    @property
    def namespaces(self) -> list[str]:
        """The companion specifications' namespaces the server needs."""
        if not self.machines:
            return []
        uris = {MACHINERY}
        uris |= {p.name.uri for p in self.placements.values()} - {OPC_UA, OWN}
        uris |= {n.uri for p in self.placements.values() for n in p.parents} - {OPC_UA, OWN}
        return sorted(uris)


def layout(signals: Iterable[tuple[str, SignalSpec]]) -> Layout:
    """The layout of one server's (process, signal); SimulatorError names two signals of a
    process at one place, two numberings of one enumeration, or a Machine Tools signal that
    would report names (or another that would report numbers)."""
    out = Layout()
    owner: dict[tuple[str, str], str] = {}
    numbering_of: dict[str, str] = {}
    for process, spec in signals:
        placement = PLACEMENTS.get(spec.profile or "")
        if placement is None:
            continue
        name = f"{process}.{spec.id}"
        if spec.numbered != placement.enumerated:
            kind = "the numbers of" if placement.enumerated else "the names of"
            raise SimulatorError(
                f"signal {name}: {placement.path} holds {kind} {spec.profile} "
                "(build the signal's spec with simulators.opcua_machines.signal_spec)"
            )
        place = (process, placement.path)
        if place in owner:
            raise SimulatorError(
                f"signals {owner[place]} and {name} both have profile {spec.profile}: a "
                f"machine has one {placement.path}"
            )
        owner[place] = name
        out.machines.add(process)
        out.placements[(process, spec.id)] = placement
        model = spec.model
        if placement.enumerated and model is not None:
            values = tuple(sorted(model.numbers(dict(spec.numbering)).items(), key=lambda i: i[1]))
            known = out.enumerations.setdefault(model.name, values)
            if known != values:
                raise SimulatorError(
                    f"signals {numbering_of[model.name]} and {name} number {model.name} "
                    f"differently ({_numbering(known)} and {_numbering(values)}): a server has "
                    f"one {model.name} DataType"
                )
            numbering_of.setdefault(model.name, name)
    return out


def _numeric(identifier: int, namespace: int) -> ua.NodeId:
    """A numeric node id; identifier 0: one the server generates (unused)."""
    return ua.NodeId(ua.Int32(identifier), ua.Int16(namespace))


def _numbering(values: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{name}={number}" for name, number in values)


class MachineSpace:
    """Builds a layout into an asyncua server: ``prepare`` (namespaces, enumerations and
    the Machines folder), then ``add_machine`` and ``add_variable`` per machine."""

    def __init__(self, server: Server, layout: Layout) -> None:
        self.server = server
        self.layout = layout
        self._indexes: dict[str, int] = {OPC_UA: 0}
        self._folder: Node | None = None
        self._data_types: dict[str, ua.NodeId] = {}
        self._parents: dict[tuple[ua.NodeId, tuple[Name, ...]], Node] = {}

    def is_machine(self, process: str) -> bool:
        return process in self.layout.machines

    def placement(self, process: str, signal: str) -> Placement | None:
        return self.layout.placements.get((process, signal))

    async def prepare(self) -> None:
        """Register the companion namespaces (after the register's: their indexes do not
        move), define the enumerations, create ``Objects/M:Machines``."""
        if not self.layout.machines:
            return
        server = self.server
        for uri in self.layout.namespaces:
            self._indexes[uri] = await server.register_namespace(uri)
        if self.layout.enumerations:
            tool = self._indexes[MACHINE_TOOL]
            created = []
            # Every DataType first: the properties' generated ids must not take their ids.
            for model, values in self.layout.enumerations.items():
                node_id = _numeric(ENUMERATION_IDS[model], tool)
                data_type = await server.nodes.enum_data_type.add_data_type(
                    node_id, ua.QualifiedName(model, tool)
                )
                self._data_types[model] = node_id
                created.append((data_type, values))
            for data_type, values in created:
                await _define_enumeration(server, data_type, values)
        machinery = self._indexes[MACHINERY]
        self._folder = await server.nodes.objects.add_folder(
            _numeric(MACHINES_FOLDER, machinery), ua.QualifiedName("Machines", machinery)
        )

    async def add_machine(self, node_id: ua.NodeId) -> Node:
        """The machine ``node_id`` (its browse name: the identifier in its namespace)."""
        assert self._folder is not None, "prepare() first"
        name = ua.QualifiedName(str(node_id.Identifier), node_id.NamespaceIndex)
        return await self._folder.add_object(node_id, name)

    async def add_variable(
        self, machine: Node, placement: Placement, node_id: ua.NodeId, model: str
    ) -> Node:
        """The variable ``node_id`` of profile ``model`` at its place below ``machine``."""
        parent = machine
        for depth in range(1, len(placement.parents) + 1):
            path = placement.parents[:depth]
            key = (machine.nodeid, path)
            known = self._parents.get(key)
            if known is None:
                name = self._qualified(path[-1], machine.nodeid)
                generated = _numeric(0, machine.nodeid.NamespaceIndex)
                if path[-1] == _BLOCKS:  # a FolderType in OPC 40001-1
                    known = await parent.add_folder(generated, name)
                else:
                    known = await parent.add_object(generated, name)
                self._parents[key] = known
            parent = known
        name = self._qualified(placement.name, machine.nodeid)
        if placement.enumerated:
            return await parent.add_variable(
                node_id, name, 0, ua.VariantType.Int32, datatype=self._data_types[model]
            )
        return await parent.add_variable(
            node_id, name, ua.LocalizedText(""), ua.VariantType.LocalizedText
        )

    def _qualified(self, name: Name, machine: ua.NodeId) -> ua.QualifiedName:
        index = machine.NamespaceIndex if name.uri == OWN else self._indexes[name.uri]
        return ua.QualifiedName(name.name, index)


async def _define_enumeration(
    server: Server, data_type: Node, values: tuple[tuple[str, int], ...]
) -> None:
    """EnumStrings when the numbers are 0..n-1, else EnumValues; and the definition."""
    index = data_type.nodeid.NamespaceIndex
    generated = _numeric(0, index)
    if [number for _, number in values] == list(range(len(values))):
        prop = await data_type.add_property(
            generated,
            ua.QualifiedName("EnumStrings", 0),
            [ua.LocalizedText(name) for name, _ in values],
            ua.VariantType.LocalizedText,
        )
    else:
        prop = await data_type.add_property(
            generated,
            ua.QualifiedName("EnumValues", 0),
            [
                ua.EnumValueType(
                    Value=ua.Int64(number),
                    DisplayName=ua.LocalizedText(name),
                    Description=ua.LocalizedText(name),
                )
                for name, number in values
            ],
            ua.VariantType.ExtensionObject,
            datatype=_numeric(ObjectIds.EnumValueType, 0),
        )
    await server.write_attribute_value(
        prop.nodeid, ua.DataValue(ua.Variant(1, ua.VariantType.Int32)), AttributeIds.ValueRank
    )
    await server.write_attribute_value(
        prop.nodeid,
        ua.DataValue(ua.Variant([len(values)], ua.VariantType.UInt32)),
        AttributeIds.ArrayDimensions,
    )
    definition = ua.EnumDefinition(
        Fields=[
            ua.EnumField(Value=ua.Int64(number), DisplayName=ua.LocalizedText(name), Name=name)
            for name, number in values
        ]
    )
    await data_type.write_data_type_definition(definition)
