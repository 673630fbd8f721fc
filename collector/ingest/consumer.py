"""The collector's MQTT side: subscribe to every edge's uplink, feed the pipeline.

MQTT 5 with a stable client id, clean start off and a session expiry interval, so the
broker keeps our subscription and queues QoS 1 batches while the collector restarts.
Subscriptions are renewed on every connect (a broker restart may have lost them).
Login and TLS come from ``COLLECTOR_BROKER__*``; a refused login, an unverifiable broker
certificate or a subscription the broker's ACL refuses is logged naming the broker and the
user, and retried with backoff: the consumer never stalls silently.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from collector.ingest.dead_letters import DeadLetterPublisher
from collector.ingest.intake import Intake
from collector.ingest.pipeline import IngestPipeline
from common import mqtt_client
from common.backoff import Backoff
from common.endpoints import BrokerAddress
from common.mqtt_refusals import RefusalWatch
from common.mqtt_tls import NOT_AUTHORIZED, LinkSecurity, explain_link_error
from common.topics import parse_edge_topic, subscription
from common.wire import EdgeState

log = logging.getLogger(__name__)


@dataclass
class ConsumerStats:
    state: str = "starting"
    connects: int = 0
    messages: int = 0
    bad_topics: int = 0
    failed_messages: int = 0
    acked: int = 0
    read_pauses: int = 0
    """Times reading from the broker stopped until handling caught up (InfluxDB behind)."""
    last_error: str = ""
    silent_s: float = 0.0
    """Seconds since subscribing with nothing received at all (0 once anything arrives)."""


class UplinkConsumer:
    def __init__(
        self,
        pipeline: IngestPipeline,
        broker: BrokerAddress,
        *,
        prefix: str,
        client_id: str,
        session_expiry: int = 3600,
        receive_maximum: int = 8,
        reconnect_max_delay: float = 30.0,
        share_group: str = "",
        security: LinkSecurity | None = None,
        silence_warning: float = 120.0,
        dead_letters: DeadLetterPublisher | None = None,
    ) -> None:
        """``silence_warning``: seconds after subscribing with no message at all (edges
        publish health every few seconds) after which the consumer warns; ``dead_letters``
        publishes on this consumer's connection (the pipeline's refusals too)."""
        self.security = security or LinkSecurity()
        self.silence_warning = silence_warning
        self.share_group = share_group
        self.pipeline = pipeline
        self.broker = broker
        self.prefix = prefix
        self.client_id = client_id
        self.session_expiry = session_expiry
        self.receive_maximum = receive_maximum
        self.reconnect_max_delay = reconnect_max_delay
        self.stats = ConsumerStats()
        self.client: aiomqtt.Client | None = None
        self.dead_letters = dead_letters or DeadLetterPublisher(prefix)
        self.connected = asyncio.Event()
        self.generation = 0
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()  # never set: a paused consumer waits for shutdown
        self._intake: Intake | None = None

    async def run(self) -> None:
        backoff = Backoff(cap=self.reconnect_max_delay)
        connect_props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect_props.SessionExpiryInterval = self.session_expiry
        # At most this many batches unacknowledged, hence in this process: a backlog waits
        # in the broker, not in memory (docs/benchmarks.md, "Collector ingest").
        connect_props.ReceiveMaximum = self.receive_maximum
        while True:
            try:
                self.stats.state = "connecting"
                client = aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    username=self.security.username,
                    password=self.security.plain_password(),
                    tls_context=self.security.tls,
                    identifier=self.client_id,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    clean_start=False,
                    properties=connect_props,
                    keepalive=15,
                    timeout=30,
                )
                # Acknowledge a batch only once InfluxDB has it.
                mqtt_client.enable_manual_acks(client)
                refusals = RefusalWatch(client)
                # Before connecting: a persistent session's queued batches come at once.
                intake = self._open_intake(client)
                async with client:
                    self.client = client
                    self.dead_letters.attach(client, refusals, intake)
                    self.generation += 1
                    self.stats.connects += 1
                    with intake.reading_for_reply():  # the SUBACK
                        await self._subscribe(client)
                    self.stats.state = "subscribed"
                    self.stats.last_error = ""
                    self.connected.set()
                    log.info(
                        "collector subscribed to %s/v1/+/+/+/… on %s (%s)",
                        self.prefix,
                        self.broker,
                        self.security.describe(),
                    )
                    backoff.reset()
                    watch = asyncio.create_task(self._warn_while_silent(), name="silence")
                    try:
                        await self._read(client, intake)
                    finally:
                        watch.cancel()
                        intake.close()
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as exc:
                self.stats.last_error = explain_link_error(
                    exc,
                    f"broker {self.broker}",
                    self.security,
                    login_hint=(
                        "COLLECTOR_BROKER__USERNAME and COLLECTOR_BROKER__PASSWORD / "
                        "COLLECTOR_BROKER__PASSWORD_FILE"
                    ),
                    ca_hint="COLLECTOR_BROKER__CA_FILE",
                )
                log.warning("uplink consumer: %s", self.stats.last_error)
            finally:
                self.client = None
                self.dead_letters.detach()
                self.connected.clear()
                self.stats.state = "disconnected"
            await asyncio.sleep(backoff.next_delay())

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        filters = [
            (self._shared(subscription(self.prefix, "samples")), 1),
            (self._shared(subscription(self.prefix, "state")), 1),
            # Every instance wants every edge's health for its API view.
            (subscription(self.prefix, "health"), 0),
        ]
        granted = await client.subscribe(filters)
        refused = [
            f"{topic_filter} ({code})"
            for (topic_filter, _), code in zip(filters, _reason_codes(granted), strict=False)
            if code >= 0x80
        ]
        if refused:
            who = f"user {self.security.username!r}" if self.security.username else "anonymous"
            hint = (
                "; the broker's ACL must let it read the uplink topics (`plantkpi-collector acl`)"
                if any(f"({NOT_AUTHORIZED})" in item for item in refused)
                else ""
            )
            raise aiomqtt.MqttError(f"subscription refused for {who}: {', '.join(refused)}{hint}")

    async def _warn_while_silent(self) -> None:
        """mosquitto grants any subscription and applies its ACL only when delivering: a
        collector without read rights gets no error, only silence. Say so."""
        before = self.stats.messages
        waited = 0.0
        while self.stats.messages == before:
            await asyncio.sleep(self.silence_warning)
            if self.stats.messages != before:
                break
            waited += self.silence_warning
            self.stats.silent_s = waited
            who = f"user {self.security.username!r}" if self.security.username else "anonymous"
            log.warning(
                "uplink consumer: nothing received from %s in %.0f s since subscribing to "
                "%s/v1/+/+/+/…: either no edge has published yet, or the broker's ACL does "
                "not let %s read the uplink topics (`plantkpi-collector acl`)",
                self.broker,
                waited,
                self.prefix,
                who,
            )
        self.stats.silent_s = 0.0

    def _open_intake(self, client: aiomqtt.Client) -> Intake:
        """Where this connection's messages wait for :meth:`_read`; at the Receive Maximum
        the socket is no longer read, so a broker that sends more than it should cannot
        fill this process (``collector/ingest/intake.py``)."""
        intake: Intake | None = None

        def receive(topic: str, payload: bytes, qos: int, mid: int) -> None:
            assert intake is not None
            intake.put(topic, payload, qos, mid)

        reader = mqtt_client.deliver_to(client, receive)
        intake = Intake(reader, self.receive_maximum, on_pause=self._count_pause)
        self._intake = intake
        return intake

    def _count_pause(self) -> None:
        self.stats.read_pauses += 1

    async def _read(self, client: aiomqtt.Client, intake: Intake) -> None:
        """Handle messages in order until the connection ends (raises its error); the one
        being handled then is finished first."""
        lost = asyncio.ensure_future(mqtt_client.disconnected(client))
        lost.add_done_callback(lambda _: intake.close())
        try:
            while (message := await intake.get()) is not None:
                if self.paused.is_set():
                    # Shutting down: leave it unacknowledged; the broker sends it again.
                    await self.resume.wait()
                ack = self._acknowledger(client, message.mid, message.qos)
                try:
                    await self.handle(message.topic, message.payload, ack)
                except Exception:
                    # One message must never stop ingestion: log it, count it, go on.
                    self.stats.failed_messages += 1
                    log.exception("failed to process a message on %s", message.topic)
                    ack()
            await lost  # raises how the connection ended
        finally:
            lost.cancel()

    def _acknowledger(self, client: aiomqtt.Client, mid: int, qos: int) -> Callable[[], None]:
        generation = self.generation

        def ack() -> None:
            # After a reconnect the old packet id means nothing: the broker redelivers the
            # message and the write, being idempotent, stores the same points again.
            if qos > 0 and generation == self.generation and self.client is client:
                mqtt_client.acknowledge(client, mid, qos)
                self.stats.acked += 1

        return ack

    def _shared(self, topic_filter: str) -> str:
        """With a share group, instances split the batches (MQTT 5 shared subscription)."""
        return f"$share/{self.share_group}/{topic_filter}" if self.share_group else topic_filter

    def pause(self) -> None:
        """Stop taking new messages (for a clean shutdown); acks of queued ones still go out."""
        self.paused.set()
        if self._intake is not None:
            self._intake.stop_reading()

    async def handle(self, topic_name: str, payload: bytes, ack: Callable[[], None]) -> None:
        """Route one message; every path ends in ``ack`` (now, or once stored)."""
        self.stats.messages += 1
        try:
            topic = parse_edge_topic(self.prefix, topic_name)
        except ValueError as exc:
            self.stats.bad_topics += 1
            log.warning("ignored message: %s", exc)
            ack()
            return
        if topic.kind == "samples":
            await self.pipeline.submit_batch(topic, topic_name, payload, on_written=ack)
            return
        limit = self.pipeline.limits.report_bytes
        if len(payload) > limit:
            # State and health are small; parsing a huge one would cost memory for nothing.
            self.pipeline.violations.count(
                "report_bytes",
                f"{topic.kind} message of {len(payload)} bytes on {topic_name} is larger than "
                f"{limit} (COLLECTOR_LIMITS__REPORT_BYTES); ignored",
            )
            ack()
            return
        if topic.kind == "state":
            try:
                state = EdgeState.model_validate_json(payload)
            except ValidationError as exc:
                log.warning("bad edge state on %s: %s", topic_name, exc.errors()[0]["msg"])
                ack()
                return
            await self.pipeline.submit_edge_state(topic, state, on_written=ack)
        else:
            ack()
            try:
                health = json.loads(payload)
            except (ValueError, RecursionError):
                log.warning("bad edge health report on %s", topic_name)
                return
            if isinstance(health, dict):
                self.pipeline.edges.health_arrived(topic, health)


def _reason_codes(granted: object) -> list[int]:
    """SUBACK codes as ints (MQTT 5: ReasonCode objects, 3.1.1: granted QoS ints)."""
    if not isinstance(granted, list | tuple):
        return []
    codes: list[int] = []
    for code in granted:
        value = getattr(code, "value", code)
        codes.append(value if isinstance(value, int) else 0x80)
    return codes
