"""A Sparkplug B edge node with devices, publishing on a real broker through aiomqtt.

Follows the Sparkplug B 3.0 edge-node rules the edge's reader depends on: the MQTT will is
the NDEATH (with this session's bdSeq), NBIRTH (seq 0, bdSeq, ``Node Control/Rebirth``)
then one DBIRTH per device right after connecting, NDATA/DDATA by alias only, ``seq``
0..255 over every message after the NBIRTH, DDEATH for a device that goes away, and an
NDEATH before a clean disconnect. An NCMD ``Node Control/Rebirth`` makes it publish its
births again. Payloads are encoded by pysparkplug.

With ``primary_host_id`` it follows the primary host rules of Sparkplug 3.0 (5.4): it
subscribes to ``spBv1.0/STATE/<primary_host_id>`` and publishes its births only once that
STATE says online; a STATE older (by timestamp) than the last one accepted is ignored; an
offline STATE while it is born makes it publish NDEATH, disconnect and start over (connect,
wait for online, birth) — with one MQTT server there is no next server to move to.

Faults for tests: ``kill`` drops the TCP connection without DISCONNECT (the broker then
publishes the will), ``skip_seq`` loses sequence numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

import aiomqtt
import pysparkplug as spb
from google.protobuf.message import DecodeError

from common import mqtt_client
from common.endpoints import parse_broker_url
from common.protocols.mqtt import SPARKPLUG_NAMESPACE

log = logging.getLogger(__name__)

REBIRTH_METRIC = "Node Control/Rebirth"
MetricValue = float | int | bool | str

_INITIAL: dict[spb.DataType, MetricValue] = {
    spb.DataType.BOOLEAN: False,
    spb.DataType.STRING: "",
    spb.DataType.FLOAT: 0.0,
    spb.DataType.DOUBLE: 0.0,
}


@dataclass(frozen=True)
class MetricSpec:
    name: str
    datatype: spb.DataType
    alias: int


def _now_ms() -> int:
    return int(spb.get_current_timestamp())


class SparkplugEdgeNode:
    """One edge node of ``group_id``; ``devices`` maps device id → metric name → datatype."""

    def __init__(
        self,
        broker: str,
        group_id: str,
        node_id: str,
        node_metrics: Mapping[str, spb.DataType],
        devices: Mapping[str, Mapping[str, spb.DataType]],
        *,
        bd_seq: int = 0,
        primary_host_id: str | None = None,
    ) -> None:
        self.broker = parse_broker_url(broker)
        self.group_id = group_id
        self.node_id = node_id
        self.bd_seq = bd_seq
        """This session's birth/death sequence; the next connect uses the following one."""
        alias = iter(range(1, 1_000_000))  # aliases are unique over the node and its devices
        self.specs: dict[str | None, dict[str, MetricSpec]] = {
            None: {n: MetricSpec(n, t, next(alias)) for n, t in node_metrics.items()}
        }
        for device, metrics in devices.items():
            self.specs[device] = {n: MetricSpec(n, t, next(alias)) for n, t in metrics.items()}
        self.values: dict[tuple[str | None, str], MetricValue] = {
            (device, spec.name): _INITIAL.get(spec.datatype, 0)
            for device, specs in self.specs.items()
            for spec in specs.values()
        }
        self.seq = 0
        self.rebirths = 0
        """NCMD rebirth requests served."""
        self.primary_host_id = primary_host_id
        self.born = False
        """NBIRTH published in the current session."""
        self.host_online = False
        self.host_timestamp: int | None = None
        """Timestamp of the last primary host STATE accepted (older ones are ignored)."""
        self.host_offline_deaths = 0
        """Sessions ended (NDEATH, disconnect) because the primary host went offline."""
        self._client: aiomqtt.Client | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._listener: asyncio.Task[None] | None = None
        self._restart: asyncio.Task[None] | None = None

    def topic(self, kind: str, device: str | None = None) -> str:
        base = f"{SPARKPLUG_NAMESPACE}/{self.group_id}/{kind}/{self.node_id}"
        return base if device is None else f"{base}/{device}"

    @property
    def state_topic(self) -> str | None:
        if self.primary_host_id is None:
            return None
        return f"{SPARKPLUG_NAMESPACE}/STATE/{self.primary_host_id}"

    # --- session ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect with the NDEATH will, listen for commands, publish the births (with a
        primary host: once its STATE says online)."""
        death = spb.NDeath(timestamp=_now_ms(), bd_seq_metric=self._bd_seq_metric())
        will = aiomqtt.Will(self.topic("NDEATH"), death.encode(), qos=1)
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=f"sparkplug-{self.group_id}-{self.node_id}",
            will=will,
            keepalive=5,
        )
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(client)
        self._client, self._stack = client, stack
        await client.subscribe(self.topic("NCMD"), qos=1)
        self._listener = asyncio.create_task(self._listen(client))
        if self.state_topic is None:
            await self.birth()
        else:
            await client.subscribe(self.state_topic, qos=1)  # its retained STATE follows

    async def stop(self) -> None:
        """A clean shutdown: NDEATH, then DISCONNECT (the broker discards the will)."""
        await self._restarted()
        death = spb.NDeath(timestamp=_now_ms(), bd_seq_metric=self._bd_seq_metric())
        await self._publish(self.topic("NDEATH"), death.encode(), qos=1)
        await self._close()

    async def kill(self) -> None:
        """Drop the connection without DISCONNECT: the broker publishes the NDEATH will."""
        await self._restarted()
        client = self._require()
        sock = mqtt_client.paho_client(client).socket()
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
        await self._close()

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._listener
        if self._stack is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._stack.aclose()
        self._client = self._stack = self._listener = None
        self.bd_seq = (self.bd_seq + 1) % 256
        self.born = self.host_online = False

    async def _restarted(self) -> None:
        """Wait for a session restart after the primary host went offline, if one runs."""
        if self._restart is not None:
            await self._restart
            self._restart = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._restarted()
        if self._client is not None:
            await self.stop()

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            if str(message.topic) == self.state_topic:
                if not await self._host_state(bytes(payload)):
                    return  # the session is over; _restart opens the next one
                continue
            if self.state_topic is not None and not self.host_online:
                continue  # commands only come from an online primary host
            try:
                command = spb.NCmd.decode(bytes(payload))
            except (DecodeError, ValueError, KeyError, NotImplementedError) as exc:
                log.warning("sparkplug node %s: unreadable NCMD: %r", self.node_id, exc)
                continue
            if any(m.name == REBIRTH_METRIC and m.value is True for m in command.metrics):
                self.rebirths += 1
                await self.birth()

    async def _host_state(self, payload: bytes) -> bool:
        """Follow the primary host's STATE; False when the session must end."""
        try:
            state = json.loads(payload)
            online, timestamp = state["online"], state["timestamp"]
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("sparkplug node %s: unreadable STATE: %r", self.node_id, exc)
            return True
        if not isinstance(online, bool) or not isinstance(timestamp, int):
            log.warning("sparkplug node %s: malformed STATE %r", self.node_id, state)
            return True
        if self.host_timestamp is not None and timestamp < self.host_timestamp:
            return True  # an older state (e.g. a late will) than the one we acted on
        self.host_timestamp = timestamp
        self.host_online = online
        if online and not self.born:
            await self.birth()
        elif not online and self.born:
            # The host cannot read us: end the session (NDEATH, DISCONNECT) and start over.
            self.host_offline_deaths += 1
            death = spb.NDeath(timestamp=_now_ms(), bd_seq_metric=self._bd_seq_metric())
            await self._publish(self.topic("NDEATH"), death.encode(), qos=1)
            self._restart = asyncio.create_task(self._start_over())
            return False
        return True

    async def _start_over(self) -> None:
        await self._close()
        await self.start()

    # --- messages --------------------------------------------------------------------------

    async def birth(self) -> None:
        """NBIRTH (seq 0) and every device's DBIRTH, with current values."""
        self.seq = 0
        self.born = True
        now = _now_ms()
        metrics = [
            self._bd_seq_metric(now),
            spb.Metric(
                timestamp=now, name=REBIRTH_METRIC, datatype=spb.DataType.BOOLEAN, value=False
            ),
            *self._full_metrics(None, now),
        ]
        nbirth = spb.NBirth(timestamp=now, seq=0, metrics=tuple(metrics))
        await self._publish(self.topic("NBIRTH"), nbirth.encode())
        for device in self.specs:
            if device is not None:
                await self.device_birth(device)

    async def device_birth(self, device: str) -> None:
        now = _now_ms()
        dbirth = spb.DBirth(
            timestamp=now, seq=self._next_seq(), metrics=tuple(self._full_metrics(device, now))
        )
        await self._publish(self.topic("DBIRTH", device), dbirth.encode())

    async def publish(
        self, device: str | None, values: Mapping[str, MetricValue], ts_ms: int | None = None
    ) -> None:
        """NDATA (``device`` None) or DDATA with ``values`` by alias only."""
        now = ts_ms if ts_ms is not None else _now_ms()
        metrics = []
        for name, value in values.items():
            spec = self.specs[device][name]
            self.values[(device, name)] = value
            metrics.append(
                spb.Metric(
                    timestamp=now, name=None, datatype=spec.datatype, value=value, alias=spec.alias
                )
            )
        kind = "NDATA" if device is None else "DDATA"
        payload_cls = spb.NData if device is None else spb.DData
        data = payload_cls(timestamp=now, seq=self._next_seq(), metrics=tuple(metrics))
        await self._publish(self.topic(kind, device), data.encode())

    async def device_death(self, device: str) -> None:
        death = spb.DDeath(timestamp=_now_ms(), seq=self._next_seq())
        await self._publish(self.topic("DDEATH", device), death.encode())

    async def flush(self) -> None:
        """Return once the broker has handled everything published so far (QoS 0 has no
        acknowledgement; a SUBACK comes after the broker processed earlier packets)."""
        await self._require().subscribe(self.topic("NCMD"), qos=1)

    def skip_seq(self, count: int = 1) -> None:
        """Lose ``count`` sequence numbers, as if messages had been dropped."""
        self.seq = (self.seq + count) % 256

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) % 256
        return self.seq

    def _bd_seq_metric(self, now: int | None = None) -> spb.Metric:
        return spb.Metric(
            timestamp=now or _now_ms(), name="bdSeq", datatype=spb.DataType.INT64, value=self.bd_seq
        )

    def _full_metrics(self, device: str | None, now: int) -> list[spb.Metric]:
        return [
            spb.Metric(
                timestamp=now,
                name=spec.name,
                datatype=spec.datatype,
                value=self.values[(device, spec.name)],
                alias=spec.alias,
            )
            for spec in self.specs[device].values()
        ]

    def _require(self) -> aiomqtt.Client:
        if self._client is None:
            raise RuntimeError(f"sparkplug node {self.node_id} is not started")
        return self._client

    async def _publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        await self._require().publish(topic, payload, qos=qos)
