"""One device broker connection: subscribe to the register's topics, parse, report.

Subscriptions are made in every (re)connect (a broker restart forgets a clean session).
Every message path — parsed, rejected or unknown — finishes here and never stalls input.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiomqtt

from common.endpoints import parse_broker_url, tls_context
from common.register import MqttSource as MqttSourceConfig
from common.register import Signal
from edge.sources import Backoff, SourceSink, now_ns
from edge.sources.mqtt.payload import PayloadError, parse_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicBinding:
    topic: str
    process: str
    signal: Signal


@dataclass
class DeviceBrokerHealth:
    state: str = "starting"
    connects: int = 0
    reconnects: int = 0
    messages: int = 0
    rejected: int = 0
    last_error: str = ""
    rejected_by_topic: dict[str, str] = field(default_factory=dict)


class MqttDeviceSource:
    def __init__(
        self,
        config: MqttSourceConfig,
        bindings: list[TopicBinding],
        *,
        client_id: str,
        broker: str | None = None,
        reconnect_max_delay: float = 30.0,
    ) -> None:
        self.id = config.id
        self.config = config
        self.broker = parse_broker_url(broker or config.broker)
        self.client_id = client_id
        self.by_topic: dict[str, list[TopicBinding]] = {}
        for binding in bindings:
            self.by_topic.setdefault(binding.topic, []).append(binding)
        self.backoff = Backoff(cap=reconnect_max_delay)
        self.stats = DeviceBrokerHealth()

    def health(self) -> dict[str, object]:
        return {"broker": str(self.broker), "topics": len(self.by_topic), **self.stats.__dict__}

    async def run(self, sink: SourceSink) -> None:
        while True:
            up = False
            try:
                self.stats.state = "connecting"
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    tls_context=tls_context(self.broker),
                    identifier=self.client_id,
                    keepalive=15,
                    timeout=10,
                ) as client:
                    self.stats.connects += 1
                    if self.stats.connects > 1:
                        self.stats.reconnects += 1
                    if self.by_topic:
                        topics: list[tuple[str, int]] = [
                            (t, self.config.qos) for t in self.by_topic
                        ]
                        await client.subscribe(topics)
                    self.stats.state = "subscribed"
                    sink.liveness(
                        self.id, True, f"subscribed to {len(self.by_topic)} topics on {self.broker}"
                    )
                    up = True
                    self.backoff.reset()
                    async for message in client.messages:
                        self.handle(str(message.topic), _payload_bytes(message.payload), sink)
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as exc:
                self.stats.last_error = f"device broker {self.broker}: {exc}"
                log.warning("MQTT %s: %s", self.id, self.stats.last_error)
            finally:
                self.stats.state = "disconnected"
                if up or self.stats.connects == 0:
                    sink.liveness(self.id, False, self.stats.last_error or "disconnected")
            await asyncio.sleep(self.backoff.next_delay())

    def handle(self, topic: str, payload: bytes, sink: SourceSink) -> None:
        self.stats.messages += 1
        bindings = self.by_topic.get(topic)
        if bindings is None:
            self._reject(sink, topic, "no signal of the register is bound to this topic")
            return
        recv = now_ns()
        for binding in bindings:
            signal = binding.signal
            try:
                ts, value, status = parse_payload(
                    payload,
                    path=signal.path,
                    timestamp_path=signal.timestamp_path,
                    quality_path=signal.quality_path,
                    recv_ns=recv,
                )
            except PayloadError as exc:
                self._reject(sink, topic, str(exc))
                continue
            sink.sample(binding.process, signal.id, ts, value, status, recv, None)

    def _reject(self, sink: SourceSink, topic: str, reason: str) -> None:
        self.stats.rejected += 1
        if topic not in self.stats.rejected_by_topic:
            log.warning("MQTT %s: rejected message on %s: %s", self.id, topic, reason)
        self.stats.rejected_by_topic[topic] = reason
        sink.rejected(self.id, f"topic {topic}", reason)


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return str(payload).encode()
