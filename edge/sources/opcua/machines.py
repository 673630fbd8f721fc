"""Standard machines on an OPC UA server, recognized by their companion specifications'
browse names and proposed as register processes with their state and mode signals bound.

- OPC 40001-1 Machinery: the machines organized under ``Objects/Machines``; their
  ``MachineryBuildingBlocks`` hold the ``MachineryItemState`` and ``MachineryOperationMode``
  state machines (``CurrentState``: the state's name).
- OPC 40501-1 Machine Tools: ``Monitoring/MachineTool/OperationMode`` (a
  MachineOperationMode enumeration) and the channels under ``Monitoring``, each with
  ``ChannelState`` and ``ChannelMode``.
- OPC 40502 CNC Systems: ``Objects/CncInterface/CncChannelList/<channel>`` with
  ``ActStatus`` (CncChannelStatus) and ``ActOperationMode`` (CncOperationMode); one CNC per
  server, so one process.
- PackML (OPC 30050): a unit (under Objects or Machines) with ``Status/UnitModeCurrent``
  and ``BaseStateMachine/CurrentState``.

An enumeration is taken as the server numbers it (its data type's EnumStrings or
EnumValues), never from the standard's table alone: OPC 30050 and OPC 30060 number PackML
states differently, and PackML's unit mode is whatever enumeration the server defines. The
proposal carries ``numbering`` when the server's numbers are not the profile's.
Used by ``plantkpi-edge browse --machines``; like all browsing, never by the agent at run time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

from common.browse_paths import OPC_UA_NAMESPACE, BrowseName, format_browse_path
from common.state_models import BY_NAME, StateModel
from edge.sources.opcua.addressing import resolve_addresses
from edge.sources.opcua.browse import (
    Place,
    browse_children,
    browse_name_of,
    namespace_uri_form,
    type_name,
)
from edge.sources.opcua.limits import OperationLimits, RequestSize, read_operation_limits
from edge.sources.opcua.nodes import qualified_name

MACHINERY = "http://opcfoundation.org/UA/Machinery/"
MACHINE_TOOL = "http://opcfoundation.org/UA/MachineTool/"
CNC = "http://opcfoundation.org/UA/CNC"
PACKML = "http://opcfoundation.org/UA/PackML/"

_NOT_AN_ID_CHAR = re.compile(r"[^A-Za-z0-9_.-]+")
_NUMBER_SUFFIX = re.compile(r"_\d+$")


def _in(uri: str, *names: str) -> tuple[BrowseName, ...]:
    return tuple(BrowseName(uri, name) for name in names)


_CURRENT_STATE = _in(OPC_UA_NAMESPACE, "CurrentState")


@dataclass(frozen=True)
class _Place:
    """Where a standard puts a state or mode signal, relative to its machine or channel."""

    signal: str
    role: str
    profile: str
    path: tuple[BrowseName, ...]


_MACHINE_PLACES = (
    _Place(
        "state",
        "state",
        "MachineryItemState",
        _in(MACHINERY, "MachineryBuildingBlocks", "MachineryItemState") + _CURRENT_STATE,
    ),
    _Place(
        "operation_mode",
        "mode",
        "MachineOperationMode",
        _in(MACHINE_TOOL, "Monitoring", "MachineTool", "OperationMode"),
    ),
    _Place(
        "machinery_mode",
        "mode",
        "MachineryOperationMode",
        _in(MACHINERY, "MachineryBuildingBlocks", "MachineryOperationMode") + _CURRENT_STATE,
    ),
)
_CHANNEL_PLACES = (
    _Place("state", "state", "ChannelState", _in(MACHINE_TOOL, "ChannelState")),
    _Place("mode", "mode", "ChannelMode", _in(MACHINE_TOOL, "ChannelMode")),
)
_CNC_CHANNEL_PLACES = (
    _Place("status", "state", "CncChannelStatus", _in(CNC, "ActStatus")),
    _Place("mode", "mode", "CncOperationMode", _in(CNC, "ActOperationMode")),
)
_PACKML_PLACES = (
    _Place("state", "state", "PackMLState", _in(PACKML, "BaseStateMachine") + _CURRENT_STATE),
    _Place("unit_mode", "mode", "PackMLUnitMode", _in(PACKML, "Status", "UnitModeCurrent")),
)


_MACHINE_TOOL_PROFILES = frozenset({"MachineOperationMode", "ChannelMode", "ChannelState"})


@dataclass(frozen=True)
class ProposedSignal:
    id: str
    role: str
    profile: str
    node: str
    """``nsu=`` form."""
    browse_path: str
    data_type: str
    numbering: tuple[tuple[str, int], ...] = ()
    """The server's numbers where they are not the profile's ('' when they are, or when
    the values are names)."""
    note: str = ""
    """What the user should know (server names outside the profile, unknown numbers)."""


@dataclass
class ProposedProcess:
    id: str
    name: str
    standard: str
    browse_path: str
    signals: list[ProposedSignal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Unit:
    """A recognized machine (or channel of one) and the places to look for signals in."""

    process: str
    prefix: str
    """Prefix of the signal ids (a channel's name)."""
    path: tuple[BrowseName, ...]
    places: tuple[_Place, ...]


@dataclass
class _Session:
    client: Client
    namespaces: list[str]
    limits: OperationLimits
    where: str

    async def resolve(self, paths: Sequence[tuple[BrowseName, ...]]) -> list[ua.NodeId | None]:
        texts = [format_browse_path(path) for path in paths]
        size = RequestSize("TranslateBrowsePathsToNodeIds", 200, self.where)
        found = await resolve_addresses(
            self.client, texts, self.namespaces, size, self.limits.max_nodes_per_translate
        )
        return [node if isinstance(node, ua.NodeId) else None for node in map(found.get, texts)]

    async def objects_below(
        self, parents: Sequence[Place], budget: int
    ) -> list[tuple[Place, Place, str]]:
        """(parent, child, display name) of every object organized or held by ``parents``."""
        size = RequestSize("Browse", 500, self.where)
        children, _ = await browse_children(
            self.client, parents, size, self.limits.max_nodes_per_browse, 1000, budget
        )
        return [
            (
                parent,
                Place(ref.NodeId, (*parent.path, browse_name_of(ref.BrowseName, self.namespaces))),
                ref.DisplayName.Text or ref.BrowseName.Name or "",
            )
            for parent, ref in children
            if ref.NodeClass == ua.NodeClass.Object
        ]

    async def read(self, node_ids: Sequence[ua.NodeId], attribute: int) -> list[ua.Variant | None]:
        reads = [ua.ReadValueId(NodeId=node, AttributeId=attribute) for node in node_ids]

        async def call(chunk: Sequence[ua.ReadValueId]) -> list[ua.DataValue]:
            params = ua.ReadParameters()
            params.NodesToRead = list(chunk)
            return await self.client.uaclient.read(params)

        values = await RequestSize("Read", 500, self.where).run(
            reads, call, self.limits.max_nodes_per_read
        )
        return [
            value.Value if value.StatusCode is None or value.StatusCode.is_good() else None
            for value in values
        ]


async def recognize_machines(client: Client, *, max_machines: int = 1000) -> list[ProposedProcess]:
    """The standard machines on the server the client is connected to, each proposed as a
    process with its state and mode signals; machines without either are left out."""
    namespaces = await client.get_namespace_array()
    session = _Session(
        client, namespaces, await read_operation_limits(client), client.server_url.geturl()
    )
    objects = Place(ua.NodeId(ua.Int32(ObjectIds.ObjectsFolder)), _in(OPC_UA_NAMESPACE, "Objects"))
    processes: dict[str, ProposedProcess] = {}
    units: list[_Unit] = []

    def add(place: Place, display: str, standard: str) -> str:
        process_id = _unique(_slug(place.path[-1].name), processes)
        processes[process_id] = ProposedProcess(
            process_id, display, standard, format_browse_path(place.path)
        )
        return process_id

    machines: list[tuple[Place, str]] = []
    if MACHINERY in namespaces:
        (folder,) = await session.resolve([(*objects.path, BrowseName(MACHINERY, "Machines"))])
        if folder is not None:
            place = Place(folder, (*objects.path, BrowseName(MACHINERY, "Machines")))
            below = await session.objects_below([place], max_machines + 1)
            machines = [(child, display) for _, child, display in below[:max_machines]]
    for place, display in machines:
        process_id = add(place, display, "OPC 40001 machine")
        units.append(_Unit(process_id, "", place.path, _MACHINE_PLACES))
    if MACHINE_TOOL in namespaces and machines:
        monitoring_paths = [
            (*place.path, BrowseName(MACHINE_TOOL, "Monitoring")) for place, _ in machines
        ]
        monitors = await session.resolve(monitoring_paths)
        found = [
            (Place(node, path), unit.process)
            for node, path, unit in zip(monitors, monitoring_paths, units, strict=True)
            if node is not None
        ]
        owner = {place.node_id: process for place, process in found}
        for parent, channel, _ in await session.objects_below([p for p, _ in found], 10_000):
            if channel.path[-1] == BrowseName(MACHINE_TOOL, "MachineTool"):
                continue
            units.append(
                _Unit(
                    owner[parent.node_id],
                    _slug(channel.path[-1].name),
                    channel.path,
                    _CHANNEL_PLACES,
                )
            )
    if CNC in namespaces:
        list_path = (*objects.path, *_in(CNC, "CncInterface", "CncChannelList"))
        (channel_list,) = await session.resolve([list_path])
        if channel_list is not None:
            interface = Place(channel_list, list_path[:-1])
            process_id = add(interface, "CncInterface", "OPC 40502 CNC")
            for _, channel, _ in await session.objects_below(
                [Place(channel_list, list_path)], 1000
            ):
                units.append(
                    _Unit(
                        process_id, _slug(channel.path[-1].name), channel.path, _CNC_CHANNEL_PLACES
                    )
                )
    if PACKML in namespaces:
        candidates = [
            (child, display) for _, child, display in await session.objects_below([objects], 10_000)
        ]
        candidates += machines
        unit_modes = await session.resolve(
            [(*place.path, *_PACKML_PLACES[1].path) for place, _ in candidates]
        )
        for (place, display), node in zip(candidates, unit_modes, strict=True):
            if node is None:
                continue
            known = next(
                (p for p in processes.values() if p.browse_path == format_browse_path(place.path)),
                None,
            )
            process_id = known.id if known else add(place, display, "PackML unit")
            units.append(_Unit(process_id, "packml" if known else "", place.path, _PACKML_PLACES))

    await _bind(session, units, processes)
    return [process for process in processes.values() if process.signals]


async def _bind(
    session: _Session, units: list[_Unit], processes: dict[str, ProposedProcess]
) -> None:
    """Resolve every unit's places and describe what is there: the process's first state
    signal found (machine, then channels) and all its modes (R6 joins their manual time)."""
    wanted = [(unit, place) for unit in units for place in unit.places]
    nodes = await session.resolve([(*unit.path, *place.path) for unit, place in wanted])
    present = [
        (unit, place, node)
        for (unit, place), node in zip(wanted, nodes, strict=True)
        if node is not None
    ]
    types = await session.read([node for _, _, node in present], AttributeIds.DataType)
    enums = await _enumerations(
        session, {t.Value for t in types if t is not None and isinstance(t.Value, ua.NodeId)}
    )
    for (unit, place, node), data_type in zip(present, types, strict=True):
        process = processes[unit.process]
        signal_id = f"{unit.prefix}_{place.signal}" if unit.prefix else place.signal
        type_id = data_type.Value if data_type is not None else None
        signal = _proposal(
            signal_id,
            place,
            namespace_uri_form(node, session.namespaces),
            format_browse_path((*unit.path, *place.path)),
            type_name(type_id, session.namespaces),
            enums.get(type_id) if isinstance(type_id, ua.NodeId) else None,
        )
        if place.profile in _MACHINE_TOOL_PROFILES:
            process.standard = "OPC 40501 machine tool"
        if place.role == "state" and any(s.role == "state" for s in process.signals):
            process.notes.append(f"also a state: {signal.browse_path} ({place.profile})")
            continue
        process.signals.append(signal)


@dataclass(frozen=True)
class _Enumeration:
    name: str
    values: tuple[tuple[str, int], ...] | None
    """None: an enumeration whose EnumStrings and EnumValues the server does not give."""


async def _enumerations(
    session: _Session, data_types: set[ua.NodeId]
) -> dict[ua.NodeId, _Enumeration]:
    """The enumerations among ``data_types``, with the names and numbers the server gives."""
    ordered = sorted(data_types, key=lambda node: node.to_string())
    if not ordered:
        return {}
    names = await session.read(ordered, AttributeIds.BrowseName)
    definitions = await session.read(ordered, AttributeIds.DataTypeDefinition)
    paths = [
        ua.BrowsePath(
            StartingNode=data_type,
            RelativePath=ua.RelativePath(
                Elements=[
                    ua.RelativePathElement(
                        ReferenceTypeId=ua.NodeId(ua.Int32(ObjectIds.HasProperty)),
                        IsInverse=cast(ua.Boolean, False),
                        IncludeSubtypes=cast(ua.Boolean, True),
                        TargetName=qualified_name(
                            BrowseName(OPC_UA_NAMESPACE, prop), session.namespaces
                        ),
                    )
                ]
            ),
        )
        for data_type in ordered
        for prop in ("EnumStrings", "EnumValues")
    ]
    results = await RequestSize("TranslateBrowsePathsToNodeIds", 200, session.where).run(
        paths,
        lambda chunk: session.client.uaclient.translate_browsepaths_to_nodeids(list(chunk)),
        session.limits.max_nodes_per_translate,
    )
    properties = [
        result.Targets[0].TargetId if result.StatusCode.is_good() and result.Targets else None
        for result in results
    ]
    readable = [
        ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType)
        for target in properties
        if target is not None
    ]
    values = iter(await session.read(readable, AttributeIds.Value))
    found: dict[ua.NodeId, _Enumeration] = {}
    for number, data_type in enumerate(ordered):
        strings, enum_values = properties[2 * number], properties[2 * number + 1]
        strings_value = next(values) if strings is not None else None
        values_value = next(values) if enum_values is not None else None
        name = names[number]
        type_name_text = (
            name.Value.Name if name is not None and isinstance(name.Value, ua.QualifiedName) else ""
        )
        pairs = _enum_pairs(strings_value, values_value, definitions[number])
        if pairs is not None or _is_abstract_enumeration(data_type):
            found[data_type] = _Enumeration(type_name_text or "Enumeration", pairs)
    return found


def _is_abstract_enumeration(data_type: ua.NodeId) -> bool:
    return data_type == ua.NodeId(ua.Int32(ObjectIds.Enumeration))


def _enum_pairs(
    strings: ua.Variant | None, values: ua.Variant | None, definition: ua.Variant | None
) -> tuple[tuple[str, int], ...] | None:
    """(name, number) from the EnumStrings property (the number is the index), else the
    EnumValues property, else the data type's EnumDefinition (OPC UA 1.04 servers that
    publish only the DataTypeDefinition attribute)."""
    if strings is not None and isinstance(strings.Value, list):
        return tuple((_text(text), index) for index, text in enumerate(strings.Value))
    if values is not None and isinstance(values.Value, list):
        return tuple((_text(item.DisplayName), int(item.Value)) for item in values.Value)
    if definition is not None and isinstance(definition.Value, ua.EnumDefinition):
        return tuple((field.Name or "", int(field.Value)) for field in definition.Value.Fields)
    return None


def _text(text: object) -> str:
    return str(text.Text or "") if isinstance(text, ua.LocalizedText) else str(text)


def _proposal(
    signal_id: str,
    place: _Place,
    node: str,
    browse_path: str,
    data_type: str,
    enumeration: _Enumeration | None,
) -> ProposedSignal:
    model = BY_NAME[place.profile]
    plain = ProposedSignal(signal_id, place.role, model.name, node, browse_path, data_type)
    if enumeration is None:
        return plain
    if enumeration.values is None:
        note = (
            f"{enumeration.name}: the server gives no EnumStrings or EnumValues, so its numbers "
            "are unknown"
        )
        if not model.fixes_numbers:
            note += f"; add numbering from the server's documentation ({model.name} fixes none)"
        return replace(plain, note=note)
    numbering, foreign = match_numbering(model, enumeration.values)
    standard = {name: number for name, number in model.values if number is not None}
    same = model.fixes_numbers and all(standard.get(n) == v for n, v in numbering)
    notes = []
    if foreign:
        notes.append(
            f"server values not in {model.name}: {', '.join(foreign)} (not counted as manual; "
            "to count one, write manual_values instead of the profile)"
        )
    if same:
        notes.append(f"the server numbers it as the standard does ({enumeration.name})")
    return replace(
        plain,
        data_type=enumeration.name,
        numbering=() if same else numbering,
        note="; ".join(notes),
    )


def match_numbering(
    model: StateModel, server: Sequence[tuple[str, int]]
) -> tuple[tuple[tuple[str, int], ...], list[str]]:
    """The server's numbers for the model's names, and the server's names the model does
    not have. A name matches exactly, or without a ``_<number>`` suffix on either side
    (OPC 40502 names its enumerants ``Manual_0``; some servers drop the suffix)."""
    by_bare = {_NUMBER_SUFFIX.sub("", name).casefold(): name for name in model.names}
    numbering: dict[str, int] = {}
    foreign: list[str] = []
    for name, number in server:
        known = (
            name if name in model.names else by_bare.get(_NUMBER_SUFFIX.sub("", name).casefold())
        )
        if known is None or known in numbering:
            foreign.append(f"{name}={number}")
        else:
            numbering[known] = number
    return tuple(sorted(numbering.items(), key=lambda item: item[1])), foreign


def _slug(name: str) -> str:
    return _NOT_AN_ID_CHAR.sub("_", name).strip("_.-")[:60] or "machine"


def _unique(candidate: str, taken: dict[str, ProposedProcess]) -> str:
    number, unique = 2, candidate
    while unique in taken:
        unique, number = f"{candidate}_{number}", number + 1
    return unique


def register_processes(processes: Sequence[ProposedProcess], source: str, endpoint: str) -> str:
    """Register-ready YAML process entries (a line's ``processes:``), to edit: names,
    ``key``, ``industry`` and the key parameters are the plant's to give."""
    lines = [f"# {len(processes)} standard machines recognized on {endpoint}"]
    if not processes:
        lines.append(
            "# none: no Machines folder (OPC 40001), CncInterface (OPC 40502) or PackML unit "
            "with a state or mode"
        )
    for process in processes:
        lines += [
            f"# {process.browse_path} ({process.standard})",
            f"- id: {json.dumps(process.id)}",
            f"  name: {json.dumps(process.name)}",
            "  key: true",
            "  industry: discrete",
            f"  equipment: {json.dumps(process.standard)}",
            "  signals:",
        ]
        if not any(s.role == "state" for s in process.signals):
            lines.append("    # no state found: add the signal that proves the machine runs")
        for signal in process.signals:
            numbering = (
                ", numbering: {"
                + ", ".join(f"{json.dumps(n)}: {v}" for n, v in signal.numbering)
                + "}"
                if signal.numbering
                else ""
            )
            comment = f"  # {signal.data_type}" + (f"; {signal.note}" if signal.note else "")
            lines.append(
                f"    - {{id: {json.dumps(signal.id)}, role: {signal.role}, "
                f"source: {json.dumps(source)}, update: on_change, profile: {signal.profile}"
                f"{numbering}, node: {json.dumps(signal.node)}}}{comment}"
            )
        lines += [f"    # {note}" for note in process.notes]
        lines.append(
            f"    # key parameters: plantkpi-edge browse --root {json.dumps(process.browse_path)}"
        )
    return "\n".join(lines) + "\n"
