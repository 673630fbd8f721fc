"""One OPC UA connection: connect, resolve, subscribe (or poll), and rebuild on any loss.

Every (re)connect rebuilds all session state from scratch — namespace indexes resolved
from namespace URIs, one subscription, monitored items created in batches — because a
restarted server may renumber its namespaces and forget our subscription (the failure
Telegraf and the ThingsBoard gateway users hit). asyncua's own auto-reconnect is off:
this loop owns recovery, so it also covers a server that was never reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaStatusCodeError, UaStringParsingError

from common.register import OpcUaSource as OpcUaSourceConfig
from edge.sources import Backoff, SourceSink, now_ns
from edge.sources.opcua.values import UnsupportedValue, sample_fields

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeBinding:
    """A register signal read from one node."""

    node: str
    process: str
    signal: str
    sampling_interval: float


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


@dataclass
class ConnectionHealth:
    state: str = "starting"
    connects: int = 0
    reconnects: int = 0
    last_error: str = ""
    notifications: int = 0
    rejected: int = 0
    nodes_ok: int = 0
    nodes_failed: int = 0
    last_cycle_s: float = 0.0
    """Polling mode: how long the last read cycle took (compare with poll_interval)."""
    failed_nodes: dict[str, str] = field(default_factory=dict)


class OpcUaSource:
    def __init__(
        self,
        config: OpcUaSourceConfig,
        bindings: list[NodeBinding],
        *,
        endpoint: str | None = None,
        timeout: float = 4.0,
        watchdog: float = 5.0,
        items_per_call: int = 500,
        nodes_per_read: int = 500,
        reconnect_max_delay: float = 30.0,
        queue_size: int = 10,
        queue_cycles: float = 20.0,
    ) -> None:
        self.id = config.id
        self.config = config
        self.endpoint = endpoint or config.endpoint
        self.bindings = bindings
        self.timeout = timeout
        self.watchdog = watchdog
        self.items_per_call = items_per_call
        self.nodes_per_read = nodes_per_read
        self.queue_size = queue_size
        self.queue_cycles = queue_cycles
        self.backoff = Backoff(cap=reconnect_max_delay)
        self.stats = ConnectionHealth()

    def health(self) -> dict[str, object]:
        return {"endpoint": self.endpoint, "mode": self.config.mode, **self.stats.__dict__}

    async def run(self, sink: SourceSink) -> None:
        while True:
            lost = asyncio.Event()
            client = Client(self.endpoint, timeout=self.timeout, watchdog_intervall=self.watchdog)

            async def on_lost(exc: Exception, lost: asyncio.Event = lost) -> None:
                self.stats.last_error = f"connection lost: {exc!r}"
                lost.set()

            client.connection_lost_callback = on_lost
            up = False
            try:
                self.stats.state = "connecting"
                await asyncio.wait_for(client.connect(), self.timeout * 2)
                self.stats.connects += 1
                if self.stats.connects > 1:
                    self.stats.reconnects += 1
                if self.config.mode == "poll":
                    nodes = await self._resolve(client, sink)
                    sink.liveness(self.id, True, f"connected to {self.endpoint} (polling)")
                    up = True
                    self.backoff.reset()
                    await self._poll(client, nodes, sink, lost)
                else:
                    await self._subscribe_and_serve(client, sink, lost)
                    up = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: report, back off, rebuild everything
                self.stats.last_error = _describe(exc)
                log.warning("OPC UA %s (%s): %s", self.id, self.endpoint, self.stats.last_error)
            finally:
                self.stats.state = "disconnected"
                if up or self.stats.connects == 0:
                    sink.liveness(self.id, False, self.stats.last_error or "disconnected")
                await _close(client)
            await asyncio.sleep(self.backoff.next_delay())

    async def _resolve(
        self, client: Client, sink: SourceSink
    ) -> list[tuple[ua.NodeId, NodeBinding]]:
        namespaces = await client.get_namespace_array()
        resolved: list[tuple[ua.NodeId, NodeBinding]] = []
        self.stats.failed_nodes.clear()
        for binding in self.bindings:
            try:
                resolved.append((resolve_node_id(binding.node, namespaces), binding))
            except NodeResolutionError as exc:
                self._node_failed(sink, binding.node, str(exc))
        return resolved

    def _node_failed(self, sink: SourceSink, node: str, reason: str) -> None:
        if node not in self.stats.failed_nodes:
            log.error("OPC UA %s: node %s: %s", self.endpoint, node, reason)
        self.stats.failed_nodes[node] = reason
        self.stats.nodes_failed = len(self.stats.failed_nodes)
        sink.rejected(self.id, node, reason)

    async def _subscribe_and_serve(
        self, client: Client, sink: SourceSink, lost: asyncio.Event
    ) -> None:
        nodes = await self._resolve(client, sink)
        if not nodes:
            raise RuntimeError("none of this source's nodes could be resolved")
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=self.config.publishing_interval * 1000,
            RequestedLifetimeCount=300,
            RequestedMaxKeepAliveCount=max(3, int(2 / self.config.publishing_interval)),
            PublishingEnabled=True,
        )
        subscription = await client.create_subscription(params, queue_maxsize=1_000_000)
        by_node = await self._create_items(client, subscription, nodes, sink)
        self.stats.state = "subscribed"
        sink.liveness(self.id, True, f"subscribed to {len(by_node)} nodes on {self.endpoint}")
        self.backoff.reset()
        consumer = asyncio.create_task(self._consume(subscription, by_node, sink, lost))
        try:
            await self._watch(subscription, lost)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    async def _create_items(
        self,
        client: Client,
        subscription: Subscription,
        nodes: list[tuple[ua.NodeId, NodeBinding]],
        sink: SourceSink,
    ) -> dict[ua.NodeId, list[NodeBinding]]:
        """Create monitored items in batches; one bad node never stops the others."""
        by_node: dict[ua.NodeId, list[NodeBinding]] = {}
        for node_id, binding in nodes:
            by_node.setdefault(node_id, []).append(binding)
        unique = list(by_node.items())
        monitored: dict[ua.NodeId, list[NodeBinding]] = {}
        for start in range(0, len(unique), self.items_per_call):
            chunk = unique[start : start + self.items_per_call]
            interval_s = min(b[0].sampling_interval for _, b in chunk)
            chunk_nodes: list[Node] = [client.get_node(node_id) for node_id, _ in chunk]
            handles: list[int | ua.StatusCode] = await subscription.subscribe_data_change(
                chunk_nodes,
                queuesize=self._queue_size(interval_s),
                sampling_interval=ua.Double(interval_s * 1000),
            )
            for (node_id, bindings), handle in zip(chunk, handles, strict=True):
                if isinstance(handle, ua.StatusCode):
                    self._node_failed(
                        sink, bindings[0].node, f"monitored item refused: {handle.name}"
                    )
                else:
                    monitored[node_id] = bindings
        self.stats.nodes_ok = len(monitored)
        return monitored

    def _queue_size(self, sampling_interval: float) -> int:
        """Room for every sample of several publishing cycles: a server whose publish
        cycle runs late discards the oldest queued values without telling the client."""
        per_cycle = self.config.publishing_interval / max(sampling_interval, 0.001)
        return min(10_000, max(self.queue_size, math.ceil(per_cycle * self.queue_cycles)))

    async def _consume(
        self,
        subscription: Subscription,
        by_node: dict[ua.NodeId, list[NodeBinding]],
        sink: SourceSink,
        lost: asyncio.Event,
    ) -> None:
        async for event in subscription:
            if isinstance(event, StatusChangeEvent):
                self.stats.last_error = f"subscription status {event.notification.Status}"
                lost.set()
                continue
            if not isinstance(event, DataChangeEvent):
                continue
            bindings = by_node.get(event.node.nodeid)
            if bindings is not None:
                self._emit(event.data.monitored_item.Value, bindings, sink)

    def _emit(self, dv: ua.DataValue, bindings: list[NodeBinding], sink: SourceSink) -> None:
        recv = now_ns()
        try:
            ts, value, status, server_ts = sample_fields(dv, recv)
        except UnsupportedValue as exc:
            self.stats.rejected += 1
            sink.rejected(self.id, bindings[0].node, str(exc))
            return
        self.stats.notifications += 1
        for binding in bindings:
            sink.sample(binding.process, binding.signal, ts, value, status, recv, server_ts)

    async def _watch(self, subscription: Subscription, lost: asyncio.Event) -> None:
        """Return when the connection is lost or the subscription went silent."""
        keepalive_s = (
            subscription.parameters.RequestedPublishingInterval
            / 1000
            * subscription.parameters.RequestedMaxKeepAliveCount
        )
        started = time.monotonic()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), 1.0)
            last = subscription.last_publish_at or started
            if time.monotonic() - last > keepalive_s + self.watchdog:
                self.stats.last_error = "subscription silent past its keep-alive: rebuilding"
                return

    async def _poll(
        self,
        client: Client,
        nodes: list[tuple[ua.NodeId, NodeBinding]],
        sink: SourceSink,
        lost: asyncio.Event,
    ) -> None:
        self.stats.state = "polling"
        self.stats.nodes_ok = len(nodes)
        last_seen: dict[ua.NodeId, tuple[int, int]] = {}
        while not lost.is_set():
            cycle_start = time.monotonic()
            for start in range(0, len(nodes), self.nodes_per_read):
                chunk = nodes[start : start + self.nodes_per_read]
                values = await client.uaclient.read_attributes(
                    [node_id for node_id, _ in chunk], AttributeIds.Value
                )
                for (node_id, binding), dv in zip(chunk, values, strict=True):
                    # A poll re-reads an unchanged value: the same source timestamp and
                    # status mean the same sample, which is not stored twice.
                    key = (
                        int(dv.SourceTimestamp.timestamp() * 1e6) if dv.SourceTimestamp else 0,
                        dv.StatusCode.value if dv.StatusCode else 0,
                    )
                    if dv.SourceTimestamp is not None and last_seen.get(node_id) == key:
                        continue
                    last_seen[node_id] = key
                    self._emit(dv, [binding], sink)
            self.stats.last_cycle_s = time.monotonic() - cycle_start
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    lost.wait(), max(0.0, self.config.poll_interval - self.stats.last_cycle_s)
                )


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
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), 2.0)
