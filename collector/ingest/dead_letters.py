"""Dead letters: what was refused, where it came from and why, in a bounded envelope.

A dead letter is for an operator to see what was refused and find the original (its size
and SHA-256 name it exactly; the edge still holds it, or the broker's log does), never a
copy to replay: republishing whatever arrived would let one hostile message cost the
broker and the collector many times its size. So an envelope is bounded whatever came in
(``DEAD_LETTER_MAX_BYTES``): the topic and the reason cut short, the payload's size, its
digest and a base64 excerpt of its first ``DEAD_LETTER_EXCERPT_BYTES`` bytes.

Dead letters go to ``<prefix>/deadletter/v1/<enterprise>/<plant>/<edge>``
(``common.topics.dead_letter_topic``), outside the ``<prefix>/v1/…`` namespace the
collector subscribes to, so a dead letter can never be consumed as an uplink message.

:class:`DeadLetterPublisher` owns publishing them: the consumer attaches its connection
while it has one, the pipeline and the consumer both hand it what they refuse.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import aiomqtt

from collector.ingest.intake import Intake
from common.mqtt_refusals import RefusalWatch, publish_checked
from common.topics import EdgeTopic, dead_letter_topic, unknown_dead_letter_topic

log = logging.getLogger(__name__)

DEAD_LETTER_EXCERPT_BYTES = 1024
"""Bytes of the refused payload kept (base64) in its dead letter."""
TOPIC_CHARS = 256
REASON_CHARS = 1024
DEAD_LETTER_MAX_BYTES = 16 * 1024
"""No envelope is larger: ASCII-escaped JSON of the cut topic and reason (at most six bytes
a character) plus the excerpt and a few fixed fields."""


def envelope(topic: str, reason: str, payload: bytes) -> bytes:
    """The dead letter of ``payload`` refused on ``topic`` for ``reason``."""
    excerpt = payload[:DEAD_LETTER_EXCERPT_BYTES]
    doc = {
        "topic": _cut(topic, TOPIC_CHARS),
        "reason": _cut(reason, REASON_CHARS),
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "excerpt_base64": base64.b64encode(excerpt).decode("ascii"),
        "excerpt_bytes": len(excerpt),
    }
    return json.dumps(doc, ensure_ascii=True).encode("ascii")


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else f"{text[:chars]}… (cut at {chars} characters)"


class DeadLetterPublisher:
    """Publishes dead letters on the consumer's connection to the broker while it has one;
    without one, the reason is logged instead (the refused message is acknowledged either
    way: sending it again would not make it acceptable)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._link: tuple[aiomqtt.Client, RefusalWatch, Intake] | None = None

    def attach(self, client: aiomqtt.Client, refusals: RefusalWatch, intake: Intake) -> None:
        """Publish on this connection from now on; ``intake`` is read while the PUBACK of a
        dead letter is awaited (the consumer may have paused reading)."""
        self._link = (client, refusals, intake)

    def detach(self) -> None:
        self._link = None

    async def publish(
        self, topic: EdgeTopic | None, topic_name: str, payload: bytes, reason: str
    ) -> None:
        """The dead letter of ``payload``, refused on ``topic_name`` for ``reason``."""
        target = (
            dead_letter_topic(self.prefix, topic.enterprise, topic.plant, topic.edge)
            if topic is not None
            else unknown_dead_letter_topic(self.prefix)
        )
        letter = envelope(topic_name, reason, payload)
        if self._link is None:
            log.error("dead letter not published (broker down): %s", reason)
            return
        client, refusals, intake = self._link
        try:
            with intake.reading_for_reply():  # its PUBACK
                await publish_checked(client, refusals, target, letter)
        except aiomqtt.MqttError as exc:
            log.error("dead letter not published (%s): %s", exc, reason)
