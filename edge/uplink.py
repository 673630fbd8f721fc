"""Publish buffered samples to the central broker: QoS 1, one sequence number per batch.

A batch leaves the buffer only when the broker acknowledged it; otherwise it goes back to
the head of the buffer and is sent again after reconnecting, in order. The edge's birth
message is retained on its state topic, and its death is the Last Will, so the collector
knows when an edge is gone even if it dies without a word.

The link logs in and verifies the broker's certificate as configured (``EDGE_UPLINK__*``).
It speaks MQTT 5 so that a publish the broker's ACL refuses comes back as "Not
authorized": the batch then stays in the buffer and the error names the topic and the user,
instead of being dropped by the broker while counted as sent here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt

from common.endpoints import BrokerAddress
from common.limits import BATCH_MAX_LIVENESS
from common.mqtt_refusals import PublishRefused, RefusalWatch, publish_checked
from common.mqtt_tls import LinkSecurity, explain_link_error
from common.wire import EdgeState, LivenessEvent, SampleColumns, UplinkBatch
from edge.buffer import SampleBuffer
from edge.sources import Backoff

log = logging.getLogger(__name__)

BATCH_MAX_BYTES = 4 * 1024**2
"""Largest encoded batch: well under the collector's default limit (16 MiB) and the
MQTT packet sizes brokers are commonly configured with."""
_TOO_LARGE = {0x95, 0x97}
"""MQTT 5 PUBACK reasons that a smaller batch may cure: packet too large, quota exceeded."""


@dataclass
class UplinkStats:
    state: str = "starting"
    connects: int = 0
    failed_connects: int = 0
    """Attempts that ended before the birth message was accepted (login, TLS, ACL)."""
    batches_sent: int = 0
    samples_sent: int = 0
    last_error: str = ""
    last_ack_latency_s: float = 0.0
    batches_split: int = 0
    """Times a batch was too large (bytes, or refused by the broker) and was halved."""
    heartbeats: int = 0
    """Empty batches sent to carry the watermark while there was nothing else to send."""


@dataclass(frozen=True)
class UplinkIdentity:
    edge: str
    enterprise: str
    plant: str
    register_version: str
    boot: int
    samples_topic: str
    state_topic: str
    health_topic: str
    sources: tuple[str, ...]


class Uplink:
    def __init__(
        self,
        identity: UplinkIdentity,
        broker: BrokerAddress,
        buffer: SampleBuffer,
        *,
        batch_max_samples: int,
        flush_interval: float,
        reconnect_max_delay: float = 30.0,
        security: LinkSecurity | None = None,
        batch_max_bytes: int = BATCH_MAX_BYTES,
        heartbeat_interval: float = 2.0,
        client_id: str | None = None,
        pending_since: Callable[[], int | None] | None = None,
    ) -> None:
        """``heartbeat_interval``: seconds without a batch after which an empty one carries
        the watermark (the KPI waits for it before calling a window final).
        ``pending_since``: the earliest time whose data a source may still deliver (an
        OPC UA backfill to come or under way), which the watermark must not pass."""
        self.identity = identity
        self.broker = broker
        self.security = security or LinkSecurity()
        self.client_id = client_id or f"plantkpi-{identity.edge}"
        self.buffer = buffer
        self.batch_max_samples = batch_max_samples
        self.batch_max_bytes = batch_max_bytes
        self.batch_limit = batch_max_samples
        """Items per batch now: halved while batches are too large, grown back after."""
        self.flush_interval = flush_interval
        self.backoff = Backoff(cap=reconnect_max_delay)
        self.stats = UplinkStats()
        self.seq = 0
        self.wakeup = asyncio.Event()
        self.client: aiomqtt.Client | None = None
        self.refusals: RefusalWatch | None = None
        self.link = 0
        """Connection attempts so far (this boot): the current connection's number."""
        self.heartbeat_interval = heartbeat_interval
        self.complete_until = 0
        """The watermark sent last: everything acquired before it has been acknowledged."""
        self._last_publish = time.monotonic()
        self.pending_since = pending_since

    def caught_up(self) -> int:
        """Now, or the earliest time a backfill may still deliver data for, if earlier (the
        KPI must not call a window final before its backfilled samples are in); never
        before the watermark already sent."""
        now = time.time_ns()
        pending = self.pending_since() if self.pending_since is not None else None
        if pending is None or pending >= now:
            return now
        return max(pending, self.complete_until)

    def _state(self, online: bool, *, shutdown: bool = False) -> bytes:
        return (
            EdgeState(
                edge=self.identity.edge,
                online=online,
                boot=self.identity.boot,
                link=self.link,
                shutdown=shutdown,
                register_version=self.identity.register_version,
                sources=list(self.identity.sources),
            )
            .model_dump_json()
            .encode()
        )

    async def run(self) -> None:
        while True:
            try:
                self.stats.state = "connecting"
                # Each connection has its own number, in its birth and in its Last Will: a
                # Will the broker delivers late is then known to be older than the birth
                # of the next connection (docs/kpi.md, "Edge liveness").
                self.link += 1
                will = aiomqtt.Will(
                    self.identity.state_topic, self._state(False), qos=1, retain=True
                )
                client = aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    username=self.security.username,
                    password=self.security.plain_password(),
                    tls_context=self.security.tls,
                    identifier=self.client_id,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    will=will,
                    keepalive=10,
                    timeout=30,
                    max_inflight_messages=100,
                )
                refusals = RefusalWatch(client)
                async with client:
                    self.client, self.refusals = client, refusals
                    self.stats.connects += 1
                    await publish_checked(
                        client, refusals, self.identity.state_topic, self._state(True), retain=True
                    )
                    self.stats.state = "connected"
                    # last_error and the backoff stay until a batch goes through (or there
                    # is nothing to send): a broker that takes the birth but refuses every
                    # batch must not look healthy, nor be retried every second.
                    log.info(
                        "uplink connected to %s as %s (%s)",
                        self.broker,
                        self.identity.edge,
                        self.security.describe(),
                    )
                    await self._send_loop(client)
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as exc:
                if self.stats.state == "connecting":
                    self.stats.failed_connects += 1
                self.stats.last_error = self.explain(exc)
                log.warning(
                    "uplink: %s (buffer holds %d samples)",
                    self.stats.last_error,
                    self.buffer.stats().depth,
                )
            finally:
                self.client = self.refusals = None
                self.stats.state = "disconnected"
            await asyncio.sleep(self.backoff.next_delay())

    def explain(self, exc: aiomqtt.MqttError) -> str:
        """One line naming the broker, the user and the setting to check."""
        head = f"central broker {self.broker}"
        if isinstance(exc, PublishRefused):
            who = f"user {self.security.username!r}" if self.security.username else "anonymous"
            return (
                f"{head}: {exc} for {who}; the broker's ACL must let this edge publish under "
                f"its plant's topics (`plantkpi-collector acl`), or check EDGE_PLANT, "
                f"EDGE_EDGE_ID and EDGE_UPLINK__USERNAME"
            )
        return explain_link_error(
            exc,
            head,
            self.security,
            login_hint=(
                "EDGE_UPLINK__USERNAME and EDGE_UPLINK__PASSWORD / EDGE_UPLINK__PASSWORD_FILE, "
                "and the broker's ACL for this edge's topics"
            ),
            ca_hint="EDGE_UPLINK__CA_FILE",
        )

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        while True:
            if len(self.buffer) == 0:
                self._link_proven()
                idle = time.monotonic() - self._last_publish
                if idle >= self.heartbeat_interval:
                    await self.send_heartbeat(client)
                    continue
                self.wakeup.clear()
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation that lands as its timeout fires, and the agent never stops.
                try:
                    async with asyncio.timeout(
                        min(self.flush_interval, self.heartbeat_interval - idle)
                    ):
                        await self.wakeup.wait()
                except TimeoutError:
                    continue
            if self.buffer.stats().depth < self.batch_limit:
                # Let a batch fill for up to one flush interval: fewer, larger messages.
                await asyncio.sleep(self.flush_interval)
            await self.send_one(client)

    def _link_proven(self) -> None:
        """The link works (a batch was acknowledged, or nothing waits): forget the past."""
        self.stats.last_error = ""
        self.backoff.reset()

    async def send_one(self, client: aiomqtt.Client) -> None:
        taken = await self.buffer.take(self.batch_limit)
        if not taken:
            self.buffer.give_back()
            return
        # Nothing else waits (sources add synchronously, on this loop): everything acquired
        # until now is in this batch or acknowledged before it.
        caught_up = self.caught_up() if len(self.buffer) == 0 else self.complete_until
        payload = self._batch(caught_up, taken.columns(), taken.liveness).encode()
        items = len(taken.samples) + len(taken.liveness)
        if items > 1 and (
            len(payload) > self.batch_max_bytes or len(taken.liveness) > BATCH_MAX_LIVENESS
        ):
            # Long strings or a pile of liveness events: the collector would refuse it.
            self.buffer.give_back()
            self._shrink(items, f"batch of {len(payload)} bytes, {items} items")
            return
        started = time.monotonic()
        try:
            if self.refusals is None:
                await client.publish(self.identity.samples_topic, payload, qos=1)
            else:
                await publish_checked(client, self.refusals, self.identity.samples_topic, payload)
        except PublishRefused as exc:
            self.buffer.give_back()
            if exc.code in _TOO_LARGE and items > 1:
                # Too large for this broker: smaller batches, not the same one for ever.
                self._shrink(items, f"broker refused a batch of {len(payload)} bytes: {exc}")
                self.stats.last_error = self.explain(exc)
                return
            raise
        except BaseException:
            self.buffer.give_back()
            raise
        self.stats.last_ack_latency_s = time.monotonic() - started
        self.buffer.commit()
        self.complete_until = caught_up
        self._last_publish = time.monotonic()
        self.seq += 1
        self.stats.batches_sent += 1
        self.stats.samples_sent += len(taken.samples)
        self._link_proven()
        if self.batch_limit < self.batch_max_samples:
            self.batch_limit = min(self.batch_max_samples, self.batch_limit * 2)

    def _batch(
        self,
        complete_until: int,
        samples: SampleColumns | None = None,
        liveness: list[LivenessEvent] | None = None,
    ) -> UplinkBatch:
        """The next batch of this edge (sequence number, identity, send time)."""
        return UplinkBatch(
            edge=self.identity.edge,
            enterprise=self.identity.enterprise,
            plant=self.identity.plant,
            register_version=self.identity.register_version,
            boot=self.identity.boot,
            seq=self.seq,
            sent=time.time_ns(),
            complete_until=complete_until,
            samples=samples or SampleColumns(),
            liveness=liveness or [],
        )

    async def send_heartbeat(self, client: aiomqtt.Client) -> None:
        """An empty batch carrying the watermark: the buffer is empty, so everything
        acquired until now has been acknowledged. Lets the KPI call a quiet plant's windows
        final (on-change machines that did not change send nothing else)."""
        caught_up = self.caught_up()
        payload = self._batch(caught_up).encode()
        if self.refusals is None:
            await client.publish(self.identity.samples_topic, payload, qos=1)
        else:
            await publish_checked(client, self.refusals, self.identity.samples_topic, payload)
        self.complete_until = caught_up
        self._last_publish = time.monotonic()
        self.seq += 1
        self.stats.heartbeats += 1

    def _shrink(self, items: int, why: str) -> None:
        self.batch_limit = max(1, items // 2)
        self.stats.batches_split += 1
        log.warning("uplink: %s; sending at most %d items per batch", why, self.batch_limit)

    async def publish_health(self, payload: bytes) -> None:
        client = self.client
        if client is None:
            return
        try:
            await client.publish(self.identity.health_topic, payload, qos=0, retain=True)
        except aiomqtt.MqttError as exc:
            log.debug("health not published: %s", exc)

    async def goodbye(self) -> None:
        """Clean shutdown: say offline ourselves (the Last Will only fires on a lost connection)."""
        client = self.client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):  # gone already: the Will says offline
            await client.publish(
                self.identity.state_topic,
                self._state(False, shutdown=True),
                qos=1,
                retain=True,
            )
