"""One register OPC UA source: its nodes spread over one or more connections to the server.

Pure-Python asyncua handles about 3,000 tags at 1 s on one connection (opcua-asyncio
#1516), so above the source's ``max_nodes_per_connection`` the nodes are split evenly over
several connections (sessions), each with its own subscription and its own recovery loop
(``connection.py``).

Liveness is reported for the register source as a whole, conservatively: the source is
down as soon as any of its connections is down (values of that connection are no longer
known, and the collector's liveness is per source), and up again once all are up.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from common.protocols.opcua import OpcUaSource as OpcUaSourceConfig
from edge.sources import SourceSink, StoredMarks, now_ns
from edge.sources.opcua.connection import (
    ConnectionHealth,
    ConnectionOptions,
    OpcUaConnection,
    Report,
)
from edge.sources.opcua.nodes import (
    NodeBinding,
    NodeResolutionError,
    resolve_node_id,
    split_by_node,
)
from edge.sources.opcua.security import ClientSecurity

__all__ = ["NodeBinding", "NodeResolutionError", "OpcUaSource", "resolve_node_id"]

_STATE_ORDER = ("disconnected", "starting", "connecting", "no nodes", "polling", "subscribed")
"""Worst first: the source's state is that of its worst connection."""


class OpcUaSource:
    def __init__(
        self,
        config: OpcUaSourceConfig,
        bindings: list[NodeBinding],
        *,
        endpoint: str | None = None,
        timeout: float = 4.0,
        watchdog: float = 5.0,
        items_per_call: int = 500,
        nodes_per_read: int = 500,
        reconnect_max_delay: float = 30.0,
        queue_size: int = 10,
        queue_cycles: float = 20.0,
        max_nodes_per_connection: int | None = None,
        security: ClientSecurity | None = None,
        marks: StoredMarks | None = None,
        room: Callable[[], bool] | None = None,
    ) -> None:
        """``max_nodes_per_connection`` overrides the register's (benchmarks, tests);
        ``marks``: what the agent stored per signal, where a backfill starts (None: none)."""
        self.id = config.id
        self.config = config
        self.endpoint = endpoint or config.endpoint
        self.bindings = bindings
        options = ConnectionOptions(
            timeout=timeout,
            watchdog=watchdog,
            items_per_call=items_per_call,
            nodes_per_read=nodes_per_read,
            reconnect_max_delay=reconnect_max_delay,
            queue_size=queue_size,
            queue_cycles=queue_cycles,
        )
        per_connection = max_nodes_per_connection or config.max_nodes_per_connection
        groups = split_by_node(bindings, per_connection)
        self.connections = [
            OpcUaConnection(
                config.id if len(groups) == 1 else f"{config.id}#{number}",
                config,
                self.endpoint,
                group,
                options,
                self._reporter(number),
                security,
                marks,
                room,
            )
            for number, group in enumerate(groups, start=1)
        ]
        self._up: set[int] = set()
        self._reported: bool | None = None
        self._sink: SourceSink | None = None

    @property
    def stats(self) -> ConnectionHealth:
        """All connections summed up (state: the worst one's; last error: the latest)."""
        total = ConnectionHealth()
        states = [c.stats.state for c in self.connections]
        total.state = min(states, key=_STATE_ORDER.index)
        for connection in self.connections:
            stats = connection.stats
            for name in (
                "connects",
                "reconnects",
                "notifications",
                "rejected",
                "nodes",
                "nodes_ok",
                "nodes_failed",
            ):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            total.last_cycle_s = max(total.last_cycle_s, stats.last_cycle_s)
            total.failed_nodes.update(stats.failed_nodes)
            total.learned_limits.update(stats.learned_limits)
            for name in ("history_nodes", "gaps", "samples", "failures"):
                setattr(
                    total.backfill,
                    name,
                    getattr(total.backfill, name) + getattr(stats.backfill, name),
                )
            total.backfill.last_error = stats.backfill.last_error or total.backfill.last_error
            total.last_error = stats.last_error or total.last_error
            total.server_max_nodes_per_read = stats.server_max_nodes_per_read
            total.server_max_monitored_items_per_call = stats.server_max_monitored_items_per_call
        return total

    def pending_since(self) -> int | None:
        """The earliest time a backfill of this source may still deliver data for."""
        now = now_ns()
        times = [t for c in self.connections if (t := c.backfill.pending_since(now)) is not None]
        return min(times, default=None)

    def health(self) -> dict[str, object]:
        report: dict[str, object] = {
            "endpoint": self.endpoint,
            "mode": self.config.mode,
            # What last_cycle_s (polling) is to be compared with.
            "poll_interval_s": self.config.poll_interval,
            **_bounded(dataclasses.asdict(self.stats)),
        }
        if len(self.connections) > 1:
            report["connections"] = [
                {"name": c.name, **_bounded(dataclasses.asdict(c.stats))} for c in self.connections
            ]
        return report

    async def run(self, sink: SourceSink) -> None:
        self._sink = sink
        self._up.clear()
        self._reported = None
        async with asyncio.TaskGroup() as group:
            for connection in self.connections:
                group.create_task(connection.run(sink), name=f"opcua-{connection.name}")

    def _reporter(self, number: int) -> Report:
        return lambda up, detail: self._report(number, up, detail)

    def _report(self, number: int, up: bool, detail: str) -> None:
        """A connection's change, turned into the source's liveness (on changes only)."""
        if up:
            self._up.add(number)
        else:
            self._up.discard(number)
        source_up = len(self._up) == len(self.connections)
        if source_up == self._reported:
            return
        self._reported = source_up
        assert self._sink is not None
        if source_up:
            nodes = sum(c.stats.nodes_ok for c in self.connections)
            detail = (
                f"{detail} on {self.endpoint}"
                if len(self.connections) == 1
                else f"{len(self.connections)} connections, {nodes} nodes on {self.endpoint}"
            )
        elif len(self.connections) > 1:
            detail = f"connection {number}/{len(self.connections)}: {detail}"
        self._sink.liveness(self.id, source_up, detail)


REPORTED_FAILED_NODES = 100
"""Failed nodes named in a health report; a renamed namespace can fail thousands, and the
report must stay small enough for the collector to take (``nodes_failed`` has the count)."""


def _bounded(stats: dict[str, object]) -> dict[str, object]:
    failed = stats.get("failed_nodes")
    if isinstance(failed, dict) and len(failed) > REPORTED_FAILED_NODES:
        stats["failed_nodes"] = dict(list(failed.items())[:REPORTED_FAILED_NODES])
    return stats
