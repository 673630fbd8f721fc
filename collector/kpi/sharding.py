"""Replicas share the KPI: each enterprise (and each region's roll-up) is evaluated by one.

The pattern is Prometheus' ``hashmod`` over a StatefulSet's replica ordinals, made to
survive a dead replica with rendezvous (highest random weight) hashing over the replicas
alive: every replica writes a heartbeat point (``kpi_replica``) each period and reads the
others'; an enterprise belongs to the live replica with the highest hash of
``(replica, enterprise)``. When a replica stops, its heartbeat ages out after
``stale_periods`` periods and its enterprises (only those) go to the others. No replica
ever waits for another: two that briefly disagree both evaluate an enterprise, and as
results are a pure function of storage written at the same timestamps, the second write
is identical to the first.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Shard", "owner", "replica_from_hostname"]


def owner(key: str, live: Sequence[int]) -> int:
    """The replica of ``live`` that evaluates ``key`` (stable across processes: SHA-256,
    not Python's salted ``hash``)."""
    if not live:
        raise ValueError("no live replica")
    return max(live, key=lambda r: (hashlib.sha256(f"{r}\0{key}".encode()).digest(), r))


@dataclass(frozen=True)
class Shard:
    replica: int
    """This replica's ordinal, 0-based."""
    replicas: int
    """How many replicas the deployment declares (``replicas`` of the StatefulSet)."""
    stale_periods: float = 2.5
    """A replica whose last heartbeat is older than this many periods is taken as gone."""

    def __post_init__(self) -> None:
        if not 0 <= self.replica < self.replicas:
            raise ValueError(
                f"KPI replica {self.replica} is not one of 0..{self.replicas - 1} "
                "(COLLECTOR_KPI__REPLICA, COLLECTOR_KPI__REPLICAS)"
            )


_ORDINAL = re.compile(r"-(\d+)$")


def replica_from_hostname(hostname: str | None = None) -> int:
    """A StatefulSet pod's ordinal from its name (``plantkpi-collector-2`` → 2)."""
    name = os.environ.get("HOSTNAME", "") if hostname is None else hostname
    found = _ORDINAL.search(name)
    if found is None:
        raise ValueError(
            f"cannot tell this KPI replica's ordinal from the host name {name!r} (a "
            "StatefulSet pod is named <set>-<ordinal>): set COLLECTOR_KPI__REPLICA"
        )
    return int(found.group(1))
