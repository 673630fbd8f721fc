"""Historical Access from a server we did not write: node-opcua with INTEROP_HISTORY=1
(tests/interop/server.js), the kind of server the edge agent backfills gaps from with
HistoryReadRaw. Checks what a client meets there: which variables are historizing, raw
history with consecutive values and increasing source timestamps, continuation points (their
release too), the answer for a variable without history and MaxNodesPerHistoryReadData."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from tests.interop.node_server import node_opcua_server

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent

TICK = 0.1  # INTEROP_TICK_MS below, in seconds
MAX_NODES_PER_HISTORY_READ = 2
HISTORIZING = ("Force", "Count", "Level")
PAGE = 5  # NumValuesPerNode: a 2 s window at 100 ms ticks takes several pages


@dataclass(frozen=True)
class HistoryServer:
    url: str
    ready_at: float  # time.monotonic() when it printed READY


@pytest.fixture(scope="module")
def history_server() -> Iterator[HistoryServer]:
    options = {
        "INTEROP_HISTORY": "1",
        "INTEROP_TICK_MS": str(int(TICK * 1000)),
        "INTEROP_MAX_NODES_PER_HISTORY_READ": str(MAX_NODES_PER_HISTORY_READ),
    }
    with node_opcua_server(**options) as url:
        yield HistoryServer(url, time.monotonic())


@pytest.fixture
async def client(history_server: HistoryServer) -> AsyncIterator[Client]:
    async with Client(history_server.url) as connected:
        yield connected


async def press1(client: Client, signal: str) -> ua.NodeId:
    index = await client.get_namespace_index("urn:plantkpi:interop")
    return ua.NodeId(ua.String(f"Press1.{signal}"), ua.Int16(index))


def value(data_value: ua.DataValue) -> Any:
    assert data_value.Value is not None, data_value
    return data_value.Value.Value


async def attribute(node: Node, attribute_id: AttributeIds) -> Any:
    return value(await node.read_attribute(attribute_id))


def source_timestamp(data_value: ua.DataValue) -> datetime:
    assert data_value.SourceTimestamp is not None, data_value
    return data_value.SourceTimestamp


def now() -> datetime:
    """Whole milliseconds: node-opcua keeps a DateTime as a JavaScript Date (milliseconds), so a
    finer StartTime would be cut and could take in a value just before it."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


async def history_of_at_least(server: HistoryServer, seconds: float) -> None:
    """Wait until the server has been ticking for `seconds` (plus a tick)."""
    await asyncio.sleep(max(0.0, server.ready_at + seconds + TICK - time.monotonic()))


def raw_details(start: datetime, end: datetime, per_node: int) -> ua.ReadRawModifiedDetails:
    # asyncua's defaults are IsReadModified=True and ReturnBounds=True: set both explicitly.
    return ua.ReadRawModifiedDetails(
        IsReadModified=False,
        StartTime=start,
        EndTime=end,
        NumValuesPerNode=per_node,
        ReturnBounds=False,
    )


async def history_read(
    client: Client,
    details: ua.ReadRawModifiedDetails,
    nodes: Sequence[tuple[ua.NodeId, bytes | None]],
    release: bool = False,
) -> list[ua.HistoryReadResult]:
    """One HistoryRead request: (node, continuation point) per operation."""
    params = ua.HistoryReadParameters(
        HistoryReadDetails=details,
        TimestampsToReturn=ua.TimestampsToReturn.Both,
        # asyncua's default is True (release, return nothing): always explicit here
        ReleaseContinuationPoints=release,
        NodesToRead=[ua.HistoryReadValueId(NodeId=n, ContinuationPoint=cp) for n, cp in nodes],
    )
    results = await client.uaclient.history_read(params)
    assert len(results) == len(nodes)
    return results


def data_values(result: ua.HistoryReadResult) -> list[ua.DataValue]:
    data: list[ua.DataValue] = result.HistoryData.DataValues or []
    return data


async def test_force_count_and_level_are_historizing_and_state_is_not(client: Client) -> None:
    read_history = ua.AccessLevelType.CurrentRead | ua.AccessLevelType.HistoryRead
    for signal in (*HISTORIZING, "State"):
        node = client.get_node(await press1(client, signal))
        access = ua.AccessLevelType(await attribute(node, AttributeIds.AccessLevel))
        user_access = ua.AccessLevelType(await attribute(node, AttributeIds.UserAccessLevel))
        historizing = await attribute(node, AttributeIds.Historizing)
        configuration = await node.get_referenced_nodes(
            ObjectIds.HasHistoricalConfiguration, ua.BrowseDirection.Forward
        )
        if signal in HISTORIZING:
            # read-only (written by the server at each tick) and history-readable
            assert access == read_history, signal
            assert user_access == read_history, signal
            assert historizing is True, signal
            assert [(await c.read_browse_name()).Name for c in configuration] == [
                "HA Configuration"
            ], signal
        else:
            assert not access & ua.AccessLevelType.HistoryRead
            assert not user_access & ua.AccessLevelType.HistoryRead
            assert historizing is False
            assert configuration == []


async def test_raw_history_of_the_last_two_seconds_page_by_page(
    client: Client, history_server: HistoryServer
) -> None:
    await history_of_at_least(history_server, 2)
    count, force = await press1(client, "Count"), await press1(client, "Force")
    end = now()
    start = end - timedelta(seconds=2)
    details = raw_details(start, end, PAGE)
    values: dict[ua.NodeId, list[ua.DataValue]] = {count: [], force: []}
    points: dict[ua.NodeId, list[bytes]] = {count: [], force: []}
    pending: dict[ua.NodeId, bytes | None] = {count: None, force: None}
    pages = 0
    while pending:
        nodes = list(pending.items())
        results = await history_read(client, details, nodes)
        pages += 1
        assert pages < 50, "continuation points do not end"
        for (node, _), result in zip(nodes, results, strict=True):
            assert result.StatusCode.is_good(), (node, result.StatusCode)
            page = data_values(result)
            assert 0 < len(page) <= PAGE, (node, len(page))
            values[node].extend(page)
            if result.ContinuationPoint:
                points[node].append(result.ContinuationPoint)
                pending[node] = result.ContinuationPoint
            else:
                del pending[node]
    # 2 s at 100 ms ticks: about 20 values, each page PAGE of them.
    counts = [value(v) for v in values[count]]
    assert len(counts) >= 10, counts
    assert pages >= 3
    assert counts == list(range(counts[0], counts[0] + len(counts))), counts
    stamps = [source_timestamp(v) for v in values[count]]
    assert all(a < b for a, b in itertools.pairwise(stamps)), stamps
    assert start <= stamps[0] and stamps[-1] <= end, (start, stamps, end)
    assert all(v.StatusCode is None or v.StatusCode.is_good() for v in values[count])
    # Force is written in the same tick as Count, with the same source timestamp.
    assert [source_timestamp(v) for v in values[force]] == stamps
    for c, f in zip(counts, values[force], strict=True):
        assert value(f) == pytest.approx(40 + 5 * math.sin(c / 3) + 1)
    # node-opcua hands back the same continuation point on every page of a node until the
    # values run out: a paging loop must not take a repeated point for "no progress" (asyncua's
    # Node.read_raw_history does, which would stop it after the second page).
    for node, node_points in points.items():
        assert len(node_points) >= 2, node
        assert len(set(node_points)) == 1, (node, node_points)


async def test_released_continuation_point_is_invalid_afterwards(
    client: Client, history_server: HistoryServer
) -> None:
    await history_of_at_least(history_server, 2)
    count = await press1(client, "Count")
    end = now()
    details = raw_details(end - timedelta(seconds=2), end, PAGE)
    [first] = await history_read(client, details, [(count, None)])
    assert first.StatusCode.is_good()
    point = first.ContinuationPoint
    assert point, "more than one page of values, so a continuation point"
    [released] = await history_read(client, details, [(count, point)], release=True)
    # released: Good, no values, no continuation point
    assert released.StatusCode.is_good(), released.StatusCode
    assert data_values(released) == []
    assert not released.ContinuationPoint
    [again] = await history_read(client, details, [(count, point)])
    assert again.StatusCode.value == StatusCodes.BadContinuationPointInvalid, again.StatusCode
    assert data_values(again) == []


async def test_history_read_of_a_variable_without_history(client: Client) -> None:
    state = await press1(client, "State")
    end = now()
    [result] = await history_read(
        client, raw_details(end - timedelta(seconds=2), end, PAGE), [(state, None)]
    )
    assert result.StatusCode.value == StatusCodes.BadHistoryOperationUnsupported, result.StatusCode
    assert not result.ContinuationPoint
    # A node that is no variable (the Press1 object) fails the whole request instead: node-opcua
    # throws there and answers with a ServiceFault.
    press = await client.nodes.objects.get_child([ua.QualifiedName("Press1", state.NamespaceIndex)])
    with pytest.raises(UaStatusCodeError) as refused:
        await history_read(
            client, raw_details(end - timedelta(seconds=2), end, PAGE), [(press.nodeid, None)]
        )
    assert refused.value.code == StatusCodes.BadHistoryOperationInvalid


async def test_max_nodes_per_history_read_data_is_published_and_enforced(client: Client) -> None:
    limit = client.get_node(
        ua.NodeId(
            ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData)
        )
    )
    assert await limit.read_value() == MAX_NODES_PER_HISTORY_READ
    end = now()
    details = raw_details(end - timedelta(seconds=1), end, 0)
    nodes = [(await press1(client, signal), None) for signal in HISTORIZING]
    # the whole request is refused (a ServiceFault), not the operations past the limit
    with pytest.raises(UaStatusCodeError) as refused:
        await history_read(client, details, nodes)
    assert refused.value.code == StatusCodes.BadTooManyOperations
    # at the limit it is answered
    results = await history_read(client, details, nodes[:MAX_NODES_PER_HISTORY_READ])
    assert all(r.StatusCode.is_good() for r in results)
