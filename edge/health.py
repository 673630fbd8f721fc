"""The edge agent's self-knowledge: per-source sample rates and the verdict on its health.

The report itself is assembled by the agent (sources, buffer, uplink); this module adds
what needs memory across reports (rates) and the one rule that turns a report into
"ok" or "degraded" — shared by the local HTTP endpoint and the log line.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.signal_watch import problem_lines

GOOD_SOURCE_STATES = frozenset({"subscribed", "polling"})
BUFFER_WARN_FILL = 0.8
"""Above this share of its byte or sample bound the buffer is about to drop data."""
FAILED_NODES_NAMED = 5
"""Failed nodes a problem line names; the count says how many there are in all."""


@dataclass
class RateMeter:
    """Rates of monotonic counters over (roughly) the last ``window`` seconds.

    Each ``rates`` call records a snapshot; the rate is measured against the oldest
    snapshot still inside the window, so it is smooth whatever the polling cadence.
    """

    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    spacing: float = 1.0
    """At most one snapshot kept per this many seconds, however often /health is polled."""
    _snapshots: deque[tuple[float, dict[str, int]]] = field(default_factory=deque)

    def rates(self, counters: dict[str, int]) -> dict[str, float]:
        now = self.clock()
        if not self._snapshots or now - self._snapshots[-1][0] >= self.spacing:
            self._snapshots.append((now, dict(counters)))
        while len(self._snapshots) > 2 and now - self._snapshots[1][0] >= self.window:
            self._snapshots.popleft()
        then, old = self._snapshots[0]
        elapsed = now - then
        if elapsed <= 0:
            return dict.fromkeys(counters, 0.0)
        return {key: (value - old.get(key, 0)) / elapsed for key, value in counters.items()}


def add_connection_rates(meter: RateMeter, sources: dict[str, dict[str, Any]]) -> None:
    """Notifications/s of each connection, for sources spread over several sessions."""
    counters: dict[str, int] = {}
    for source_id, health in sources.items():
        for connection in health.get("connections") or []:
            counters[f"{source_id}/{connection['name']}"] = connection.get("notifications", 0)
    if not counters:
        return
    rates = meter.rates(counters)
    for source_id, health in sources.items():
        for connection in health.get("connections") or []:
            rate = rates.get(f"{source_id}/{connection['name']}", 0.0)
            connection["notifications_per_s"] = round(rate, 3)


def verdict(report: dict[str, Any], buffer_max_bytes: int, buffer_max_samples: int) -> list[str]:
    """Why the agent is not healthy, one reason per problem; empty when all is well."""
    problems: list[str] = []
    uplink = report["uplink"]
    # Connected with an error still standing: the broker takes the birth but refuses batches.
    if uplink["state"] != "connected" or uplink.get("last_error"):
        detail = f" ({uplink['last_error']})" if uplink.get("last_error") else ""
        problems.append(f"uplink {uplink['state']}{detail}")
    for source, health in report["sources"].items():
        if health.get("state") not in GOOD_SOURCE_STATES:
            detail = f" ({health['last_error']})" if health.get("last_error") else ""
            problems.append(f"source {source} {health.get('state')}{detail}")
        cycle, interval = health.get("last_cycle_s"), health.get("poll_interval_s")
        if health.get("mode") == "poll" and cycle and interval and cycle > interval:
            problems.append(
                f"source {source}: read cycle {cycle:.2f}s is longer than its poll interval "
                f"{interval:g}s (samples are late; poll less often or split the nodes)"
            )
        sparkplug = health.get("sparkplug")
        if isinstance(sparkplug, dict) and sparkplug.get("nodes_without_birth"):
            nodes = ", ".join(sparkplug["nodes_without_birth"][:10])
            problems.append(f"source {source}: Sparkplug nodes without a live birth: {nodes}")
        failed = failed_nodes_problem(source, health)
        if failed:
            problems.append(failed)
    problems.extend(problem_lines(report.get("signals") or {}))
    buffer = report["buffer"]
    fill = max(buffer["bytes_on_disk"] / buffer_max_bytes, buffer["depth"] / buffer_max_samples)
    if fill >= BUFFER_WARN_FILL:
        problems.append(f"buffer {fill:.0%} full ({buffer['depth']} samples waiting)")
    if buffer.get("last_error"):
        # Standing until a write succeeds again (a full disk that freed itself is no
        # problem any more; the count of past errors stays in write_errors).
        problems.append(f"buffer write errors: {buffer['last_error']}")
    if buffer.get("lost_items"):
        problems.append(
            f"buffer: {buffer['lost_items']} unacknowledged items were unreadable at start-up "
            "(damaged or missing files, see quarantine/ in the buffer folder): lost"
        )
    return problems


def failed_nodes_problem(source: str, health: dict[str, Any]) -> str | None:
    """An OPC UA source subscribed to its good nodes still delivers nothing for the failed
    ones (a node id the server does not know, a browse path that did not resolve, an item
    it refused): their signals are missing from the KPI, so the agent is not healthy."""
    failed = health.get("failed_nodes") or {}
    # The names decide: a reconnect that resolves every node empties failed_nodes but
    # leaves nodes_failed at its old count.
    if not failed:
        return None
    # failed_nodes names only the first ones (report size); nodes_failed counts them all.
    count = max(int(health.get("nodes_failed") or 0), len(failed))
    named = ", ".join(list(failed)[:FAILED_NODES_NAMED])
    more = " …" if count > FAILED_NODES_NAMED else ""
    noun = "node" if count == 1 else "nodes"
    return f"source {source}: {count} {noun} failed: {named}{more}"
