"""The one module that reaches under aiomqtt into paho, for what aiomqtt has no API for.

- manual acknowledgement (aiomqtt issue #345): a QoS 1 message is acknowledged only
  once what it carries is durable (the edge's disk, the collector's InfluxDB);
- PUBACK reason codes (``common/mqtt_refusals.py``): a publish the broker refused;
- direct delivery: each message handed to a plain callback from paho's read callback,
  instead of aiomqtt's queue and its iterator, which makes an asyncio Task per message
  and lets the queue grow without bound while the reader is slower than the broker
  (measured in docs/benchmarks.md, "MQTT device burst");
- buffered reading (:class:`PacketReader`): paho reads every packet with three or more
  ``recv`` calls and decodes each PUBLISH into a ``Properties`` and an ``MQTTMessage``,
  more than half of the edge's CPU in a device burst (the same section). The socket is
  read in 32 KiB chunks and a PUBLISH without properties goes straight to the callback;
  every other packet is handed to paho as if paho had read it;
- flow control (:meth:`PacketReader.pause`): a reader that cannot keep up stops reading
  the socket, so the broker's messages wait in the broker (TCP flow control), not in this
  process; aiomqtt's own queue would drop what does not fit instead.

aiomqtt is pinned below its next major version (pyproject.toml), and
tests/common/test_mqtt_client.py fails loudly if an attribute used here disappears.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import termios
import time
import weakref
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

__all__ = [
    "PacketReader",
    "acknowledge",
    "deliver_to",
    "disconnected",
    "enable_manual_acks",
    "paho_client",
    "split_packets",
]

log = logging.getLogger(__name__)

MessageCallback = Callable[[str, bytes, int, int], None]
"""``(topic, payload, qos, packet id)``: runs on the event loop, must not block."""


def paho_client(client: aiomqtt.Client) -> mqtt.Client:
    """The paho client an aiomqtt client drives."""
    paho: mqtt.Client = client._client
    return paho


def enable_manual_acks(client: aiomqtt.Client) -> None:
    """Acknowledge QoS > 0 messages only through :func:`acknowledge` (before connecting)."""
    paho_client(client).manual_ack_set(True)


def acknowledge(client: aiomqtt.Client, mid: int, qos: int) -> None:
    """Acknowledge message ``mid``: a PUBACK (QoS 1), paho's own reply for QoS 2.

    The PUBACKs given during one turn of the event loop leave together, in one packet of
    paho's queue: paho queues each on its own, and each costs a wake-up of its socket pair
    and a writer registration on the event loop (measured as the largest part of what
    QoS 1 costs the edge more than QoS 0, docs/benchmarks.md "MQTT device burst").
    """
    paho = paho_client(client)
    if qos != 1:
        paho.ack(mid, qos)
        return
    pending = _unsent_acks.get(paho)
    if pending is None:
        pending = _unsent_acks[paho] = []
        asyncio.get_running_loop().call_soon(_send_acks, paho)
    pending.append(mid)


_unsent_acks: weakref.WeakKeyDictionary[mqtt.Client, list[int]] = weakref.WeakKeyDictionary()


def _send_acks(paho: mqtt.Client) -> None:
    mids = _unsent_acks.pop(paho, None)
    if not mids or paho._sock is None or not paho._manual_ack:
        return  # the connection is gone: the broker sends those messages again
    packet = b"".join([_PUBACK_PACKET.pack(_PUBACK_HEADER, 2, mid) for mid in mids])
    paho._packet_queue(_PUBACK_HEADER, packet, 0, 0)


_PUBACK_HEADER = 0x40
_PUBACK_PACKET = struct.Struct("!BBH")
"""A PUBACK without reason code: success, in MQTT 3.1.1 and 5 alike."""


def deliver_to(client: aiomqtt.Client, callback: MessageCallback) -> PacketReader:
    """Hand every message of ``client`` to ``callback`` (not to ``client.messages``).

    paho calls it from its read callback on the event loop: the socket is read no faster
    than the messages are handled, so a burst waits in the broker (TCP flow control), not
    in this process's memory. An exception from ``callback`` is logged and the connection
    kept: aiomqtt would take it for a broken socket and disconnect. A callback that
    hands messages on to slower work pauses the returned reader while it is behind.
    """

    def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = message.payload
        try:
            callback(message.topic, bytes(payload), message.qos, message.mid)
        except Exception:
            log.exception("MQTT: a message on %s could not be handled", message.topic)

    paho = paho_client(client)
    paho.on_message = on_message  # what the reader leaves to paho: properties, QoS 2
    lost: asyncio.Future[None] = client._disconnected
    reader = PacketReader(paho, callback, lost)
    # aiomqtt's reader callback calls paho's loop_read on the instance: this one instead.
    paho.loop_read = reader.loop_read  # type: ignore[method-assign]
    # How the connection ended is for whoever awaits `disconnected`; when the end comes
    # during another call (a publish), that one raises it and this one is never read.
    lost.add_done_callback(_mark_read)
    return reader


def _mark_read(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def disconnected(client: aiomqtt.Client) -> None:
    """Wait until ``client`` is disconnected; raises the ``MqttError`` that cut it off.
    Cancelling the wait leaves the connection (and aiomqtt's own bookkeeping) alone."""
    lost: asyncio.Future[None] = client._disconnected
    await asyncio.shield(lost)


READ_CHUNK = 16_384
READ_LIMIT = 16_384
"""Bytes read in one readable event before the event loop runs again (a few hundred small
device messages, a few ms of handling); the kernel keeps the rest (the socket stays
readable) and TCP flow control holds the broker back. Kept small for fairness: the edge's
uplink needs several loop turns per batch (write, PUBACK, the next take), and with 64 KiB
per turn a device burst stretched each batch's acknowledgement to 0.2-0.7 s, so the
uplink fell behind acquisition and the backlog went to disk (docs/benchmarks.md, "MQTT
device burst")."""
_PUBLISH = 0x30
_MAX_LENGTH_BYTES = 4


def split_packets(buffer: bytes | bytearray) -> tuple[list[tuple[int, bytes]], int]:
    """The complete MQTT packets at the start of ``buffer`` as ``(first byte, body)``,
    and how many bytes they take; an incomplete packet at the end is left for later.
    Raises ``MalformedPacket`` on a remaining length of more than four bytes."""
    packets: list[tuple[int, bytes]] = []
    size = len(buffer)
    pos = 0
    while pos + 2 <= size:
        length = 0
        shift = 0
        i = pos + 1
        while True:
            if i >= size:
                return packets, pos
            byte = buffer[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if i - pos - 1 >= _MAX_LENGTH_BYTES:
                raise MalformedPacket("remaining length of more than four bytes")
        end = i + length
        if end > size:
            break
        packets.append((buffer[pos], bytes(buffer[i:end])))
        pos = end
    return packets, pos


class PacketReader:
    """paho's ``loop_read`` for one client, reading the socket in chunks.

    A QoS 0/1 PUBLISH without properties (what devices send) is decoded here and handed
    to ``callback``; every other packet goes to paho's own handler, so connection,
    subscription, acknowledgement and keepalive stay paho's. Written by hand because
    paho has no buffered reader and its per-packet cost was measured as the edge's limit.
    """

    def __init__(
        self, paho: mqtt.Client, callback: MessageCallback, lost: asyncio.Future[None]
    ) -> None:
        self._paho = paho
        self._callback = callback
        self._lost = lost
        self._buffer = bytearray()
        self._sock: socket.socket | Any = None
        self._paused = False
        self._hold: asyncio.TimerHandle | None = None
        self.pauses = 0

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop reading the socket until :meth:`resume`: what the broker sends meanwhile
        waits in the kernel's buffers and then in the broker. Packets already read are
        still delivered. Call on the event loop."""
        if self._paused:
            return
        self._paused = True
        self.pauses += 1
        sock = self._paho._sock
        loop = asyncio.get_running_loop()
        if sock is not None:
            loop.remove_reader(sock.fileno())
        self._hold = loop.call_later(_HOLD_EVERY_S, self._hold_keepalive)

    def resume(self) -> None:
        """Read the socket again (and what was left unread, at once)."""
        if not self._paused:
            return
        self._paused = False
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        sock = self._paho._sock
        if sock is not None and not self._lost.done():
            loop = asyncio.get_running_loop()
            loop.add_reader(sock.fileno(), self._readable)
            loop.call_soon(self._readable)

    def _readable(self) -> None:
        """What aiomqtt's reader callback does, registered again by :meth:`resume`."""
        try:
            while not self._paused:
                self.loop_read()
                sock = self._paho._sock
                # An SSL socket can hold decrypted bytes the kernel no longer reports.
                if sock is None or not (hasattr(sock, "pending") and sock.pending() > 0):
                    break
        except Exception as exc:  # a broken socket, as aiomqtt treats it
            if not self._lost.done():
                self._lost.set_exception(exc)

    def _hold_keepalive(self) -> None:
        """While paused, paho sees nothing arrive and would close the connection after
        its keepalive; bytes waiting unread in the kernel are bytes received. With none
        waiting, paho's own ping decides (its answer, once it comes, counts again)."""
        self._hold = None
        if not self._paused:
            return
        paho = self._paho
        sock = paho._sock
        if sock is None:
            return
        if _unread_bytes(sock) > 0:
            with paho._msgtime_mutex:
                paho._last_bytes_received = time.monotonic()
        self._hold = asyncio.get_running_loop().call_later(_HOLD_EVERY_S, self._hold_keepalive)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        paho = self._paho
        sock = paho._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        if self._paused:  # aiomqtt's callback may call again (SSL bytes pending)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        if sock is not self._sock:  # a new connection: nothing of an earlier one counts
            self._sock = sock
            self._buffer.clear()
        lost = False
        read = 0
        while read < READ_LIMIT:
            try:
                data = paho._sock_recv(READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:  # includes ConnectionError; paho logs nothing more either
                lost = True
                break
            if not data:
                lost = True
                break
            self._buffer += data
            read += len(data)
        if read:
            with paho._msgtime_mutex:
                paho._last_bytes_received = time.monotonic()
        try:
            rc = self._handle_buffered()
        except MalformedPacket as exc:
            log.warning("MQTT: malformed packet from the broker: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and lost:
            rc = MQTTErrorCode.MQTT_ERR_CONN_LOST
        if rc > 0:
            return paho._loop_rc_handle(rc)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_buffered(self) -> MQTTErrorCode:
        packets, used = split_packets(self._buffer)
        del self._buffer[:used]
        for command, body in packets:
            if self._paho._sock is not self._sock:
                break  # a handler closed the connection (a DISCONNECT from the broker)
            rc = None
            if command & 0xF0 == _PUBLISH and command & 0x06 in (0x00, 0x02):
                rc = self._publish(command, body)
            if rc is None:
                rc = self._paho_handles(command, body)
            if rc > 0:
                return rc
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _publish(self, command: int, body: bytes) -> MQTTErrorCode | None:
        """Deliver a QoS 0/1 PUBLISH; ``None`` leaves it to paho (properties, an invalid
        or empty topic, a short packet: paho's decoding and errors apply)."""
        paho = self._paho
        qos = (command & 0x06) >> 1
        size = len(body)
        if size < 2:
            return None
        pos = 2 + (body[0] << 8 | body[1])
        try:
            topic = body[2:pos].decode()
        except UnicodeDecodeError:
            return None
        if not topic:
            return None
        mid = 0
        if qos:
            if pos + 2 > size:
                return None
            mid = body[pos] << 8 | body[pos + 1]
            pos += 2
        if paho._protocol == MQTTProtocolVersion.MQTTv5:
            if pos >= size or body[pos] != 0:
                return None
            pos += 1
        elif pos > size:
            return None
        try:
            self._callback(topic, body[pos:], qos, mid)
        except Exception:
            log.exception("MQTT: a message on %s could not be handled", topic)
        if qos == 1 and not paho._manual_ack:
            return paho._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _paho_handles(self, command: int, body: bytes) -> MQTTErrorCode:
        paho = self._paho
        paho._in_packet = _in_packet(command, body)
        try:
            rc = paho._packet_handle()
        except MalformedPacket as exc:
            log.warning("MQTT: malformed packet from the broker: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        paho._in_packet = _in_packet(0, b"")
        return rc


_HOLD_EVERY_S = 1.0
"""paho checks its keepalive every second (aiomqtt's misc loop)."""


def _unread_bytes(sock: Any) -> int:
    """Bytes received on ``sock`` and not read yet (encrypted ones, for TLS)."""
    try:
        answer = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    count: int = struct.unpack("i", answer)[0]
    return count


def _in_packet(command: int, body: bytes) -> Any:
    """paho's record of the packet being read, as its own reader leaves it."""
    return {
        "command": command,
        "have_remaining": 1 if command else 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": len(body),
        "packet": bytearray(body),
        "to_process": 0,
        "pos": 0,
    }
