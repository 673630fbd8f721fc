"""The collector's MQTT side: subscribe to every edge's uplink, feed the pipeline.

MQTT 5 with a stable client id, clean start off and a session expiry interval, so the
broker keeps our subscription and queues QoS 1 batches while the collector restarts.
Subscriptions are renewed on every connect (a broker restart may have lost them).
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

from collector.ingest.pipeline import IngestPipeline
from common.backoff import Backoff
from common.endpoints import BrokerAddress, tls_context
from common.topics import EdgeTopic, dead_letter_topic, parse_edge_topic, subscription
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
    last_error: str = ""


class UplinkConsumer:
    def __init__(
        self,
        pipeline: IngestPipeline,
        broker: BrokerAddress,
        *,
        prefix: str,
        client_id: str,
        session_expiry: int = 3600,
        reconnect_max_delay: float = 30.0,
        share_group: str = "",
    ) -> None:
        self.share_group = share_group
        self.pipeline = pipeline
        self.broker = broker
        self.prefix = prefix
        self.client_id = client_id
        self.session_expiry = session_expiry
        self.reconnect_max_delay = reconnect_max_delay
        self.stats = ConsumerStats()
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.generation = 0
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()  # never set: a paused consumer waits for shutdown

    async def dead_letter(
        self, topic: EdgeTopic | None, topic_name: str, payload: bytes, reason: str
    ) -> None:
        client = self.client
        target = (
            dead_letter_topic(self.prefix, topic.enterprise, topic.plant, topic.edge)
            if topic is not None
            else f"{self.prefix}/v1/deadletter/unknown"
        )
        envelope = json.dumps(
            {"topic": topic_name, "reason": reason, "payload": payload.decode("utf-8", "replace")}
        ).encode()
        if client is None:
            log.error("dead letter not published (broker down): %s", reason)
            return
        try:
            await client.publish(target, envelope, qos=1)
        except aiomqtt.MqttError as exc:
            log.error("dead letter not published (%s): %s", exc, reason)

    async def run(self) -> None:
        backoff = Backoff(cap=self.reconnect_max_delay)
        connect_props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect_props.SessionExpiryInterval = self.session_expiry
        while True:
            try:
                self.stats.state = "connecting"
                client = aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    tls_context=tls_context(self.broker),
                    identifier=self.client_id,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    clean_start=False,
                    properties=connect_props,
                    keepalive=15,
                    timeout=30,
                    max_queued_incoming_messages=1000,
                )
                # Acknowledge a batch only once InfluxDB has it. aiomqtt has no public
                # switch for paho's manual acknowledgement yet (aiomqtt issue #345).
                client._client.manual_ack_set(True)
                async with client:
                    self.client = client
                    self.generation += 1
                    self.stats.connects += 1
                    await client.subscribe(
                        [
                            (self._shared(subscription(self.prefix, "samples")), 1),
                            (self._shared(subscription(self.prefix, "state")), 1),
                            # Every instance wants every edge's health for its API view.
                            (subscription(self.prefix, "health"), 0),
                        ]
                    )
                    self.stats.state = "subscribed"
                    self.connected.set()
                    log.info(
                        "collector subscribed to %s/v1/+/+/+/… on %s", self.prefix, self.broker
                    )
                    backoff.reset()
                    await self._read(client)
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as exc:
                self.stats.last_error = f"broker {self.broker}: {exc}"
                log.warning("uplink consumer: %s", self.stats.last_error)
            finally:
                self.client = None
                self.connected.clear()
                self.stats.state = "disconnected"
            await asyncio.sleep(backoff.next_delay())

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if self.paused.is_set():
                # Shutting down: leave it unacknowledged; the broker sends it again.
                await self.resume.wait()
            topic_name = str(message.topic)
            ack = self._acknowledger(client, message.mid, message.qos)
            try:
                await self.handle(topic_name, _as_bytes(message.payload), ack)
            except Exception:
                # One message must never stop ingestion: log it, count it, go on.
                self.stats.failed_messages += 1
                log.exception("failed to process a message on %s", topic_name)
                ack()

    def _acknowledger(self, client: aiomqtt.Client, mid: int, qos: int) -> Callable[[], None]:
        generation = self.generation

        def ack() -> None:
            # After a reconnect the old packet id means nothing: the broker redelivers the
            # message and the write, being idempotent, stores the same points again.
            if qos > 0 and generation == self.generation and self.client is client:
                client._client.ack(mid, qos)
                self.stats.acked += 1

        return ack

    def _shared(self, topic_filter: str) -> str:
        """With a share group, instances split the batches (MQTT 5 shared subscription)."""
        return f"$share/{self.share_group}/{topic_filter}" if self.share_group else topic_filter

    def pause(self) -> None:
        """Stop taking new messages (for a clean shutdown); acks of queued ones still go out."""
        self.paused.set()

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
        elif topic.kind == "state":
            try:
                state = EdgeState.model_validate_json(payload)
            except ValidationError as exc:
                log.warning("bad edge state on %s: %s", topic_name, exc.errors()[0]["msg"])
                ack()
                return
            await self.pipeline.submit_edge_state(topic, state.online, state.boot, on_written=ack)
        else:
            ack()
            try:
                health = json.loads(payload)
            except ValueError:
                log.warning("bad edge health report on %s", topic_name)
                return
            if isinstance(health, dict):
                self.pipeline.edge(topic).health = health


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return b""
