"""The edge agent: wires the plant's sources to the buffer and the uplink, and reports health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from common.register_loader import LoadedRegister, load_register
from common.service import wait_for_stop_or_failure
from common.topics import edge_topic
from edge.buffer import BufferConfig, SampleBuffer
from edge.buffer.marks import SignalMarks
from edge.buffer.sinks import BufferSink, CountingSink
from edge.health import GOOD_SOURCE_STATES, RateMeter, add_connection_rates, verdict
from edge.health_server import HealthServer
from edge.settings import EdgeSettings, check_buffer_dir
from edge.signal_watch import SignalWatch
from edge.sources import BoundSignal, Source, SourceContext, StoredMarks, builder
from edge.uplink import Uplink, UplinkIdentity

log = logging.getLogger(__name__)


def build_sources(
    register: LoadedRegister,
    settings: EdgeSettings,
    marks: StoredMarks | None = None,
    pending: list[Callable[[], int | None]] | None = None,
    room: Callable[[], bool] | None = None,
) -> list[Source]:
    """One reader per source of the agent's plant, each built by its protocol
    (``edge/sources/<kind>/build.py``) with the signals bound to it."""
    plant = register.plant(settings.plant)
    unknown = set(settings.endpoints) | set(settings.brokers)
    unknown |= set(settings.broker_passwords) | set(settings.broker_password_files)
    unknown |= set(settings.opcua_passwords) | set(settings.opcua_password_files)
    unknown -= {s.id for s in plant.sources}
    if unknown:
        raise ValueError(
            f"endpoint/broker/password setting for unknown source(s) {sorted(unknown)} "
            f"(plant {plant.id} sources: {[s.id for s in plant.sources]})"
        )
    signals: dict[str, list[BoundSignal]] = {}
    for line in plant.lines:
        for process in line.processes:
            for signal in process.signals:
                if signal.source is not None and signal.is_automated:
                    signals.setdefault(signal.source, []).append((process.id, signal))
    context = SourceContext(register, settings, marks, pending if pending is not None else [], room)
    return [
        builder(config.kind)(config, signals.get(config.id, []), context)
        for config in plant.sources
    ]


class EdgeAgent:
    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.register = load_register(settings.register_file)
        self.plant = self.register.plant(settings.plant)
        buffer_dir = check_buffer_dir(settings.resolved_buffer_dir)
        self.marks = SignalMarks.load(buffer_dir)
        self.pending: list[Callable[[], int | None]] = []
        self.sources = build_sources(
            self.register, settings, self.marks, self.pending, self._room_for_backfill
        )
        # Blocking, at start-up: lock the buffer directory and index the backlog on disk.
        self.buffer = SampleBuffer.open(
            BufferConfig(
                directory=buffer_dir,
                max_bytes=settings.buffer_max_bytes,
                max_samples=settings.buffer_max_samples,
                segment_bytes=settings.buffer_segment_bytes,
                commit_interval=settings.buffer_commit_interval,
                commit_items=settings.buffer_commit_items,
                fsync=settings.buffer_fsync,
                fsync_interval=settings.buffer_fsync_interval,
            )
        )
        self.buffer.marks = self.marks
        edge_id = settings.resolved_edge_id
        enterprise = self.register.enterprise_id

        def topic(kind: Any) -> str:
            return edge_topic(settings.topic_prefix, enterprise, self.plant.id, edge_id, kind)

        self.uplink = Uplink(
            UplinkIdentity(
                edge=edge_id,
                enterprise=enterprise,
                plant=self.plant.id,
                register_version=self.register.version,
                boot=time.time_ns(),
                samples_topic=topic("samples"),
                state_topic=topic("state"),
                health_topic=topic("health"),
                sources=tuple(s.id for s in self.sources),
            ),
            settings.uplink.address,
            self.buffer,
            batch_max_samples=settings.batch_max_samples,
            batch_max_bytes=settings.batch_max_bytes,
            flush_interval=settings.flush_interval,
            reconnect_max_delay=settings.reconnect_max_delay,
            security=settings.uplink_security(),
            client_id=settings.uplink_client_id,
            heartbeat_interval=settings.heartbeat_interval,
            pending_since=self._pending_since,
        )
        self.sink = BufferSink(self.buffer, self.uplink.wakeup)
        self.samples_by_source: dict[str, int] = {}
        self.watch = SignalWatch(settings.signal_hold_factor, settings.signal_on_change_hold)
        self.watch.watch(
            (process.id, signal)
            for line in self.plant.lines
            for process in line.processes
            for signal in process.signals
        )
        self.source_sinks = {
            s.id: CountingSink(self.sink, s.id, self.samples_by_source, self.watch)
            for s in self.sources
        }
        self.rates = RateMeter()
        self.connection_rates = RateMeter()
        self.health_server = (
            HealthServer(self.health, settings.health_host, settings.health_port)
            if settings.health_enabled
            else None
        )

    def _room_for_backfill(self) -> bool:
        """A quarter of the buffer's sample bound left unsent at most: beyond, a backfill
        waits for the uplink (what is read from history must not push out what waits)."""
        buffer = getattr(self, "buffer", None)  # built after the sources
        return buffer is None or len(buffer) < self.settings.buffer_max_samples // 4

    def _pending_since(self) -> int | None:
        """The earliest time a source may still deliver data for (a backfill to come)."""
        times = [t for pending in self.pending if (t := pending()) is not None]
        return min(times, default=None)

    def health(self) -> dict[str, Any]:
        rates = self.rates.rates(self.samples_by_source)
        sources: dict[str, dict[str, Any]] = {}
        for source in self.sources:
            sources[source.id] = {
                **source.health(),
                "samples": self.samples_by_source.get(source.id, 0),
                "samples_per_s": round(rates.get(source.id, 0.0), 3),
            }
            sources[source.id]["up"] = sources[source.id].get("state") in GOOD_SOURCE_STATES
        add_connection_rates(self.connection_rates, sources)
        report: dict[str, Any] = {
            "edge": self.uplink.identity.edge,
            "plant": self.plant.id,
            "ts": time.time_ns(),
            "register_version": self.register.version,
            "sources": sources,
            "buffer": asdict(self.buffer.stats()),
            "uplink": asdict(self.uplink.stats),
            "rejected": self.sink.rejected_count,
            "signals": self.watch.report(),
        }
        problems = verdict(report, self.settings.buffer_max_bytes, self.settings.buffer_max_samples)
        report["status"] = "degraded" if problems else "ok"
        report["problems"] = problems
        return report

    async def _report_health(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval)
            report = self.health()
            buffer = report["buffer"]
            log.info(
                "health %s: uplink %s, %d batches sent, buffer %d (dropped %d), rejected %d, "
                "sources %s",
                report["status"],
                report["uplink"]["state"],
                report["uplink"]["batches_sent"],
                buffer["depth"],
                buffer["dropped"],
                report["rejected"],
                {k: v["state"] for k, v in report["sources"].items()},
            )
            await self.uplink.publish_health(json.dumps(report, default=str).encode())

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "edge %s for plant %s (register %s): %d sources, uplink %s",
            self.uplink.identity.edge,
            self.plant.id,
            self.register.version,
            len(self.sources),
            self.settings.uplink.url,
        )
        if self.health_server is not None:
            # First: a port clash is a configuration error and must stop the start-up.
            await self.health_server.start()
        source_tasks = [
            asyncio.create_task(s.run(self.source_sinks[s.id]), name=f"source-{s.id}")
            for s in self.sources
        ]
        uplink_task = asyncio.create_task(self.uplink.run(), name="uplink")
        health_task = asyncio.create_task(self._report_health(), name="health")
        buffer_task = asyncio.create_task(self.buffer.run(), name="buffer")
        try:
            await wait_for_stop_or_failure(
                stop, [*source_tasks, uplink_task, health_task, buffer_task]
            )
        finally:
            await self._shutdown(source_tasks, uplink_task, health_task)
            buffer_task.cancel()
            await asyncio.gather(buffer_task, return_exceptions=True)
            await self.buffer.close()
            if self.health_server is not None:
                await self.health_server.stop()

    async def _shutdown(
        self,
        source_tasks: list[asyncio.Task[None]],
        uplink_task: asyncio.Task[None],
        health_task: asyncio.Task[None],
    ) -> None:
        log.info("stopping: closing sources, flushing %d samples", self.buffer.stats().depth)
        for task in source_tasks:
            task.cancel()
        await asyncio.gather(*source_tasks, return_exceptions=True)
        await self._drain(timeout=10.0)
        await self.uplink.goodbye()
        for task in (uplink_task, health_task):
            task.cancel()
        await asyncio.gather(uplink_task, health_task, return_exceptions=True)
        stats = self.buffer.stats()
        if stats.depth:
            log.warning("stopped with %d samples not sent (uplink unavailable)", stats.depth)

    async def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.uplink.wakeup.set()
        # Polling is fine here: it runs once, at shutdown, for at most ``timeout``.
        while len(self.buffer) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def run_agent(settings: EdgeSettings, stop: asyncio.Event) -> None:
    agent = EdgeAgent(settings)
    with contextlib.suppress(asyncio.CancelledError):
        await agent.run(stop)
