"""What to read from a server (pure): bindings, node id and browse path resolution, per-node
monitoring parameters, and the split of a large node set over several connections."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from asyncua import ua
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaStringParsingError

from common.browse_paths import BrowseName, BrowsePathError, parse_browse_path
from common.protocols.opcua import Deadband

DEADBAND_TYPES = {"absolute": 1, "percent": 2}
"""OPC UA DeadbandType enumeration values (Part 4, 7.22.2)."""


@dataclass(frozen=True)
class NodeBinding:
    """A register signal read from one node."""

    node: str
    """Its address: a node id, or a browse path (``/...``, see ``is_browse_path``)."""
    process: str
    signal: str
    sampling_interval: float
    deadband: Deadband | None = None
    queue_size: int | None = None
    """Monitored item queue size from the register; None: sized from the intervals."""


class NodeResolutionError(ValueError):
    pass


def resolve_node_id(text: str, namespaces: list[str]) -> ua.NodeId:
    """Parse ``ns=``/``nsu=`` node ids; ``nsu=`` is mapped to this session's namespace index."""
    try:
        parsed = ua.NodeId.from_string(text)
    except UaStringParsingError as exc:
        raise NodeResolutionError(f"cannot parse node id: {exc}") from None
    uri = getattr(parsed, "NamespaceUri", None)
    if not uri:
        return ua.NodeId(parsed.Identifier, parsed.NamespaceIndex, parsed.NodeIdType)
    try:
        index = namespaces.index(uri)
    except ValueError:
        raise NodeResolutionError(
            f"namespace {uri!r} is not in the server's namespace array"
        ) from None
    return ua.NodeId(parsed.Identifier, ua.Int16(index), parsed.NodeIdType)


def is_browse_path(address: str) -> bool:
    """Browse paths start with '/'; node ids (``ns=``, ``nsu=``, ``i=``, ...) never do."""
    return address.startswith("/")


def browse_path_request(address: str, namespaces: list[str]) -> ua.BrowsePath:
    """A TranslateBrowsePathsToNodeIds request for ``address``, with this session's
    namespace indexes; from the Root folder along forward hierarchical references."""
    try:
        elements = parse_browse_path(address)
    except BrowsePathError as exc:
        raise NodeResolutionError(str(exc)) from None
    return ua.BrowsePath(
        StartingNode=ua.NodeId(ua.Int32(ObjectIds.RootFolder)),
        RelativePath=ua.RelativePath(
            Elements=[
                ua.RelativePathElement(
                    ReferenceTypeId=ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences)),
                    IsInverse=cast(ua.Boolean, False),
                    IncludeSubtypes=cast(ua.Boolean, True),
                    TargetName=qualified_name(element, namespaces),
                )
                for element in elements
            ]
        ),
    )


def qualified_name(element: BrowseName, namespaces: list[str]) -> ua.QualifiedName:
    try:
        index = namespaces.index(element.uri)
    except ValueError:
        raise NodeResolutionError(
            f"namespace {element.uri!r} (of {element.name!r}) is not in the server's "
            "namespace array"
        ) from None
    return ua.QualifiedName(element.name, ua.UInt16(index))


@dataclass(frozen=True)
class Monitoring:
    """The monitored-item parameters of one node (all signals bound to it)."""

    sampling_interval: float
    queue_size: int
    deadband: Deadband | None


def monitoring_for(
    bindings: Sequence[NodeBinding],
    publishing_interval: float,
    *,
    min_queue: int = 10,
    queue_cycles: float = 20.0,
) -> Monitoring:
    """Parameters that serve every signal bound to one node: the fastest interval, the
    largest queue, and a deadband only if every signal asks for the same one (a signal
    without a deadband must see every change)."""
    interval = min(b.sampling_interval for b in bindings)
    explicit = [b.queue_size for b in bindings if b.queue_size is not None]
    if explicit:
        queue = max(explicit)
    else:
        # Room for every sample of several publishing cycles: a server whose publish cycle
        # runs late discards the oldest queued values without telling the client.
        per_cycle = publishing_interval / max(interval, 0.001)
        queue = min(10_000, max(min_queue, math.ceil(per_cycle * queue_cycles)))
    deadbands = {b.deadband for b in bindings}
    deadband = deadbands.pop() if len(deadbands) == 1 else None
    return Monitoring(interval, queue, deadband)


def data_change_filter(deadband: Deadband | None) -> ua.DataChangeFilter | None:
    if deadband is None:
        return None
    return ua.DataChangeFilter(
        Trigger=ua.DataChangeTrigger.StatusValue,
        DeadbandType=ua.UInt32(DEADBAND_TYPES[deadband.type]),
        DeadbandValue=ua.Double(deadband.value),
    )


def split_by_node(bindings: Sequence[NodeBinding], per_connection: int) -> list[list[NodeBinding]]:
    """Groups of at most ``per_connection`` distinct nodes, in register order, sized evenly
    (10,000 nodes at 3,000 per connection: 4 × 2,500, not 3 × 3,000 + 1,000). All bindings
    of one node stay in one group."""
    by_node: dict[str, list[NodeBinding]] = {}
    for binding in bindings:
        by_node.setdefault(binding.node, []).append(binding)
    nodes = list(by_node.values())
    if not nodes:
        return [[]]
    count = math.ceil(len(nodes) / max(1, per_connection))
    base, larger = divmod(len(nodes), count)
    groups: list[list[NodeBinding]] = []
    start = 0
    for number in range(count):
        size = base + (1 if number < larger else 0)
        groups.append([b for group in nodes[start : start + size] for b in group])
        start += size
    return groups
