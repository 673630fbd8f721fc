"""Discovery: walk a server's address space below a root, within a depth and a node count,
and describe its variables the way the register addresses them.

Used by ``plantkpi-edge browse`` to help write the register; the agent itself never
expands folders at run time (the collector must know every key signal from the register:
see ADDRESSING.md). Browse requests are chunked by the server's MaxNodesPerBrowse (halved
again on BadTooManyOperations); continuation points are followed with BrowseNext while
the node budget lasts, and released when it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIdNames, ObjectIds
from asyncua.ua.uaerrors import UaError

from common.browse_paths import BrowseName, format_browse_path
from edge.sources.opcua.addressing import resolve_addresses
from edge.sources.opcua.limits import RequestSize, read_operation_limits
from edge.sources.opcua.pki import UntrustedServerCertificate
from edge.sources.opcua.security import ClientSecurity, SecurityError

_HAS_PROPERTY = ua.NodeId(ua.Int32(ObjectIds.HasProperty))
"""Properties (EURange, EngineeringUnits, ...) describe a variable; they are not signals."""
_NOT_AN_ID_CHAR = re.compile(r"[^A-Za-z0-9_.-]+")


class BrowseError(RuntimeError):
    """The walk cannot start (root does not resolve)."""


@dataclass(frozen=True)
class FoundVariable:
    node: str
    """Namespace-URI form: ``nsu=<uri>;s=...`` (``i=...`` in OPC UA's own namespace)."""
    browse_path: str
    """``common.browse_paths`` form, from the Root folder."""
    data_type: str
    array: bool
    """Arrays cannot be stored as samples (the edge rejects them)."""
    parent: str
    """Browse path of the object or folder holding it."""


@dataclass
class BrowseOutcome:
    root: str
    variables: list[FoundVariable] = field(default_factory=list)
    nodes: int = 0
    """Nodes found (objects, folders and variables), the root excluded."""
    stopped: str = ""
    """Why the walk stopped before the whole subtree was seen ('' if it did not)."""


@dataclass(frozen=True)
class Place:
    node_id: ua.NodeId
    path: tuple[BrowseName, ...]


async def browse_tree(
    client: Client,
    root: str,
    *,
    depth: int,
    max_nodes: int,
    references_per_node: int = 1000,
    nodes_per_browse: int = 500,
) -> BrowseOutcome:
    """Objects, folders and variables below ``root`` (node id or browse path), breadth
    first, at most ``depth`` levels down and ``max_nodes`` nodes."""
    namespaces = await client.get_namespace_array()
    limits = await read_operation_limits(client)
    where = client.server_url.geturl()
    browse_size = RequestSize("Browse", nodes_per_browse, where)
    resolved = (
        await resolve_addresses(
            client, [root], namespaces, RequestSize("TranslateBrowsePathsToNodeIds", 1, where)
        )
    )[root]
    if isinstance(resolved, str):
        raise BrowseError(f"root {root!r} on {where}: {resolved}")
    outcome = BrowseOutcome(root)
    frontier = [Place(resolved, await path_of(client, resolved, namespaces))]
    seen = {resolved}
    found: list[tuple[Place, ua.ReferenceDescription]] = []
    for level in range(1, depth + 1):
        if not frontier:
            break
        budget = max_nodes - outcome.nodes + 1  # one more than allowed: "there are more"
        children, cut = await browse_children(
            client, frontier, browse_size, limits.max_nodes_per_browse, references_per_node, budget
        )
        if cut:
            outcome.stopped = f"node limit {max_nodes} reached at depth {level}"
        next_frontier: list[Place] = []
        for parent, reference in children:
            target = reference.NodeId
            if target in seen or reference.ReferenceTypeId == _HAS_PROPERTY:
                continue
            if outcome.nodes >= max_nodes:
                outcome.stopped = f"node limit {max_nodes} reached at depth {level}"
                next_frontier.clear()
                break
            seen.add(target)
            outcome.nodes += 1
            place = Place(target, (*parent.path, browse_name_of(reference.BrowseName, namespaces)))
            if reference.NodeClass == ua.NodeClass.Variable:
                found.append((place, reference))
            else:
                next_frontier.append(place)
        if outcome.stopped:
            break
        frontier = next_frontier
    else:
        if frontier:
            outcome.stopped = (
                f"depth {depth} reached: {len(frontier)} objects or folders not expanded"
            )
    outcome.variables = await _describe(client, found, namespaces, limits.max_nodes_per_read)
    return outcome


async def browse_children(
    client: Client,
    places: Sequence[Place],
    size: RequestSize,
    published: int,
    references_per_node: int,
    budget: int,
) -> tuple[list[tuple[Place, ua.ReferenceDescription]], bool]:
    """Every forward hierarchical reference of ``places`` to an object or a variable, and
    whether references were left unread because ``budget`` of them were already read."""
    cut = False
    count = 0

    async def browse(chunk: Sequence[Place]) -> list[ua.BrowseResult]:
        nonlocal cut, count
        params = ua.BrowseParameters()
        params.RequestedMaxReferencesPerNode = ua.UInt32(references_per_node)
        params.NodesToBrowse = [_description(place.node_id) for place in chunk]
        results = await client.uaclient.browse(params)
        for result in results:
            result.StatusCode.check()
            references = list(result.References or [])
            point = result.ContinuationPoint
            while point and count + len(references) < budget:
                (more,) = await _browse_next(client, point, release=False)
                references.extend(more.References or [])
                point = more.ContinuationPoint
            if point:  # the server holds it until released (MaxBrowseContinuationPoints)
                await _browse_next(client, point, release=True)
                cut = True
            count += len(references)
            result.References = references
        return results

    results = await size.run(places, browse, published)
    children: list[tuple[Place, ua.ReferenceDescription]] = []
    for place, result in zip(places, results, strict=True):
        children.extend((place, reference) for reference in result.References or [])
    return children, cut


async def _browse_next(client: Client, point: bytes, *, release: bool) -> list[ua.BrowseResult]:
    params = ua.BrowseNextParameters()
    params.ReleaseContinuationPoints = cast(ua.Boolean, release)
    params.ContinuationPoints = [point]
    results = await client.uaclient.browse_next(params)
    for result in results:
        if not release:
            result.StatusCode.check()
    return results


def _description(node_id: ua.NodeId) -> ua.BrowseDescription:
    return ua.BrowseDescription(
        NodeId=node_id,
        BrowseDirection=ua.BrowseDirection.Forward,
        ReferenceTypeId=ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences)),
        IncludeSubtypes=cast(ua.Boolean, True),
        NodeClassMask=ua.UInt32(ua.NodeClass.Object | ua.NodeClass.Variable),
        ResultMask=ua.UInt32(ua.BrowseResultMask.All),
    )


async def path_of(
    client: Client, node_id: ua.NodeId, namespaces: list[str]
) -> tuple[BrowseName, ...]:
    """The browse names from the Root folder down to ``node_id`` (one of its paths)."""
    nodes = await client.get_node(node_id).get_path(as_string=False)
    names = [await node.read_browse_name() for node in nodes[1:]]  # Root has no element
    return tuple(browse_name_of(name, namespaces) for name in names)


def browse_name_of(name: ua.QualifiedName, namespaces: list[str]) -> BrowseName:
    index = name.NamespaceIndex
    uri = namespaces[index] if index < len(namespaces) else f"urn:unknown-namespace-{index}"
    return BrowseName(uri, name.Name or "")


def namespace_uri_form(node_id: ua.NodeId, namespaces: list[str]) -> str:
    """``nsu=<uri>;s=Name`` (``i=2258`` for OPC UA's own namespace): valid after a restart
    that renumbers the namespaces."""
    bare = ua.NodeId(node_id.Identifier, ua.Int16(0), node_id.NodeIdType).to_string()
    if node_id.NamespaceIndex == 0 or node_id.NamespaceIndex >= len(namespaces):
        return node_id.to_string()
    return f"nsu={namespaces[node_id.NamespaceIndex]};{bare}"


async def _describe(
    client: Client,
    found: list[tuple[Place, ua.ReferenceDescription]],
    namespaces: list[str],
    published: int,
) -> list[FoundVariable]:
    """Data type and value rank of each variable, read in requests the server accepts."""
    reads = [
        ua.ReadValueId(NodeId=place.node_id, AttributeId=attribute)
        for place, _ in found
        for attribute in (AttributeIds.DataType, AttributeIds.ValueRank)
    ]

    async def read(chunk: Sequence[ua.ReadValueId]) -> list[ua.DataValue]:
        params = ua.ReadParameters()
        params.NodesToRead = list(chunk)
        return await client.uaclient.read(params)

    values = await RequestSize("Read", 500, client.server_url.geturl()).run(reads, read, published)
    variables = []
    for number, (place, _) in enumerate(found):
        data_type, rank = values[2 * number].Value, values[2 * number + 1].Value
        type_id = data_type.Value if data_type is not None else None
        variables.append(
            FoundVariable(
                node=namespace_uri_form(place.node_id, namespaces),
                browse_path=format_browse_path(place.path),
                data_type=type_name(type_id, namespaces),
                array=rank is not None and isinstance(rank.Value, int) and rank.Value >= 0,
                parent=format_browse_path(place.path[:-1]),
            )
        )
    return variables


def type_name(type_id: object, namespaces: list[str]) -> str:
    if not isinstance(type_id, ua.NodeId):
        return "unknown"
    if type_id.NamespaceIndex == 0 and isinstance(type_id.Identifier, int):
        return ObjectIdNames.get(type_id.Identifier, type_id.to_string())
    return namespace_uri_form(type_id, namespaces)


def register_entries(outcome: BrowseOutcome, source: str, address: str = "node") -> str:
    """Register-ready YAML signal entries (``address``: ``node`` or ``browse_path``), grouped
    under a comment naming their object; ids and roles are a start to edit."""
    lines = [
        f"# browse of {outcome.root}: {len(outcome.variables)} variables, {outcome.nodes} nodes"
    ]
    if outcome.stopped:
        lines.append(f"# stopped early: {outcome.stopped}")
    parent = None
    for variable in outcome.variables:
        if variable.parent != parent:
            parent = variable.parent
            lines.append(f"# {parent}")
        other = variable.browse_path if address == "node" else variable.node
        value = variable.node if address == "node" else variable.browse_path
        signal_id = _NOT_AN_ID_CHAR.sub("_", variable.browse_path.rsplit("/", 1)[-1])
        signal_id = signal_id.strip("_.-")[:64] or "signal"
        note = f"{variable.data_type}{' array: not storable' if variable.array else ''}"
        lines.append(
            f"- {{id: {json.dumps(signal_id)}, role: parameter, source: {json.dumps(source)},"
            f" {address}: {json.dumps(value)}}}  # {note}; {other}"
        )
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def browse_session(
    endpoint: str, *, timeout: float = 4.0, security: ClientSecurity | None = None
) -> AsyncIterator[Client]:
    """A session of its own for browsing, secured like the register's source when
    ``security`` is given (policy None and anonymous otherwise)."""
    client = Client(endpoint, timeout=timeout)
    try:
        if security is not None:
            await security.prepare()
            await asyncio.wait_for(security.apply(client, endpoint), timeout * 2)
        await asyncio.wait_for(client.connect(), timeout * 2)
    except (OSError, TimeoutError, UaError, SecurityError, UntrustedServerCertificate) as exc:
        explained = security.explain(exc, endpoint) if security is not None else None
        raise BrowseError(
            explained or f"cannot connect to {endpoint}: {type(exc).__name__}: {exc}"
        ) from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), 2.0)


async def browse_endpoint(
    endpoint: str,
    root: str,
    *,
    depth: int,
    max_nodes: int,
    timeout: float = 4.0,
    references_per_node: int = 1000,
    security: ClientSecurity | None = None,
) -> BrowseOutcome:
    """``browse_tree`` over a session of its own (``browse_session``)."""
    async with browse_session(endpoint, timeout=timeout, security=security) as client:
        return await browse_tree(
            client,
            root,
            depth=depth,
            max_nodes=max_nodes,
            references_per_node=references_per_node,
        )
