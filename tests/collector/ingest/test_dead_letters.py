"""Dead letters are bounded whatever arrives, and can never be consumed again."""

from __future__ import annotations

import base64
import hashlib
import json
import os

from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from collector.ingest.dead_letters import (
    DEAD_LETTER_EXCERPT_BYTES,
    DEAD_LETTER_MAX_BYTES,
    envelope,
)
from common.topics import KINDS, dead_letter_topic, subscription, unknown_dead_letter_topic
from tests.fuzz.profiles import fuzz


def test_fifteen_mib_of_random_bytes_make_a_small_dead_letter() -> None:
    # Measured before: 15 MiB of random bytes became a 59 MB dead letter (replacement
    # characters JSON-escaped) and the collector's RSS grew by 180 MB.
    payload = os.urandom(15 * 1024 * 1024)
    letter = envelope("plantkpi/v1/ent-a/pa/edge-pa/samples", "too large", payload)
    assert len(letter) <= DEAD_LETTER_MAX_BYTES
    doc = json.loads(letter)
    assert doc["size"] == len(payload)
    assert doc["sha256"] == hashlib.sha256(payload).hexdigest()
    assert base64.b64decode(doc["excerpt_base64"]) == payload[:DEAD_LETTER_EXCERPT_BYTES]
    assert doc["excerpt_bytes"] == DEAD_LETTER_EXCERPT_BYTES


@given(st.text(max_size=5000), st.text(max_size=50_000), st.binary(max_size=5000))
@fuzz
def test_no_topic_reason_or_payload_makes_it_larger_than_the_bound(
    topic: str, reason: str, payload: bytes
) -> None:
    letter = envelope(topic, reason, payload)
    assert len(letter) <= DEAD_LETTER_MAX_BYTES
    assert json.loads(letter)["size"] == len(payload)


ids = st.sampled_from(["samples", "state", "health", "v1", "deadletter"]) | st.text(
    st.sampled_from("abc-_.+#/$x"), min_size=1, max_size=12
)


@given(ids, ids, ids)
@fuzz
def test_a_dead_letter_topic_never_matches_what_the_collector_reads(
    enterprise: str, plant: str, edge: str
) -> None:
    # A malformed batch from an edge called "samples" was dead-lettered to a topic the
    # collector consumed again (plantkpi/v1/deadletter/ent-a/pa/samples).
    for target in (
        dead_letter_topic("plantkpi", enterprise, plant, edge),
        unknown_dead_letter_topic("plantkpi"),
    ):
        for kind in KINDS:
            assert not topic_matches_sub(subscription("plantkpi", kind), target), target
            assert not topic_matches_sub(f"$share/g/{subscription('plantkpi', kind)}", target)
