"""The edge agent's local HTTP endpoint: ``/live``, ``/health`` and ``/metrics``.

Plant IT probes the agent where it runs, even while the uplink to the collector is down —
which is exactly when they need it. ``/live`` answers while the event loop turns (a
liveness probe must not restart an agent for a broken PLC); ``/health`` is the full report
with HTTP 503 and the reasons when anything is degraded; ``/metrics`` is for Prometheus.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

Report = Callable[[], dict[str, Any]]
"""Returns the agent's health report with its ``status`` and ``problems`` filled in."""


class HealthServerError(RuntimeError):
    """The endpoint cannot listen (port taken, bad host): a start-up configuration error."""


class _ReportCollector(Collector):
    def __init__(self, report: Report) -> None:
        self._report = report

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        report = self._report()
        yield GaugeMetricFamily(
            "plantkpi_agent_healthy",
            "1 when the agent reports no problem (see /health for the reasons)",
            value=1.0 if report["status"] == "ok" else 0.0,
        )
        yield GaugeMetricFamily(
            "plantkpi_agent_uplink_connected",
            "1 while the uplink to the central broker is connected",
            value=1.0 if report["uplink"]["state"] == "connected" else 0.0,
        )
        yield CounterMetricFamily(
            "plantkpi_agent_uplink_samples_sent",
            "Samples acknowledged by the central broker",
            value=report["uplink"]["samples_sent"],
        )
        buffer = report["buffer"]
        yield GaugeMetricFamily(
            "plantkpi_agent_buffer_depth", "Samples not yet acknowledged", value=buffer["depth"]
        )
        yield GaugeMetricFamily(
            "plantkpi_agent_buffer_bytes", "Bytes the buffer uses on disk", buffer["bytes_on_disk"]
        )
        oldest = buffer["oldest_ts"]
        yield GaugeMetricFamily(
            "plantkpi_agent_buffer_oldest_age_seconds",
            "Age of the oldest sample waiting in the buffer (0 when empty)",
            value=max(0.0, (report["ts"] - oldest) / 1e9) if oldest else 0.0,
        )
        yield CounterMetricFamily(
            "plantkpi_agent_buffer_dropped",
            "Samples dropped because the buffer was full",
            value=buffer["dropped"],
        )
        yield CounterMetricFamily(
            "plantkpi_agent_rejected", "Readings that could not become samples", report["rejected"]
        )
        up = GaugeMetricFamily(
            "plantkpi_agent_source_up", "1 while the source delivers", labels=["source"]
        )
        rate = GaugeMetricFamily(
            "plantkpi_agent_source_samples_per_second",
            "Samples the source delivered per second (last minute)",
            labels=["source"],
        )
        reconnects = CounterMetricFamily(
            "plantkpi_agent_source_reconnects", "Reconnections of the source", labels=["source"]
        )
        for source, health in report["sources"].items():
            up.add_metric([source], 1.0 if health.get("up") else 0.0)
            rate.add_metric([source], health.get("samples_per_s", 0.0))
            reconnects.add_metric([source], health.get("reconnects", 0))
        yield from (up, rate, reconnects)


def build_app(report: Report) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))

    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "ts": time.time_ns()})

    async def health(_: web.Request) -> web.Response:
        body = report()
        return web.json_response(
            body,
            status=200 if body["status"] == "ok" else 503,
            dumps=lambda value: json.dumps(value, default=str),
        )

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application()
    app.router.add_get("/live", live)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


class HealthServer:
    def __init__(self, report: Report, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._runner = web.AppRunner(build_app(report), access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise HealthServerError(
                f"health endpoint cannot listen on {self.host}:{self.port}: {exc.strerror} "
                "(another agent on this host? set EDGE_HEALTH_PORT, or EDGE_HEALTH_ENABLED=false)"
            ) from None
        # Port 0 asks the OS for a free port: report the one we got.
        sockets = [s for s in self._runner.addresses if isinstance(s, tuple)]
        if sockets:
            self.port = int(sockets[0][1])
        log.info("health endpoint on http://%s:%d/health", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
