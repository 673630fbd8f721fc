"""One device broker connection: subscribe to the register's topics, parse, report.

Subscriptions are made in every (re)connect (a broker restart forgets a clean session).
Every message path — parsed, rejected or unknown — finishes here and never stalls input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common import mqtt_client
from common.endpoints import parse_broker_url
from common.protocols.mqtt import MqttSource as MqttSourceConfig
from common.wire import Sample
from edge.sources import Backoff, SignalKey, SourceSink, now_ns
from edge.sources.mqtt.payload import (
    DEFAULT_LIMITS,
    DeviceLimits,
    PayloadError,
    decode_payload,
    lookup,
    oversize_reason,
    read_reading,
    selected,
)
from edge.sources.mqtt.routing import TopicBinding, TopicRouter
from edge.sources.mqtt.security import BrokerSecurity, build_security, explain_connect_error
from edge.sources.mqtt.sparkplug import PrimaryHostState, SparkplugReader

__all__ = ["DeviceBrokerHealth", "MqttDeviceSource", "TopicBinding"]

log = logging.getLogger(__name__)

# Distinct rejected topics remembered for the health report; wildcard subscriptions can
# bring any number of topics, and the report must stay small.
MAX_REJECTED_TOPICS = 100
REJECTION_LOG_INTERVAL = 60.0
"""Seconds between two log lines about one topic's rejected messages."""
RECEIVE_MAXIMUM = 4000
"""QoS 1/2 messages the broker may have unacknowledged with a persistent session: several
group commits' worth (``EDGE_BUFFER_COMMIT_ITEMS``, 1,000), so the stream never waits for
a commit to end before the next one fills."""
STATE_DEATH_TIMEOUT = 2.0
"""Seconds a clean stop waits for the broker to take the primary host's offline STATE."""


@dataclass
class DeviceBrokerHealth:
    state: str = "starting"
    connects: int = 0
    reconnects: int = 0
    failed_connects: int = 0
    messages: int = 0
    rejected: int = 0
    oversize: int = 0
    """Messages over ``EDGE_DEVICE_PAYLOAD_MAX_BYTES`` (also counted in ``rejected``)."""
    last_error: str = ""
    rejected_by_topic: dict[str, str] = field(default_factory=dict)
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    """``rejected`` by kind: ``no_value``, ``value_type``, ``ts_implausible``, ``payload``…"""


class MqttDeviceSource:
    def __init__(
        self,
        config: MqttSourceConfig,
        bindings: list[TopicBinding],
        *,
        client_id: str,
        broker: str | None = None,
        security: BrokerSecurity | None = None,
        reconnect_max_delay: float = 30.0,
        limits: DeviceLimits = DEFAULT_LIMITS,
    ) -> None:
        self.id = config.id
        self.limits = limits
        self.config = config
        self.broker = parse_broker_url(broker or config.broker)
        self.client_id = client_id
        self.security = security or build_security(config, self.broker, None, Path.cwd())
        plain = [b for b in bindings if b.binding.sparkplug is None]
        self.router = TopicRouter(config.id, plain, config.subscriptions)
        self.filters = self.router.filters()
        self.sparkplug: SparkplugReader | None = None
        self.host: PrimaryHostState | None = None
        if config.sparkplug is not None:
            spark = [b for b in bindings if b.binding.sparkplug is not None]
            self.sparkplug = SparkplugReader(config.id, config.sparkplug, spark, self._reject)
            self.filters += self.sparkplug.filters()
            if config.sparkplug.primary_host_id is not None:
                self.host = PrimaryHostState(config.sparkplug.primary_host_id)
                self.filters.append(self.host.topic)  # subscribed before the STATE birth
        self.backoff = Backoff(cap=reconnect_max_delay)
        self.stats = DeviceBrokerHealth()
        self._rejection_log: dict[str, tuple[float, int]] = {}
        self.generation = 0
        """Counts connections: an acknowledgement is only valid on the one it came from."""
        self._reported_up: bool | None = None
        self._connection: aiomqtt.Client | None = None
        """The live broker connection, if any (tests drop its socket)."""
        self._outbox: list[tuple[str, bytes, int, bool]] = []
        """What to publish on the connection: ``(topic, payload, qos, retain)``."""
        self._outbox_ready = asyncio.Event()
        self._closing = False
        """Set while a clean stop publishes the offline STATE."""

    def health(self) -> dict[str, object]:
        return {
            "broker": str(self.broker),
            "topics": len(self.filters),
            "security": self.security.describe(),
            "persistent_session": self.config.persistent_session,
            **self.stats.__dict__,
            **({"sparkplug": self.sparkplug.health()} if self.sparkplug else {}),
            **({"primary_host": self.host.health()} if self.host else {}),
        }

    def _client(self) -> aiomqtt.Client:
        security = self.security
        password = security.password.get_secret_value() if security.password else None
        # Called at every connect: the primary host's will carries this connect's time.
        will = None
        if self.host is not None:
            death = self.host.will_payload(now_ns() // 1_000_000)
            will = aiomqtt.Will(self.host.topic, death, qos=1, retain=True)
        common: dict[str, Any] = {
            "username": security.username,
            "password": password,
            "tls_context": security.tls,
            "identifier": self.client_id,
            "will": will,
            "keepalive": 15,
            "timeout": 10,
        }
        if not self.config.persistent_session:
            return aiomqtt.Client(self.broker.host, self.broker.port, **common)
        # MQTT 5: clean start off and a session expiry, or mosquitto drops the session (and
        # what was published for us meanwhile) at disconnect. The client id is stable.
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = int(self.config.session_expiry)
        # Acknowledgements wait for the disk (see run): let more messages be in flight
        # than mosquitto's default of 20, or the wait would throttle the device stream.
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=properties,
            **common,
        )
        # With a persistent session the broker keeps what we have not acknowledged, so we
        # acknowledge a message only once its samples are on the edge's disk: a crash
        # of the agent then loses nothing the device broker handed over.
        mqtt_client.enable_manual_acks(client)
        return client

    def _acknowledger(self, client: aiomqtt.Client, mid: int, qos: int) -> Callable[[], None]:
        generation = self.generation

        def ack() -> None:
            # A packet id from an earlier connection means nothing now: the broker
            # re-sends that message, and the samples it carries are stored again as the
            # same points.
            if generation == self.generation:
                mqtt_client.acknowledge(client, mid, qos)

        return ack

    def _report(self, sink: SourceSink, up: bool, detail: str) -> None:
        # Report transitions only: a broker refusing us every 30 s is one "down", not many.
        if self._reported_up is not up:
            self._reported_up = up
            sink.liveness(self.id, up, detail)

    async def run(self, sink: SourceSink) -> None:
        while True:
            connected = False
            try:
                self.stats.state = "connecting"
                self.generation += 1
                self._closing = False
                if self.sparkplug is not None:
                    self.sparkplug.reset()  # births seen on an earlier connection are void
                client = self._client()
                # Before connecting: a persistent session's queued messages come at once.
                mqtt_client.deliver_to(client, self._receiver(client, sink))
                async with client:
                    connected = True
                    self._connection = client
                    self.stats.connects += 1
                    if self.stats.connects > 1:
                        self.stats.reconnects += 1
                    if self.filters:
                        topics: list[tuple[str, int]] = [(f, self.config.qos) for f in self.filters]
                        await client.subscribe(topics)
                    if self.host is not None:
                        await self._publish_state(client, self.host.birth_payload())
                    self.stats.state = "subscribed"
                    self._report(
                        sink, True, f"subscribed to {len(self.filters)} topics on {self.broker}"
                    )
                    self.backoff.reset()
                    sender = asyncio.create_task(self._send_outbox(client))
                    try:
                        await mqtt_client.disconnected(client)
                    except asyncio.CancelledError:
                        # Our own offline STATE, echoed back, is not answered: no more
                        # publishing but the death.
                        self._closing = True
                        await _stopped(sender)
                        await self._state_death(client)
                        raise
                    finally:
                        await _stopped(sender)
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as exc:
                if not connected:
                    self.stats.failed_connects += 1
                self.stats.last_error = explain_connect_error(
                    exc, self.id, self.broker, self.security
                )
                log.warning("%s", self.stats.last_error)
            finally:
                self._connection = None
                self._outbox.clear()
                self.stats.state = "disconnected"
                self._report(sink, False, self.stats.last_error or "disconnected")
            await asyncio.sleep(self.backoff.next_delay())

    def _receiver(self, client: aiomqtt.Client, sink: SourceSink) -> mqtt_client.MessageCallback:
        """What paho calls with each message of this connection, on the event loop."""

        def receive(topic: str, payload: bytes, qos: int, mid: int) -> None:
            self.handle(topic, payload, sink)
            if self.sparkplug is not None:
                for command_topic, command in self.sparkplug.take_commands():
                    self._outbox.append((command_topic, command, 0, False))
            if self.host is not None and not self._closing and self.host.take_republish():
                self._outbox.append((self.host.topic, self.host.birth_payload(), 1, True))
            if self._outbox:
                self._outbox_ready.set()
            if self.config.persistent_session and qos > 0:
                sink.after_durable(self._acknowledger(client, mid, qos))

        return receive

    async def _send_outbox(self, client: aiomqtt.Client) -> None:
        """Publish what handling messages asked for (Sparkplug rebirth requests, our STATE
        again), in order; the connection's end stops it."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                topic, payload, qos, retain = self._outbox.pop(0)
                try:
                    await client.publish(topic, payload, qos=qos, retain=retain)
                except aiomqtt.MqttError as exc:
                    log.warning("MQTT %s: not published on %s: %s", self.id, topic, exc)
                    return

    async def _publish_state(self, client: aiomqtt.Client, payload: bytes) -> None:
        assert self.host is not None
        await client.publish(self.host.topic, payload, qos=1, retain=True)

    async def _state_death(self, client: aiomqtt.Client) -> None:
        """A clean stop: the primary host's offline STATE before the DISCONNECT (which
        makes the broker discard the will)."""
        if self.host is None:
            return
        try:
            await client.publish(
                self.host.topic,
                self.host.death_payload(now_ns() // 1_000_000),
                qos=1,
                retain=True,
                timeout=STATE_DEATH_TIMEOUT,
            )
        except aiomqtt.MqttError as exc:
            log.warning("MQTT %s: offline STATE not published at stop: %s", self.id, exc)

    def handle(self, topic: str, payload: bytes, sink: SourceSink) -> None:
        self.stats.messages += 1
        if len(payload) > self.limits.payload_bytes:
            # Before any parser (JSON or Sparkplug) spends time or memory on it.
            self.stats.oversize += 1
            self._reject(sink, topic, oversize_reason(len(payload), self.limits))
            return
        if self.host is not None and topic == self.host.topic:
            self.host.handle(payload)  # our own STATE, or what replaced it
            return
        if self.sparkplug is not None and self.sparkplug.claims(topic):
            self.sparkplug.handle(topic, payload, now_ns(), sink)
            return
        bindings = self.router.route(topic)
        if isinstance(bindings, str):
            self._reject(sink, topic, bindings)
            return
        recv = now_ns()
        keys = [(b.process, b.signal.id) for b in bindings]
        try:  # once for every signal of the topic
            document = decode_payload(
                payload, plain=any(b.binding.path == "." for b in bindings), limits=self.limits
            )
        except PayloadError as exc:
            self._reject(sink, topic, str(exc), exc.rule, keys)
            return
        taken = False
        for binding in bindings:
            read = binding.binding
            if read.select is not None and not selected(document, read.select):
                continue
            taken = True
            try:
                ts, value, status = read_reading(
                    document,
                    path=read.path,
                    timestamp_path=read.timestamp_path,
                    quality_path=read.quality_path,
                    recv_ns=recv,
                    limits=self.limits,
                    value_type=read.value_type,
                )
            except PayloadError as exc:
                self._reject(
                    sink, topic, str(exc), exc.rule, [(binding.process, binding.signal.id)]
                )
                continue
            sink.sample(Sample(binding.process, binding.signal.id, ts, value, status, recv))
        if not taken:
            # Not charged to the topic's signals: devices publish readings the register
            # does not bind, and those say nothing about the bound ones.
            self._reject(sink, topic, unselected_reason(document, bindings), "select")

    def _reject(
        self,
        sink: SourceSink,
        topic: str,
        reason: str,
        rule: str = "payload",
        signals: Collection[SignalKey] = (),
    ) -> None:
        self.stats.rejected += 1
        by_rule = self.stats.rejected_by_rule
        by_rule[rule] = by_rule.get(rule, 0) + 1
        known = self.stats.rejected_by_topic
        if topic in known or len(known) < MAX_REJECTED_TOPICS:
            known[topic] = reason
            self._log_rejection(topic, reason)
        sink.rejected(self.id, f"topic {topic}", reason, signals)

    def _log_rejection(self, topic: str, reason: str) -> None:
        """Every topic's first rejection, then at most one line a topic per
        ``REJECTION_LOG_INTERVAL`` with the count since: a misconfigured payload path keeps
        being visible without one log line per message."""
        now = time.monotonic()
        last, unlogged = self._rejection_log.get(topic, (-math.inf, 0))
        if now - last < REJECTION_LOG_INTERVAL:
            self._rejection_log[topic] = (last, unlogged + 1)
            return
        more = f" ({unlogged} more since the last report)" if unlogged else ""
        log.warning("MQTT %s: rejected message on %s: %s%s", self.id, topic, reason, more)
        self._rejection_log[topic] = (now, 0)


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def unselected_reason(document: object, bindings: list[TopicBinding]) -> str:
    """Why no signal of a topic took a message: what each selects, and what came."""
    wanted = "; ".join(
        ", ".join(f"{path}={value!r}" for path, value in (b.binding.select or {}).items())
        for b in bindings
    )
    fields = sorted({path for b in bindings for path in b.binding.select or {}})
    got = ", ".join(
        f"{path}={found!r}" if ok else f"no {path}"
        for path in fields
        for ok, found in [lookup(document, path)]
    )
    return f"no signal of the topic selects this message ({got}; signals select {wanted})"
