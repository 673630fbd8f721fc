"""One OPC UA connection (session): connect, resolve, subscribe (or poll), rebuild on loss.

Every (re)connect rebuilds all session state from scratch — namespace indexes resolved
from namespace URIs, the server's OperationLimits, one subscription, monitored items in
batches under those limits — because a restarted server may renumber its namespaces, change
its limits and forget our subscription (the failure Telegraf and the ThingsBoard gateway
users hit). asyncua's own auto-reconnect is off: this loop owns recovery, so it also covers
a server that was never reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaStatusCodeError

from common.protocols.opcua import OpcUaSecurity
from common.protocols.opcua import OpcUaSource as OpcUaSourceConfig
from common.wire import Sample
from edge.sources import Backoff, SignalKey, SourceSink, StoredMarks, now_ns, stop_if_cancelled
from edge.sources.opcua.addressing import resolve_addresses
from edge.sources.opcua.backfill import Backfill, BackfillStats
from edge.sources.opcua.limits import OperationLimits, RequestSize, read_operation_limits
from edge.sources.opcua.nodes import NodeBinding, data_change_filter, monitoring_for
from edge.sources.opcua.security import ClientSecurity
from edge.sources.opcua.values import UnsupportedValue, sample_fields

log = logging.getLogger(__name__)

Report = Callable[[bool, str], None]
"""Tells the owning source this connection went up (True) or down (False), with detail."""


@dataclass(frozen=True)
class ConnectionOptions:
    timeout: float = 4.0
    watchdog: float = 5.0
    items_per_call: int = 500
    nodes_per_read: int = 500
    reconnect_max_delay: float = 30.0
    queue_size: int = 10
    """Smallest monitored-item queue when the register gives none."""
    queue_cycles: float = 20.0


@dataclass
class ConnectionHealth:
    state: str = "starting"
    connects: int = 0
    reconnects: int = 0
    last_error: str = ""
    notifications: int = 0
    rejected: int = 0
    nodes: int = 0
    """Distinct nodes this connection is responsible for."""
    nodes_ok: int = 0
    nodes_failed: int = 0
    last_cycle_s: float = 0.0
    """Polling mode: how long the last read cycle took (compare with poll_interval)."""
    server_max_nodes_per_read: int = 0
    server_max_monitored_items_per_call: int = 0
    """The server's OperationLimits as read at the last connect (0: none)."""
    failed_nodes: dict[str, str] = field(default_factory=dict)
    learned_limits: dict[str, int] = field(default_factory=dict)
    """Request sizes learned from BadTooManyOperations, by service (limits.RequestSize)."""
    backfill: BackfillStats = field(default_factory=BackfillStats)
    """Gaps read from the server's history (``backfill.py``)."""


Resolved = list[tuple[ua.NodeId, list[NodeBinding]]]


class NothingToRead(RuntimeError):
    """None of the connection's nodes resolved on this server (all reported as rejected)."""


class OpcUaConnection:
    def __init__(
        self,
        name: str,
        config: OpcUaSourceConfig,
        endpoint: str,
        bindings: Sequence[NodeBinding],
        options: ConnectionOptions,
        report: Report,
        security: ClientSecurity | None = None,
        marks: StoredMarks | None = None,
        room: Callable[[], bool] | None = None,
    ) -> None:
        """``security``: required unless the register's security is None/None, anonymous.
        ``marks``: what the agent stored per signal (a backfill's start); None: no backfill."""
        self.name = name
        """For logs: ``<source id>`` or ``<source id>#<n>``."""
        self.source_id = config.id
        self.config = config
        self.endpoint = endpoint
        self.bindings = list(bindings)
        self.options = options
        self.report = report
        self.backoff = Backoff(cap=options.reconnect_max_delay)
        self.stats = ConnectionHealth(nodes=len({b.node for b in bindings}))
        self.limits = OperationLimits()
        self.security = security
        if security is None and config.security != OpcUaSecurity(policy="None", mode="None"):
            raise ValueError(f"OPC UA source {config.id}: its security needs a ClientSecurity")
        learned = self.stats.learned_limits
        self.read_size = RequestSize("Read", options.nodes_per_read, name, learned)
        self.items_size = RequestSize("CreateMonitoredItems", options.items_per_call, name, learned)
        self.translate_size = RequestSize(
            "TranslateBrowsePathsToNodeIds", options.nodes_per_read, name, learned
        )
        self.backfill = Backfill(name, config, marks, self.stats.backfill, learned, room=room)
        self._first_live: dict[str, int] = {}
        """Per node address: the source time of the first live value since the connect."""
        self._last_live_recv = 0
        """When the last live value came (edge clock)."""
        if marks is not None:
            # The previous agent's last sample: until the first backfill, the past may come.
            stored = [marks.get((b.process, b.signal)) for b in self.bindings]
            last = max((ts for ts in stored if ts is not None), default=None)
            if last is not None:
                self.backfill.hold(last)

    async def run(self, sink: SourceSink) -> None:
        while True:
            lost = asyncio.Event()
            client = Client(
                self.endpoint,
                timeout=self.options.timeout,
                watchdog_intervall=self.options.watchdog,
            )

            async def on_lost(exc: Exception, lost: asyncio.Event = lost) -> None:
                self.stats.last_error = f"connection lost: {_describe(exc)}"
                lost.set()

            client.connection_lost_callback = on_lost
            up = False
            idle = False
            try:
                self.stats.state = "connecting"
                if self.security is not None:
                    # Made on first start, without a timeout (RSA key generation is slow).
                    await self.security.prepare()
                    async with asyncio.timeout(self.options.timeout * 2):
                        await self.security.apply(client, self.endpoint)
                async with asyncio.timeout(self.options.timeout * 2):
                    await client.connect()
                self.stats.connects += 1
                if self.stats.connects > 1:
                    self.stats.reconnects += 1
                nodes = await self._prepare(client, sink)
                history = await self._history_nodes(client, nodes)
                if not history:
                    self.backfill.release()  # nothing will come from this server's history
                self._first_live.clear()
                resumed = now_ns()  # live values cover from here: the backfill up to it
                if self.config.mode == "poll":
                    self.stats.state = "polling"
                    self.report(True, f"connected to {self.endpoint} (polling)")
                    up = True
                    self.backoff.reset()
                    async with self._backfilling(client, nodes, history, resumed, sink):
                        await self._poll(client, nodes, sink, lost)
                else:
                    subscription, by_handle = await self._subscribe(client, nodes, sink)
                    self.stats.state = "subscribed"
                    self.report(True, f"subscribed to {self.stats.nodes_ok} nodes")
                    up = True
                    self.backoff.reset()
                    subscribed = {id(bindings) for bindings in by_handle.values()}
                    monitored = [node for node in nodes if id(node[1]) in subscribed]
                    async with self._backfilling(client, monitored, history, resumed, sink):
                        await self._serve(subscription, by_handle, sink, lost)
            except asyncio.CancelledError:
                self.stats.last_error = "stopped"
                up = False  # a requested stop, not a loss worth a warning
                raise
            except NothingToRead as exc:
                # It holds no values, so it does not keep the source down; the nodes are
                # reported, and resolved again after the backoff (the server may gain them).
                self.stats.last_error = str(exc)
                idle = True
            except Exception as exc:  # any failure: report, back off, rebuild everything
                explained = self.security.explain(exc, self.endpoint) if self.security else None
                self.stats.last_error = explained or _describe(exc)
                log.warning("OPC UA %s (%s): %s", self.name, self.endpoint, self.stats.last_error)
            finally:
                if up and self.stats.backfill.history_nodes:
                    # Live data stopped when the last of it came, not when the loss was
                    # noticed (up to the watchdog and timeout later).
                    last = self._last_live_recv or now_ns()
                    self.backfill.hold(last - int(self.config.publishing_interval * 1e9))
                self.stats.state = "no nodes" if idle else "disconnected"
                self.report(idle, self.stats.last_error or "disconnected")
                if up:
                    log.warning(
                        "OPC UA %s (%s) down: %s", self.name, self.endpoint, self.stats.last_error
                    )
                await _close(client)
            stop_if_cancelled()  # asyncua's close may have swallowed our cancellation
            await asyncio.sleep(self.backoff.next_delay())

    async def _prepare(self, client: Client, sink: SourceSink) -> Resolved:
        """This session's namespace indexes and operation limits; nodes grouped by node id."""
        self.limits = await read_operation_limits(client)
        self.stats.server_max_nodes_per_read = self.limits.max_nodes_per_read
        self.stats.server_max_monitored_items_per_call = self.limits.max_monitored_items_per_call
        namespaces = await client.get_namespace_array()
        by_node: dict[ua.NodeId, list[NodeBinding]] = {}
        self.stats.failed_nodes.clear()
        resolved = await resolve_addresses(
            client,
            [b.node for b in self.bindings],
            namespaces,
            self.translate_size,
            self.limits.max_nodes_per_translate,
        )
        signals: dict[str, list[str]] = {}
        for binding in self.bindings:
            signals.setdefault(binding.node, []).append(f"{binding.process}.{binding.signal}")
        for binding in self.bindings:
            node_id = resolved[binding.node]
            if isinstance(node_id, str):
                named = ", ".join(signals[binding.node])
                keys = [(b.process, b.signal) for b in self.bindings if b.node == binding.node]
                self._node_failed(sink, binding.node, f"{node_id} (signals {named})", keys)
                continue
            by_node.setdefault(node_id, []).append(binding)
        if not by_node:
            raise NothingToRead(
                f"none of the {len(self.bindings)} signals' nodes could be resolved"
            )
        return list(by_node.items())

    async def _history_nodes(self, client: Client, nodes: Resolved) -> set[ua.NodeId]:
        if not self.backfill.enabled:
            return set()
        try:
            return await self.backfill.history_nodes(
                client,
                [node_id for node_id, _ in nodes],
                self.read_size,
                self.limits.max_nodes_per_read,
            )
        except UaStatusCodeError as exc:  # history is extra: live data goes on without it
            self.stats.backfill.last_error = f"cannot read UserAccessLevel: {exc}"
            return set()

    @contextlib.asynccontextmanager
    async def _backfilling(
        self,
        client: Client,
        nodes: Resolved,
        history: set[ua.NodeId],
        resumed: int,
        sink: SourceSink,
    ) -> AsyncIterator[None]:
        """Live data flows in the body; the gap before ``resumed`` is read beside it."""
        if not self.backfill.enabled:
            yield
            return
        marks = self.backfill.marks_of(nodes)  # before live data moves them

        async def backfill() -> None:
            # The first live values arrive first: a value both live and in history is
            # reported once, live.
            await asyncio.sleep(self.config.publishing_interval * 2 + 0.2)
            gaps = self.backfill.gaps(nodes, history, marks, resumed, self._first_live, now_ns())
            if gaps:
                await self.backfill.run(
                    client,
                    gaps,
                    self.limits.max_nodes_per_history_read_data,
                    lambda dv, bindings: self._emit(dv, bindings, sink, backfill=True),
                    self._first_live,
                )
            self.backfill.release()  # read, or given up: the gap is what it is now

        task = asyncio.create_task(backfill(), name=f"opcua-backfill-{self.name}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _node_failed(
        self, sink: SourceSink, node: str, reason: str, signals: Collection[SignalKey] = ()
    ) -> None:
        if node not in self.stats.failed_nodes:
            log.error("OPC UA %s (%s): node %s: %s", self.name, self.endpoint, node, reason)
        self.stats.failed_nodes[node] = reason
        self.stats.nodes_failed = len(self.stats.failed_nodes)
        sink.rejected(self.source_id, node, reason, signals)

    async def _subscribe(
        self, client: Client, nodes: Resolved, sink: SourceSink
    ) -> tuple[Subscription, dict[int, list[NodeBinding]]]:
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=self.config.publishing_interval * 1000,
            RequestedLifetimeCount=300,
            RequestedMaxKeepAliveCount=max(3, int(2 / self.config.publishing_interval)),
            PublishingEnabled=True,
        )
        subscription = await client.create_subscription(params, queue_maxsize=1_000_000)
        return subscription, await self._create_items(subscription, nodes, sink)

    async def _create_items(
        self, subscription: Subscription, nodes: Resolved, sink: SourceSink
    ) -> dict[int, list[NodeBinding]]:
        """Monitored items in calls of at most MaxMonitoredItemsPerCall (ours and the
        server's); each item with its own sampling interval, queue size and deadband. One
        bad node never stops the others."""
        requests = [
            self._request(handle, node_id, bindings)
            for handle, (node_id, bindings) in enumerate(nodes, start=1)
        ]
        by_handle = {handle: bindings for handle, (_, bindings) in enumerate(nodes, start=1)}
        monitored: dict[int, list[NodeBinding]] = {}
        results = await self.items_size.run(
            requests,
            lambda chunk: subscription.create_monitored_items(chunk),
            self.limits.max_monitored_items_per_call,
        )
        for request, result in zip(requests, results, strict=True):
            handle = request.RequestedParameters.ClientHandle
            if isinstance(result, ua.StatusCode):
                reason = f"monitored item refused: {result.name}"
                keys = [(b.process, b.signal) for b in by_handle[handle]]
                self._node_failed(sink, by_handle[handle][0].node, reason, keys)
            else:
                monitored[handle] = by_handle[handle]
        self.stats.nodes_ok = len(monitored)
        return monitored

    def _request(
        self, handle: int, node_id: ua.NodeId, bindings: list[NodeBinding]
    ) -> ua.MonitoredItemCreateRequest:
        monitoring = monitoring_for(
            bindings,
            self.config.publishing_interval,
            min_queue=self.options.queue_size,
            queue_cycles=self.options.queue_cycles,
        )
        parameters = ua.MonitoringParameters(
            ClientHandle=ua.UInt32(handle),
            SamplingInterval=ua.Double(monitoring.sampling_interval * 1000),
            QueueSize=ua.UInt32(monitoring.queue_size),
            DiscardOldest=True,
        )
        mfilter = data_change_filter(monitoring.deadband)
        if mfilter is not None:
            parameters.Filter = mfilter
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=parameters,
        )

    async def _serve(
        self,
        subscription: Subscription,
        by_handle: dict[int, list[NodeBinding]],
        sink: SourceSink,
        lost: asyncio.Event,
    ) -> None:
        consumer = asyncio.create_task(self._consume(subscription, by_handle, sink, lost))
        try:
            await self._watch(subscription, lost)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    async def _consume(
        self,
        subscription: Subscription,
        by_handle: dict[int, list[NodeBinding]],
        sink: SourceSink,
        lost: asyncio.Event,
    ) -> None:
        async for event in subscription:
            if isinstance(event, StatusChangeEvent):
                if not lost.is_set():  # keep the cause (e.g. the keep-alive that failed)
                    self.stats.last_error = (
                        f"subscription status {_status_name(event.notification.Status)}"
                    )
                lost.set()
                continue
            if not isinstance(event, DataChangeEvent):
                continue
            bindings = by_handle.get(event.data.monitored_item.ClientHandle)
            if bindings is not None:
                self._emit(event.data.monitored_item.Value, bindings, sink)

    def _emit(
        self,
        dv: ua.DataValue,
        bindings: Sequence[NodeBinding],
        sink: SourceSink,
        *,
        backfill: bool = False,
    ) -> None:
        recv = now_ns()
        try:
            ts, value, status, server_ts = sample_fields(dv, recv)
        except UnsupportedValue as exc:
            self.stats.rejected += 1
            signals = [(binding.process, binding.signal) for binding in bindings]
            sink.rejected(self.source_id, bindings[0].node, str(exc), signals)
            return
        if backfill:
            for binding in bindings:
                sink.sample(
                    Sample(
                        binding.process, binding.signal, ts, value, status, recv, server_ts, True
                    )
                )
            return
        self.stats.notifications += 1
        self._last_live_recv = recv
        self._first_live.setdefault(bindings[0].node, ts)
        for binding in bindings:
            sink.sample(Sample(binding.process, binding.signal, ts, value, status, recv, server_ts))

    async def _watch(self, subscription: Subscription, lost: asyncio.Event) -> None:
        """Return when the connection is lost or the subscription went silent."""
        keepalive_s = (
            subscription.parameters.RequestedPublishingInterval
            / 1000
            * subscription.parameters.RequestedMaxKeepAliveCount
        )
        started = time.monotonic()
        check = min(1.0, self.options.watchdog / 2)
        while not lost.is_set():
            # asyncio.timeout, not wait_for (3.11's can swallow a cancellation).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(check):
                    await lost.wait()
            last = subscription.last_publish_at or started
            if time.monotonic() - last > keepalive_s + self.options.watchdog:
                self.stats.last_error = "subscription silent past its keep-alive: rebuilding"
                return

    async def _poll(
        self, client: Client, nodes: Resolved, sink: SourceSink, lost: asyncio.Event
    ) -> None:
        self.stats.nodes_ok = len(nodes)
        last_seen: dict[ua.NodeId, tuple[int, int]] = {}
        node_ids = [node_id for node_id, _ in nodes]
        while not lost.is_set():
            cycle_start = time.monotonic()
            values = await self.read_size.run(
                node_ids,
                lambda chunk: client.uaclient.read_attributes(list(chunk), AttributeIds.Value),
                self.limits.max_nodes_per_read,
            )
            stop_if_cancelled()  # asyncua's read may have swallowed our cancellation
            for (node_id, bindings), dv in zip(nodes, values, strict=True):
                # A poll re-reads an unchanged value: the same source timestamp and
                # status mean the same sample, which is not stored twice.
                key = (
                    int(dv.SourceTimestamp.timestamp() * 1e6) if dv.SourceTimestamp else 0,
                    dv.StatusCode.value if dv.StatusCode else 0,
                )
                if dv.SourceTimestamp is not None and last_seen.get(node_id) == key:
                    continue
                last_seen[node_id] = key
                self._emit(dv, bindings, sink)
            self.stats.last_cycle_s = time.monotonic() - cycle_start
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    max(0.0, self.config.poll_interval - self.stats.last_cycle_s)
                ):
                    await lost.wait()


def _status_name(status: ua.StatusCode) -> str:
    return f"{status.name} (0x{status.value:08X})"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "no answer within the timeout (server down, hung, or unreachable)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (server not running or wrong port)"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    if isinstance(exc, UaStatusCodeError):
        return f"server answered {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


async def _close(client: Client) -> None:
    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that lands
    # here (a stop during a failed connect), and the loop then retried forever (seen once:
    # an edge whose stop never ended).
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await client.disconnect()
