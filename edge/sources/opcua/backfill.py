"""Backfill: what changed on the server while the edge was not subscribed, read from the
server's history after every gap (OPC UA Part 11, HistoryReadRawModified).

A gap opens whenever live data stopped: the agent stopped or was killed, the connection or
the subscription was lost. At every (re)connect, for each signal whose node the server lets
this session read history of (its UserAccessLevel has HistoryRead, re-checked at every
connect), the values between the newest sample the edge stored for it (``edge/buffer/
marks.py``) and the moment live data resumed are read and reported as ordinary samples
(raw status, source and server timestamps) marked ``backfill``.

Bounded so that live data never waits behind it: one request in flight per connection, at
most the server's MaxNodesPerHistoryReadData nodes (halved on BadTooManyOperations) and
``backfill_values_per_request`` values per node per request, the rest by continuation
point; continuation points left unread are released. Nodes whose gaps start far apart are
not read in one request (one request has one start time for all its nodes). A server
without history, or one that answers a node with a Bad status, a time-out or an invalid
continuation point: one message per source and reason, counted in the connection's health;
that gap stays a gap and nothing else stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds

from common.protocols.opcua import OpcUaSource as OpcUaSourceConfig
from common.timestamps import ns_to_datetime
from edge.sources import SignalKey, StoredMarks, stop_if_cancelled
from edge.sources.opcua.limits import RequestSize
from edge.sources.opcua.nodes import NodeBinding
from edge.sources.opcua.values import to_ns

log = logging.getLogger(__name__)

HISTORY_READ = 0x04
"""The HistoryRead bit of AccessLevel / UserAccessLevel (Part 3, 8.57)."""
RELEASE_TIMEOUT = 2.0
"""Seconds given to releasing continuation points of an abandoned read."""
SAME_REQUEST_SPREAD_NS = 60 * 10**9
ROOM_POLL_S = 0.2
CLOCK_ALLOWANCE_NS = 3600 * 10**9
"""A node without a live value yet is read up to the edge's now plus this: its server's
clock may be ahead of ours."""
_RESTARTABLE = frozenset(
    {
        ua.StatusCodes.BadContinuationPointInvalid,  # type: ignore[attr-defined]
        ua.StatusCodes.BadNoContinuationPoints,  # type: ignore[attr-defined]
    }
)
"""The server forgot or had no room for our continuation point: read on from the last value."""
"""Gaps whose starts lie within this of the earliest one share a request."""

Emit = Callable[[ua.DataValue, Sequence[NodeBinding]], None]
"""Report a history value to the bindings it is for (as a backfilled sample)."""


@dataclass
class BackfillStats:
    """The connection's backfill, as its health reports it."""

    history_nodes: int = 0
    """Nodes whose history this session may read (at the last connect)."""
    gaps: int = 0
    """Node gaps read (since start)."""
    samples: int = 0
    """Backfilled samples reported (since start)."""
    failures: int = 0
    """Node gaps (or whole backfills) given up: the gap stays a gap."""
    last_error: str = ""


@dataclass
class Gap:
    node_id: ua.NodeId
    bindings: list[NodeBinding]
    marks: list[int]
    """Per binding: its newest stored source time; only later values are its to report."""
    start_ns: int
    end_ns: int
    """Exclusive: live data covers from here on."""
    first_live_ns: int | None = None
    """The source time of the first live value after the gap (not reported again)."""
    last_ns: int | None = None
    """The source time of the last value read so far (where a re-read resumes)."""
    continuation: bytes | None = None
    truncated: bool = False
    """The server answered a full request without a continuation point (asyncua's own
    server does): read on from the last value with a new request."""


class Backfill:
    """The backfill of one connection; ``run`` once per (re)connect."""

    def __init__(
        self,
        name: str,
        config: OpcUaSourceConfig,
        marks: StoredMarks | None,
        stats: BackfillStats,
        learned: dict[str, int],
        nodes_per_request: int = 100,
        room: Callable[[], bool] | None = None,
    ) -> None:
        """``room``: whether the buffer can take more (None: always); the backfill waits
        while it cannot."""
        self.name = name
        self.config = config
        self.marks = marks
        self.stats = stats
        self.size = RequestSize("HistoryReadData", nodes_per_request, name, learned)
        self.room = room
        self._told: set[str] = set()
        """Reasons already logged for this source (one line each)."""
        self.pending: int | None = None
        """Since when this connection may still deliver data by backfill: from a loss of live
        data (or the previous agent's last sample) until the backfill after it is done."""
        self._live: dict[str, int] = {}
        self._unfinished: dict[SignalKey, int] = {}
        """Where each signal's gap starts while it is not read to its end: a backfill cut
        short (connection lost, request failed) starts there again, not at the newest mark
        (which live data has moved on meanwhile)."""

    def hold(self, since: int) -> None:
        """Live data stopped at ``since``: what follows may still come by backfill."""
        if self.enabled:
            current = self.pending_since(since)  # an expired hold hides no new loss
            self.pending = since if current is None else min(current, since)

    def release(self) -> None:
        """The backfill is done (or cannot be): nothing more will come for the past."""
        self.pending = None

    def pending_since(self, now: int) -> int | None:
        """``pending``, unless older than ``backfill_max_gap``: no backfill reads that far."""
        pending = self.pending
        if pending is None or now - pending > self.config.backfill_max_gap * 1e9:
            return None
        return pending

    @property
    def enabled(self) -> bool:
        return self.config.backfill == "auto" and self.marks is not None

    async def history_nodes(
        self, client: Client, node_ids: Sequence[ua.NodeId], read: RequestSize, published: int
    ) -> set[ua.NodeId]:
        """The nodes whose history this session may read (UserAccessLevel's HistoryRead)."""
        values = await read.run(
            node_ids,
            lambda chunk: client.uaclient.read_attributes(
                list(chunk), AttributeIds.UserAccessLevel
            ),
            published,
        )
        found = {
            node_id
            for node_id, dv in zip(node_ids, values, strict=True)
            if (dv.StatusCode is None or dv.StatusCode.is_good())
            and dv.Value is not None
            and isinstance(dv.Value.Value, int)
            and dv.Value.Value & HISTORY_READ
        }
        self.stats.history_nodes = len(found)
        return found

    def marks_of(
        self, nodes: Sequence[tuple[ua.NodeId, list[NodeBinding]]]
    ) -> dict[SignalKey, int | None]:
        """The signals' marks as they are now: taken when live data resumes, before it moves
        them."""
        assert self.marks is not None
        stored: dict[SignalKey, int | None] = {}
        for _, bindings in nodes:
            for b in bindings:
                key = (b.process, b.signal)
                mark, open_since = self.marks.get(key), self._unfinished.get(key)
                stored[key] = mark if open_since is None or mark is None else min(mark, open_since)
        return stored

    def gaps(
        self,
        nodes: Sequence[tuple[ua.NodeId, list[NodeBinding]]],
        history: set[ua.NodeId],
        stored: dict[SignalKey, int | None],
        resumed_ns: int,
        first_live: dict[str, int],
        now: int,
    ) -> list[Gap]:
        """The gap of each node between its signals' marks (``stored``, from ``marks_of``)
        and its first live value (``first_live``; ``now`` for a node without one yet): a
        value written while the subscription was being made is in neither otherwise. Nodes
        without history whose signals have a gap are told about once."""
        oldest = resumed_ns - int(self.config.backfill_max_gap * 1e9)
        found: list[Gap] = []
        without = 0
        for node_id, bindings in nodes:
            marks = [stored.get((b.process, b.signal)) for b in bindings]
            known = [mark for mark in marks if mark is not None]
            live = first_live.get(bindings[0].node)
            # Marks and live values are the server's source times, compared with each other
            # only: the edge's clock may differ from the server's by more than the gap.
            if not known or (live is not None and min(known) >= live):
                continue  # never stored (nothing to continue from), or no gap
            if node_id not in history:
                without += 1
                continue
            start = max(min(known), oldest)
            for b, mark in zip(bindings, marks, strict=True):
                if mark is not None:
                    self._unfinished.setdefault((b.process, b.signal), min(known))
            found.append(
                Gap(
                    node_id,
                    bindings,
                    [mark if mark is not None else (live or now) for mark in marks],
                    start,
                    live if live is not None else now + CLOCK_ALLOWANCE_NS,
                    live,
                )
            )
        if without:
            self._tell(
                "no history",
                f"{without} nodes have no history this session may read (UserAccessLevel "
                "without HistoryRead): their gaps stay gaps",
                count=False,
            )
        return found

    async def run(
        self,
        client: Client,
        gaps: list[Gap],
        published: int,
        emit: Emit,
        first_live: dict[str, int] | None = None,
    ) -> None:
        """Read every gap, in requests of gaps that start close together. ``first_live``:
        the connection's first live value per node as it comes (a node whose first live
        value comes after its gap was made ends there all the same)."""
        self._live = first_live if first_live is not None else {}
        while gaps:
            gaps.sort(key=lambda gap: gap.start_ns)
            first = gaps[0].start_ns
            group = [gap for gap in gaps if gap.start_ns - first <= SAME_REQUEST_SPREAD_NS]
            gaps = gaps[len(group) :]
            try:
                await self._read(client, group, published, emit)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server failed the request: stop, keep live data
                # The gaps stay unfinished: the next connect reads them again.
                self.stats.failures += 1
                self._tell(type(exc).__name__, f"history read failed: {_describe(exc)}")
                await self._release(client, group)
                return
            for gap in group:
                if gap.truncated:
                    gap.truncated = False
                    gaps.append(gap)
                else:
                    for b in gap.bindings:
                        self._unfinished.pop((b.process, b.signal), None)

    async def _read(self, client: Client, group: list[Gap], published: int, emit: Emit) -> None:
        """Each chunk of the group read to its end before the next one starts: a server may
        free earlier continuation points when later requests need new ones (Part 4, 7.6)."""
        details = ua.ReadRawModifiedDetails(
            IsReadModified=cast(ua.Boolean, False),
            StartTime=cast(ua.DateTime, ns_to_datetime(min(gap.start_ns for gap in group))),
            EndTime=cast(ua.DateTime, ns_to_datetime(max(gap.end_ns for gap in group))),
            NumValuesPerNode=ua.UInt32(self.config.backfill_values_per_request),
            ReturnBounds=cast(ua.Boolean, False),
        )

        async def call(chunk: Sequence[Gap]) -> list[ua.HistoryReadResult]:
            params = ua.HistoryReadParameters(
                HistoryReadDetails=details,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                ReleaseContinuationPoints=cast(ua.Boolean, False),
                NodesToRead=[
                    ua.HistoryReadValueId(NodeId=gap.node_id, ContinuationPoint=gap.continuation)
                    for gap in chunk
                ],
            )
            results = await client.uaclient.history_read(params)
            stop_if_cancelled()  # asyncua's request may have swallowed our cancellation
            return results

        self.stats.gaps += len(group)
        index = 0
        while index < len(group):
            chunk = group[index : index + self.size.size(published)]
            index += len(chunk)
            pending = chunk
            while pending:
                await self._wait_for_room()
                results = await self.size.run(pending, call, published)
                pending = [
                    gap
                    for gap, result in zip(pending, results, strict=True)
                    if self._answered(gap, result, emit)
                ]
                await asyncio.sleep(0)  # live notifications between two requests

    async def _wait_for_room(self) -> None:
        """While the buffer holds much unsent, let the uplink catch up: a backfill reads
        history faster than the uplink sends, and a full buffer drops the oldest data."""
        # Polled: the buffer has no event for "backlog below a bound", and this is rare.
        while self.room is not None and not self.room():  # noqa: ASYNC110
            await asyncio.sleep(ROOM_POLL_S)

    def _answered(self, gap: Gap, result: ua.HistoryReadResult, emit: Emit) -> bool:
        """Report one node's answer; whether its continuation point is to be followed."""
        status = result.StatusCode
        if status is not None and not status.is_good():
            gap.continuation = None
            if status.value in _RESTARTABLE and gap.last_ns is not None:
                # The server dropped our continuation point: read on from the last value.
                gap.start_ns, gap.truncated = gap.last_ns, True
                return False
            self.stats.failures += 1
            for b in gap.bindings:  # given up: the gap stays (no endless retry)
                self._unfinished.pop((b.process, b.signal), None)
            self._tell(status.name, f"history of node {gap.bindings[0].node}: {status.name}")
            return False
        data = result.HistoryData
        values = list(getattr(data, "DataValues", None) or [])
        last = self._report(gap, values, emit)
        point = result.ContinuationPoint
        # node-opcua hands out the same continuation point for every page: no progress is
        # a repeated point with no values, not a repeated point.
        if point and (values or point != gap.continuation):
            gap.continuation = point
            return True
        gap.continuation = None
        full = len(values) >= self.config.backfill_values_per_request
        if not point and full and last is not None and last > gap.start_ns:
            gap.start_ns, gap.truncated = last, True
        return False

    def _report(self, gap: Gap, values: list[ua.DataValue], emit: Emit) -> int | None:
        """Report the values each binding has not stored yet; the last source time seen."""
        last = None
        for dv in values:
            ts = to_ns(dv.SourceTimestamp) or to_ns(dv.ServerTimestamp)
            if ts is None:
                continue
            last = ts
            gap.last_ns = ts
            live = self._live.get(gap.bindings[0].node, gap.first_live_ns)
            if ts >= gap.end_ns or (live is not None and ts >= live):
                continue
            fresh = [i for i, mark in enumerate(gap.marks) if ts > mark]
            if fresh:
                emit(dv, [gap.bindings[i] for i in fresh])
                self.stats.samples += len(fresh)
                for i in fresh:  # a value read twice (a request resumed at it) is reported once
                    gap.marks[i] = ts
        return last

    async def _release(self, client: Client, group: list[Gap]) -> None:
        """Free the continuation points the server still holds for us (best effort)."""
        held = [gap for gap in group if gap.continuation]
        if not held:
            return
        params = ua.HistoryReadParameters(
            HistoryReadDetails=ua.ReadRawModifiedDetails(),
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            ReleaseContinuationPoints=cast(ua.Boolean, True),
            NodesToRead=[
                ua.HistoryReadValueId(NodeId=gap.node_id, ContinuationPoint=gap.continuation)
                for gap in held
            ],
        )
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RELEASE_TIMEOUT):
                await client.uaclient.history_read(params)
        for gap in held:
            gap.continuation = None

    def _tell(self, reason: str, message: str, *, count: bool = True) -> None:
        if count:
            self.stats.last_error = message
        if reason not in self._told:
            self._told.add(reason)
            log.warning("OPC UA %s: backfill: %s", self.name, message)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout"
    return f"{type(exc).__name__}: {exc}"
