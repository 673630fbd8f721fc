"""The server's OperationLimits, read at every connect, and request sizes under them.

asyncua sends whatever it is given in one request; a server with MaxNodesPerRead or
MaxMonitoredItemsPerCall below that answers BadTooManyOperations for the whole request
(telegraf #17874: subscriptions failed at ~1,150 items).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

MAX_NODES_PER_READ = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
)
MAX_MONITORED_ITEMS_PER_CALL = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)
)
"""ns=0;i=11705 and ns=0;i=11714."""

T = TypeVar("T")


@dataclass(frozen=True)
class OperationLimits:
    """The server's limits; 0 means none (as in OPC UA), as does an unreadable limit."""

    max_nodes_per_read: int = 0
    max_monitored_items_per_call: int = 0


def effective(configured: int, server: int) -> int:
    """Our limit, lowered to the server's where it has one."""
    return min(configured, server) if server > 0 else configured


async def read_operation_limits(client: Client) -> OperationLimits:
    """Both limits in one read (two nodes: below any server's own limit). A server without
    the nodes (optional in the spec) or with a Bad status has no limit we know of."""
    values = await client.uaclient.read_attributes(
        [MAX_NODES_PER_READ, MAX_MONITORED_ITEMS_PER_CALL], AttributeIds.Value
    )
    return OperationLimits(*(_limit(dv) for dv in values))


def _limit(dv: ua.DataValue) -> int:
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return 0
    value = dv.Value.Value if dv.Value is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + max(1, size)]
