"""Topic names of the uplink: ``<prefix>/v1/<enterprise>/<plant>/<edge>/<kind>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["samples", "state", "health"]
KINDS: tuple[Kind, ...] = ("samples", "state", "health")
DEFAULT_PREFIX = "plantkpi"


@dataclass(frozen=True)
class EdgeTopic:
    enterprise: str
    plant: str
    edge: str
    kind: Kind


def edge_topic(prefix: str, enterprise: str, plant: str, edge: str, kind: Kind) -> str:
    return f"{prefix}/v1/{enterprise}/{plant}/{edge}/{kind}"


def subscription(prefix: str, kind: Kind) -> str:
    """The filter a collector subscribes to for one kind of message from every edge."""
    return f"{prefix}/v1/+/+/+/{kind}"


def dead_letter_topic(prefix: str, enterprise: str, plant: str, edge: str) -> str:
    """Where a refused message of an edge goes. Outside ``<prefix>/v1/…`` on purpose: no
    id (not even an edge called ``samples``) can make it match a collector subscription."""
    return f"{prefix}/deadletter/v1/{enterprise}/{plant}/{edge}"


def dead_letter_filter(prefix: str) -> str:
    """Every dead letter (for the ACL and for whoever watches them)."""
    return f"{prefix}/deadletter/#"


def unknown_dead_letter_topic(prefix: str) -> str:
    """Dead letters of messages whose topic named no edge."""
    return f"{prefix}/deadletter/v1/unknown"


def parse_edge_topic(prefix: str, topic: str) -> EdgeTopic:
    """Split an uplink topic; raises ValueError naming the topic if it does not fit."""
    parts = topic.split("/")
    if (
        len(parts) != 6
        or parts[0] != prefix
        or parts[1] != "v1"
        or parts[5] not in KINDS
        or not all(parts[2:5])
    ):
        raise ValueError(f"topic {topic!r} is not {prefix}/v1/<enterprise>/<plant>/<edge>/<kind>")
    kind: Kind = parts[5]
    return EdgeTopic(parts[2], parts[3], parts[4], kind)
