"""Operations: liveness, readiness and Prometheus metrics (open), edges and ingest stats."""

from __future__ import annotations

import re
import time
from dataclasses import asdict

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from collector.api.metrics import CONTENT_TYPE_LATEST, exposition, make_registry
from collector.api.models import EdgesOut, HealthOut, ReadyOut, StatsOut
from collector.api.runtime import Runtime

_ERROR_CLASS = re.compile(r"([A-Za-z_]\w*): ")
"""KpiService keeps a failure as ``"<ErrorClass>: <message>"``."""
_UNREACHABLE = frozenset({"QueryUnavailable", "WriteUnavailable"})
"""Storage errors meaning the server did not answer (down, timed out, 5xx)."""


def ready_reason(last_error: str) -> str:
    """What the open ``/ready`` may say about the last KPI evaluation's failure: the error
    class, never its text. The text names the InfluxDB URL and holds the InfluxQL query
    (KpiService logs it whole). ``last_error`` is ``"<ErrorClass>: <message>"``."""
    if not last_error:
        return ""
    named = _ERROR_CLASS.match(last_error)
    if named is None:
        return "kpi evaluation failed"
    error_class = named[1]
    if error_class in _UNREACHABLE:
        return "influxdb unreachable"
    if error_class.startswith("Query"):
        return f"query failed: {error_class}"
    if error_class.startswith("Write") or error_class == "DatabaseMissing":
        return f"write failed: {error_class}"
    return f"kpi evaluation failed: {error_class}"


def open_router(runtime: Runtime) -> APIRouter:
    """Routes that stay open when tokens are set: probes and scrapers carry no secrets."""
    router = APIRouter(tags=["ops"])
    registry = make_registry(runtime)

    @router.get("/health")
    async def health() -> HealthOut:
        """The process is alive."""
        return HealthOut(status="ok")

    @router.get(
        "/ready",
        response_model=ReadyOut,
        responses={503: {"model": ReadyOut, "description": "Not ready (the body says why)"}},
    )
    async def ready() -> JSONResponse:
        """Ready when subscribed to the broker and the last KPI evaluation succeeded. Open:
        a failure is named by its kind only (the details are in the log)."""
        broker_ok = runtime.consumer.connected.is_set()
        kpi_ok = runtime.kpi.latest is not None and not runtime.kpi.last_error
        body = ReadyOut(
            ready=broker_ok and kpi_ok,
            broker=runtime.consumer.stats.state,
            kpi_error=ready_reason(runtime.kpi.last_error),
            kpi_evaluated=runtime.kpi.latest is not None,
        )
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    @router.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text exposition of the collector's own counters and gauges."""
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def api_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["ops"])

    @router.get("/edges")
    async def edges() -> EdgesOut:
        """Edge agents seen: online, last seen, sequence gaps and their latest health report."""
        now = time.time_ns()
        return EdgesOut.model_validate(
            {
                "edges": {
                    key: {**asdict(seen), "seconds_since_seen": (now - seen.last_seen_ns) / 1e9}
                    for key, seen in runtime.pipeline.stats.edges.items()
                }
            }
        )

    @router.get("/stats")
    async def stats() -> StatsOut:
        """Ingest counters: batches, samples written and rejected, write failures."""
        s = runtime.pipeline.stats
        return StatsOut.model_validate(
            {
                "batches": s.batches,
                "samples_written": s.samples_written,
                "samples_rejected": s.samples_rejected,
                "batches_malformed": s.batches_malformed,
                "batches_dead_lettered": s.batches_dead_lettered,
                "limit_violations": s.limit_violations,
                "samples_rejected_by_rule": s.samples_rejected_by_rule,
                "states_rejected": s.states_rejected,
                "write_failures": s.write_failures,
                "last_write_latency_s": s.last_write_latency_s,
                "sample_age_at_write": s.sample_ages.summary(),
                "last_error": s.last_error,
                "consumer": asdict(runtime.consumer.stats),
                "kpi_evaluations": runtime.kpi.evaluations_run,
                "queue_depth": runtime.pipeline.queue.qsize(),
            }
        )

    return router
