"""The one module that reaches under aiomqtt into paho, for what aiomqtt has no API for.

- manual acknowledgement (aiomqtt issue #345): a QoS 1 message is acknowledged only
  once what it carries is durable (the edge's disk, the collector's InfluxDB);
- PUBACK reason codes (``common/mqtt_refusals.py``): a publish the broker refused;
- direct delivery: each message handed to a plain callback from paho's read callback,
  instead of aiomqtt's queue and its iterator, which makes an asyncio Task per message
  and lets the queue grow without bound while the reader is slower than the broker
  (measured in docs/benchmarks.md, "MQTT device burst").

aiomqtt is pinned below its next major version (pyproject.toml), and
tests/common/test_mqtt_client.py fails loudly if an attribute used here disappears.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt

__all__ = ["acknowledge", "deliver_to", "disconnected", "enable_manual_acks", "paho_client"]

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
    """Send the PUBACK (QoS 1) or PUBREC (QoS 2) of message ``mid``."""
    paho_client(client).ack(mid, qos)


def deliver_to(client: aiomqtt.Client, callback: MessageCallback) -> None:
    """Hand every message of ``client`` to ``callback`` (not to ``client.messages``).

    paho calls it from its read callback on the event loop: the socket is read no faster
    than the messages are handled, so a burst waits in the broker (TCP flow control), not
    in this process's memory. An exception from ``callback`` is logged and the connection
    kept: aiomqtt would take it for a broken socket and disconnect.
    """

    def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = message.payload
        try:
            callback(message.topic, bytes(payload), message.qos, message.mid)
        except Exception:
            log.exception("MQTT: a message on %s could not be handled", message.topic)

    paho_client(client).on_message = on_message
    # How the connection ended is for whoever awaits `disconnected`; when the end comes
    # during another call (a publish), that one raises it and this one is never read.
    lost: asyncio.Future[None] = client._disconnected
    lost.add_done_callback(_mark_read)


def _mark_read(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def disconnected(client: aiomqtt.Client) -> None:
    """Wait until ``client`` is disconnected; raises the ``MqttError`` that cut it off.
    Cancelling the wait leaves the connection (and aiomqtt's own bookkeeping) alone."""
    lost: asyncio.Future[None] = client._disconnected
    await asyncio.shield(lost)
