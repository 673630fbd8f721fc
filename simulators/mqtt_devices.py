"""The MQTT devices of one register source: each signal is published to its topic at QoS 1.

Payload, by default: ``{"value": <v>, "ts": <source ms since epoch>, "quality": "good"}``.
The register's ``path``, ``timestamp_path`` and ``quality_path`` of each signal are honoured
(dotted paths build nested objects; ``path: .`` publishes the bare value), so the devices
publish exactly what the edge is configured to parse.

Samples queue while the broker is unreachable (bounded; the oldest are dropped and counted)
and go out after reconnecting, with a capped, jittered backoff. A sample enters the ledger
only once its publish was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from common.backoff import Backoff
from common.endpoints import parse_broker_url
from common.quality import Quality, classify, status_from_label
from simulators.ledger import Ledger
from simulators.machine import Sample, Value
from simulators.opcua_server import brief_list

log = logging.getLogger(__name__)

_LABELS = {
    Quality.GOOD: "good",
    Quality.OVERRIDDEN: "override",
    Quality.UNCERTAIN: "uncertain",
    Quality.BAD: "bad",
}


@dataclass(frozen=True)
class MqttBinding:
    """One signal of one device, published on ``topic`` with the register's payload paths."""

    process: str
    signal: str
    topic: str
    path: str = "value"
    timestamp_path: str | None = "ts"
    quality_path: str | None = "quality"
    select: Mapping[str, str | int | bool] | None = None
    """Fields that name the signal in a message of a topic several signals share."""


def quality_label(status: int) -> str:
    """The device's quality field for a status code: good, override, uncertain or bad."""
    return _LABELS[classify(status)]


def build_payload(binding: MqttBinding, value: Value, ts_ms: int, label: str) -> bytes:
    """The JSON a device publishes. ValueError when the binding's paths collide."""
    if binding.path == ".":
        return json.dumps(value).encode()
    document: dict[str, Any] = {}
    _put(document, binding.path, value)
    if binding.timestamp_path is not None:
        _put(document, binding.timestamp_path, ts_ms)
    if binding.quality_path is not None:
        _put(document, binding.quality_path, label)
    for field_path, value_named in (binding.select or {}).items():
        _put(document, field_path, value_named)
    return json.dumps(document, separators=(",", ":")).encode()


def _put(document: dict[str, Any], dotted: str, value: object) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ValueError(f"payload path {dotted!r} has an empty part")
    node = document
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"payload path {dotted!r} collides with another field")
        node = child
    if parts[-1] in node:
        raise ValueError(f"payload path {dotted!r} collides with another field")
    node[parts[-1]] = value


@dataclass(frozen=True)
class _Message:
    process: str
    signal: str
    topic: str
    payload: bytes
    ts: int
    """Source timestamp as the receiver decodes it (ms precision), in ns."""
    value: Value
    status: int
    """The status code the receiver maps the published quality label to."""


class MqttDevices:
    """The devices of one MQTT source, publishing to one broker.

    ``submit`` queues samples (never blocks); a background task publishes them.
    """

    def __init__(
        self,
        source_id: str,
        broker: str,
        bindings: Sequence[MqttBinding],
        *,
        qos: int = 1,
        ledger: Ledger | None = None,
        max_backlog: int = 100_000,
        window: int = 100,
        max_backoff: float = 5.0,
    ) -> None:
        self.source_id = source_id
        self.broker = parse_broker_url(broker)
        self.qos = qos
        self.ledger = ledger
        self.max_backlog = max_backlog
        self.window = window
        self.max_backoff = max_backoff
        self._bindings = {(b.process, b.signal): b for b in bindings}
        for b in bindings:
            try:
                build_payload(b, 0.0, 0, "good")
            except ValueError as exc:
                raise ValueError(f"source {source_id}, topic {b.topic}: {exc}") from None
        self._backlog: deque[_Message] = deque()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        """Set while connected to the broker."""
        self.published = 0
        self.dropped = 0
        """Samples dropped because the backlog was full (never in the ledger)."""

    @property
    def processes(self) -> list[str]:
        return sorted({process for process, _ in self._bindings})

    @property
    def topics(self) -> list[str]:
        return sorted(b.topic for b in self._bindings.values())

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def submit(self, samples: Iterable[tuple[str, Sample]]) -> None:
        for process, sample in samples:
            binding = self._bindings.get((process, sample.signal))
            if binding is None:
                raise KeyError(
                    f"source {self.source_id} has no device for {process}.{sample.signal}"
                )
            ts_ms = sample.ts // 1_000_000
            label = quality_label(sample.status)
            self._backlog.append(
                _Message(
                    process,
                    sample.signal,
                    binding.topic,
                    build_payload(binding, sample.value, ts_ms, label),
                    ts_ms * 1_000_000,
                    sample.value,
                    status_from_label(label),
                )
            )
        while len(self._backlog) > self.max_backlog:
            self._backlog.popleft()
            self.dropped += 1
        self._wakeup.set()

    async def start(self) -> None:
        if self._task is None:
            log.info(
                "MQTT source %s: %d topics of %d devices (%s) to %s",
                self.source_id,
                len(self._bindings),
                len(self.processes),
                brief_list(self.processes),
                self.broker,
            )
            self._task = asyncio.create_task(self._run(), name=f"mqtt-{self.source_id}")

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Publish what is queued (up to ``drain_timeout`` seconds), then disconnect."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        if self.connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), drain_timeout)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._backlog:
            log.warning(
                "MQTT source %s: %d samples not published at stop",
                self.source_id,
                len(self._backlog),
            )

    async def _run(self) -> None:
        backoff = Backoff(cap=self.max_backoff)
        failed = False
        while not (self._stopping and not self._backlog):
            try:
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    identifier=f"plantkpi-sim-{self.source_id}",
                    timeout=10.0,
                    max_inflight_messages=self.window,
                    tls_context=ssl.create_default_context() if self.broker.tls else None,
                ) as client:
                    client.pending_calls_threshold = self.window + 10
                    self.connected.set()
                    if failed:
                        log.info("MQTT source %s: connected to %s", self.source_id, self.broker)
                    failed = False
                    backoff.reset()
                    await self._publish(client)
                    return
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if self._stopping:
                    return
                delay = backoff.next_delay()
                log.warning(
                    "MQTT source %s: broker %s: %s; retrying in %.1fs",
                    self.source_id,
                    self.broker,
                    exc,
                    delay,
                )
                failed = True
                await asyncio.sleep(delay)
            finally:
                self.connected.clear()

    async def _publish(self, client: aiomqtt.Client) -> None:
        """Publish until stopped with an empty backlog; raise MqttError on a failed publish."""
        while True:
            if not self._backlog:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._backlog[i] for i in range(min(self.window, len(self._backlog)))]
            # Concurrent publishes keep `window` messages in flight; paho sends them in order.
            # Retained, as real devices do: a subscriber that starts later (an edge agent
            # after a restart) gets each device's last value at once.
            results = await asyncio.gather(
                *(client.publish(m.topic, m.payload, qos=self.qos, retain=True) for m in batch),
                return_exceptions=True,
            )
            for _ in batch:
                self._backlog.popleft()
            failed: list[_Message] = []
            error: BaseException | None = None
            for message, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    failed.append(message)
                    error = error or result
                    continue
                self.published += 1
                if self.ledger is not None:
                    self.ledger.record(
                        self.source_id,
                        message.process,
                        message.signal,
                        message.ts,
                        message.value,
                        message.status,
                    )
            if failed:
                # Unacknowledged: send again after reconnecting (a duplicate carries the
                # same source timestamp, so storage keeps one point).
                self._backlog.extendleft(reversed(failed))
                if isinstance(error, aiomqtt.MqttError):
                    raise error
                assert error is not None
                raise aiomqtt.MqttError(f"publish failed: {error!r}") from error
