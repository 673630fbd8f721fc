"""The server's OperationLimits, read at every connect, and request sizes under them.

asyncua sends whatever it is given in one request; a server with MaxNodesPerRead or
MaxMonitoredItemsPerCall below that answers BadTooManyOperations for the whole request
(telegraf #17874: subscriptions failed at ~1,150 items). Some servers enforce a limit they
do not publish (the limit nodes are optional) or publish a wrong one: ``RequestSize``
halves a refused request and remembers the size that worked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaStatusCodeError

MAX_NODES_PER_READ = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
)
MAX_MONITORED_ITEMS_PER_CALL = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)
)
"""ns=0;i=11705 and ns=0;i=11714."""
MAX_NODES_PER_BROWSE = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse)
)
MAX_NODES_PER_TRANSLATE = ua.NodeId(
    ua.Int32(
        ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds
    )
)
"""ns=0;i=11710 and ns=0;i=11712."""
MAX_NODES_PER_HISTORY_READ_DATA = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData)
)
"""ns=0;i=12165."""

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class OperationLimits:
    """The server's limits; 0 means none (as in OPC UA), as does an unreadable limit."""

    max_nodes_per_read: int = 0
    max_monitored_items_per_call: int = 0
    max_nodes_per_browse: int = 0
    max_nodes_per_translate: int = 0
    """MaxNodesPerTranslateBrowsePathsToNodeIds."""
    max_nodes_per_history_read_data: int = 0


def effective(configured: int, server: int) -> int:
    """Our limit, lowered to the server's where it has one."""
    return min(configured, server) if server > 0 else configured


async def read_operation_limits(client: Client) -> OperationLimits:
    """The limits in one read (five nodes: below any server's own limit). A server without
    the nodes (optional in the spec) or with a Bad status has no limit we know of."""
    nodes = [MAX_NODES_PER_READ, MAX_MONITORED_ITEMS_PER_CALL]
    nodes += [MAX_NODES_PER_BROWSE, MAX_NODES_PER_TRANSLATE, MAX_NODES_PER_HISTORY_READ_DATA]
    # Even this read may exceed a MaxNodesPerRead the server does not publish.
    values = await RequestSize("Read", len(nodes), client.server_url.geturl()).run(
        nodes, lambda chunk: client.uaclient.read_attributes(list(chunk), AttributeIds.Value)
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


def too_many_operations(exc: BaseException) -> bool:
    """The server refused a whole request for its number of operations."""
    return (
        isinstance(exc, UaStatusCodeError) and exc.code == ua.StatusCodes.BadTooManyOperations  # type: ignore[attr-defined]
    )


class RequestSize:
    """How many operations one request of a service carries on one connection.

    Ours, lowered to the limit the server publishes, and halved whenever the server answers
    BadTooManyOperations anyway (a limit enforced but not published, or published wrong).
    The size learned that way is kept for the life of the connection object, across
    reconnects, and logged once.
    """

    def __init__(
        self, service: str, configured: int, where: str, record: dict[str, int] | None = None
    ) -> None:
        """``record``: where learned sizes are kept by service name (a health report)."""
        self.service = service
        self.configured = configured
        self.where = where
        self.learned = 0
        """0: nothing learned yet."""
        self.record = record

    def size(self, published: int) -> int:
        return effective(effective(self.configured, published), self.learned)

    async def run(
        self,
        items: Sequence[T],
        call: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        published: int = 0,
    ) -> list[R]:
        """``call`` on consecutive chunks of ``items``; the results in order. A chunk of one
        operation that is still refused raises (that is not about the request's size)."""
        results: list[R] = []
        start = 0
        refused = 0
        while start < len(items):
            chunk = items[start : start + self.size(published)]
            try:
                answer = await call(chunk)
            except UaStatusCodeError as exc:
                if not too_many_operations(exc) or len(chunk) <= 1:
                    raise
                refused = refused or len(chunk)
                self.learned = len(chunk) // 2
                if self.record is not None:
                    self.record[self.service] = self.learned
                continue
            if refused:  # once, with the size that worked
                self._report(refused, len(chunk), published)
                refused = 0
            results.extend(answer)
            start += len(chunk)
        return results

    def _report(self, refused: int, accepted: int, published: int) -> None:
        log.warning(
            "OPC UA %s: the server refused %d operations per %s request "
            "(BadTooManyOperations; it publishes %s); %d per request work: using that",
            self.where,
            refused,
            self.service,
            f"a limit of {published}" if published else "no limit",
            accepted,
        )
