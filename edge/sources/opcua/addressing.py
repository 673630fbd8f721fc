"""Register addresses (node ids and browse paths) to this session's node ids, at every connect.

Node ids in ``nsu=`` form get this session's namespace index; browse paths are sent to the
server with TranslateBrowsePathsToNodeIds, in requests no larger than its limit. An address
that does not resolve gets a reason instead of a node id, and never stops the others.
"""

from __future__ import annotations

from collections.abc import Sequence

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaStatusCodeError

from edge.sources.opcua.limits import RequestSize
from edge.sources.opcua.nodes import (
    NodeResolutionError,
    browse_path_request,
    is_browse_path,
    resolve_node_id,
)

Resolution = ua.NodeId | str
"""A node id, or why the address does not resolve."""


async def resolve_addresses(
    client: Client,
    addresses: Sequence[str],
    namespaces: list[str],
    translate: RequestSize,
    published_limit: int = 0,
) -> dict[str, Resolution]:
    """Every distinct address mapped to its node id or to the reason it has none."""
    resolved: dict[str, Resolution] = {}
    requests: dict[str, ua.BrowsePath] = {}
    for address in dict.fromkeys(addresses):
        try:
            if is_browse_path(address):
                requests[address] = browse_path_request(address, namespaces)
            else:
                resolved[address] = resolve_node_id(address, namespaces)
        except NodeResolutionError as exc:
            resolved[address] = str(exc)
    if requests:
        try:
            results = await translate.run(
                list(requests.values()),
                lambda chunk: client.uaclient.translate_browsepaths_to_nodeids(list(chunk)),
                published_limit,
            )
        except UaStatusCodeError as exc:
            # The service itself refused (e.g. BadServiceUnsupported): only the signals
            # addressed by browse path fail; those with node ids are read as usual.
            reason = f"browse paths cannot be translated here: {type(exc).__name__}: {exc}"
            for address in requests:
                resolved[address] = reason
            return resolved
        for address, result in zip(requests, results, strict=True):
            resolved[address] = _target(result)
    return resolved


def _target(result: ua.BrowsePathResult) -> Resolution:
    status = result.StatusCode
    if not status.is_good():
        return f"browse path does not resolve: {status.name}"
    exact = [t for t in result.Targets if t.RemainingPathIndex == ua.UInt32(0xFFFFFFFF)]
    if not exact:
        return "browse path resolves only partly (it crosses into another server)"
    if len(exact) > 1:
        # The register must name one node; two with the same browse names is ambiguous.
        found = ", ".join(t.TargetId.to_string() for t in exact[:3])
        return f"browse path is ambiguous: {len(exact)} nodes ({found})"
    target = exact[0].TargetId  # an ExpandedNodeId: this server's node id in it
    return ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType)
