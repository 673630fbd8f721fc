"""Publish buffered samples to the central broker: QoS 1, one sequence number per batch.

A batch leaves the buffer only when the broker acknowledged it; otherwise it goes back to
the head of the buffer and is sent again after reconnecting, in order. The edge's birth
message is retained on its state topic, and its death is the Last Will, so the collector
knows when an edge is gone even if it dies without a word.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiomqtt

from common.endpoints import BrokerAddress, tls_context
from common.wire import EdgeState, UplinkBatch
from edge.buffer import SampleBuffer
from edge.sources import Backoff

log = logging.getLogger(__name__)


@dataclass
class UplinkStats:
    state: str = "starting"
    connects: int = 0
    batches_sent: int = 0
    samples_sent: int = 0
    last_error: str = ""
    last_ack_latency_s: float = 0.0


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
    ) -> None:
        self.identity = identity
        self.broker = broker
        self.buffer = buffer
        self.batch_max_samples = batch_max_samples
        self.flush_interval = flush_interval
        self.backoff = Backoff(cap=reconnect_max_delay)
        self.stats = UplinkStats()
        self.seq = 0
        self.wakeup = asyncio.Event()
        self.client: aiomqtt.Client | None = None

    def _state(self, online: bool) -> bytes:
        return (
            EdgeState(
                edge=self.identity.edge,
                online=online,
                boot=self.identity.boot,
                register_version=self.identity.register_version,
                sources=list(self.identity.sources),
            )
            .model_dump_json()
            .encode()
        )

    async def run(self) -> None:
        will = aiomqtt.Will(self.identity.state_topic, self._state(False), qos=1, retain=True)
        while True:
            try:
                self.stats.state = "connecting"
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    tls_context=tls_context(self.broker),
                    identifier=f"plantkpi-{self.identity.edge}",
                    will=will,
                    keepalive=10,
                    timeout=30,
                    max_inflight_messages=100,
                ) as client:
                    self.client = client
                    self.stats.connects += 1
                    await client.publish(
                        self.identity.state_topic, self._state(True), qos=1, retain=True
                    )
                    self.stats.state = "connected"
                    log.info("uplink connected to %s as %s", self.broker, self.identity.edge)
                    self.backoff.reset()
                    await self._send_loop(client)
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as exc:
                self.stats.last_error = f"central broker {self.broker}: {exc}"
                log.warning(
                    "uplink: %s (buffer holds %d samples)",
                    self.stats.last_error,
                    self.buffer.stats().depth,
                )
            finally:
                self.client = None
                self.stats.state = "disconnected"
            await asyncio.sleep(self.backoff.next_delay())

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        while True:
            if len(self.buffer) == 0:
                self.wakeup.clear()
                try:
                    await asyncio.wait_for(self.wakeup.wait(), self.flush_interval)
                except TimeoutError:
                    continue
            if self.buffer.stats().depth < self.batch_max_samples:
                # Let a batch fill for up to one flush interval: fewer, larger messages.
                await asyncio.sleep(self.flush_interval)
            await self.send_one(client)

    async def send_one(self, client: aiomqtt.Client) -> None:
        taken = await self.buffer.take(self.batch_max_samples)
        if not taken:
            self.buffer.give_back()
            return
        batch = UplinkBatch(
            edge=self.identity.edge,
            enterprise=self.identity.enterprise,
            plant=self.identity.plant,
            register_version=self.identity.register_version,
            boot=self.identity.boot,
            seq=self.seq,
            sent=time.time_ns(),
            samples=taken.columns(),
            liveness=taken.liveness,
        )
        started = time.monotonic()
        try:
            await client.publish(self.identity.samples_topic, batch.encode(), qos=1)
        except BaseException:
            self.buffer.give_back()
            raise
        self.stats.last_ack_latency_s = time.monotonic() - started
        self.buffer.commit()
        self.seq += 1
        self.stats.batches_sent += 1
        self.stats.samples_sent += len(taken.samples)

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
        try:
            await client.publish(self.identity.state_topic, self._state(False), qos=1, retain=True)
        except aiomqtt.MqttError:
            pass
