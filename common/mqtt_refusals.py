"""Notice an MQTT 5 broker refusing a QoS 1 publish (PUBACK reason code ≥ 0x80).

mosquitto drops a publish its ACL denies; over MQTT 3.1.1 it still acknowledges it, so the
sender cannot tell. Over MQTT 5 the PUBACK carries "Not authorized" (135), but aiomqtt
ignores PUBACK reason codes: we wrap paho's callback underneath it to record them, so a
refused batch stays in the edge's buffer instead of being counted as sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt

from common.mqtt_client import paho_client


class PublishRefused(aiomqtt.MqttError):
    """The broker acknowledged a publish with a failure reason code."""

    def __init__(self, topic: str, reason: str, code: int) -> None:
        super().__init__(f"broker refused the publish on {topic}: {reason} ({code})")
        self.topic = topic
        self.reason = reason
        self.code = code


class RefusalWatch:
    """Records refused publishes of one client; ``check`` raises for the latest one."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.last: tuple[str, int] | None = None
        # One slot for the latest refusal: checked publishes on one client take turns, or
        # one's clear() could wipe (or take) the other's refusal.
        self.lock = asyncio.Lock()
        # aiomqtt has no public hook for PUBACK reason codes; paho calls this one.
        paho = paho_client(client)
        original = paho.on_publish

        def on_publish(*args: Any) -> None:
            reason = args[3] if len(args) > 3 else None
            if reason is not None and getattr(reason, "is_failure", False):
                self.last = (str(reason), int(reason.value))
            if original is not None:
                original(*args)

        paho.on_publish = on_publish

    def clear(self) -> None:
        self.last = None

    def check(self, topic: str) -> None:
        """Raise ``PublishRefused`` if a publish was refused since the last ``clear``."""
        last, self.last = self.last, None
        if last is not None:
            raise PublishRefused(topic, *last)


async def publish_checked(
    client: aiomqtt.Client,
    watch: RefusalWatch,
    topic: str,
    payload: bytes,
    *,
    qos: int = 1,
    retain: bool = False,
) -> None:
    """Publish and wait for the broker's acknowledgement; raise if it refused."""
    async with watch.lock:
        watch.clear()
        await client.publish(topic, payload, qos=qos, retain=retain)
        watch.check(topic)
