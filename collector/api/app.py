"""Routes for plant managers and operators: current KPI, process detail, edges, health."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse

from collector.ingest.consumer import UplinkConsumer
from collector.ingest.pipeline import IngestPipeline
from collector.kpi.inputs import Window
from collector.kpi.service import KpiResult, KpiService


class Runtime(Protocol):
    pipeline: IngestPipeline
    consumer: UplinkConsumer
    kpi: KpiService


def _latest(kpi: KpiService) -> KpiResult:
    if kpi.latest is None:
        raise HTTPException(
            503, detail="no KPI evaluation yet: the first one runs shortly after start"
        )
    return kpi.latest


def _to_ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="plantkpi collector",
        version="0.1.0",
        description="Telemetry-verified key-process digitalization rate.",
    )

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, Any]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready() -> JSONResponse:
        """Ready when subscribed to the broker and the last KPI evaluation succeeded."""
        broker_ok = runtime.consumer.connected.is_set()
        kpi_ok = runtime.kpi.latest is not None and not runtime.kpi.last_error
        body = {
            "ready": broker_ok and kpi_ok,
            "broker": runtime.consumer.stats.state,
            "kpi_error": runtime.kpi.last_error,
            "kpi_evaluated": runtime.kpi.latest is not None,
        }
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/api/v1/kpi", tags=["kpi"])
    async def current_kpi(
        scope: Annotated[
            str | None, Query(description="line, plant, enterprise, region_official, region_pooled")
        ] = None,
        industry: Annotated[str | None, Query(description="all, discrete or process")] = None,
    ) -> dict[str, Any]:
        """Current rates for every scope, with the counts and reason-code Pareto behind each."""
        result = _latest(runtime.kpi)
        rates = [
            r.to_dict()
            for r in result.rates
            if (scope is None or r.scope == scope) and (industry is None or r.industry == industry)
        ]
        return {
            "window": result.window.to_dict(),
            "computed_at_ns": result.computed_at_ns,
            "rates": rates,
        }

    @app.get("/api/v1/processes", tags=["kpi"])
    async def processes(
        status: str | None = None, plant: str | None = None, line: str | None = None
    ) -> dict[str, Any]:
        """Status of every key process in the current window, with its reasons and evidence."""
        result = _latest(runtime.kpi)
        items = [
            p.to_dict()
            for e in result.evaluations
            for p in e.processes
            if (status is None or p.status == status)
            and (plant is None or p.plant_id == plant)
            and (line is None or p.line_id == line)
        ]
        return {"window": result.window.to_dict(), "processes": items}

    @app.get("/api/v1/processes/{process_id}", tags=["kpi"])
    async def process(process_id: str) -> dict[str, Any]:
        """One key process: status, every failing rule's reason code, and the evidence."""
        result = _latest(runtime.kpi)
        for evaluation in result.evaluations:
            for p in evaluation.processes:
                if p.process_id == process_id:
                    return p.to_dict()
        raise HTTPException(404, detail=f"no key process {process_id!r} in the loaded registers")

    @app.get("/api/v1/recompute", tags=["kpi"])
    async def recompute(start: datetime, end: datetime) -> dict[str, Any]:
        """Recompute a past window from the raw samples stored in InfluxDB (nothing is written)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise HTTPException(
                422, detail="start and end need a time zone, e.g. 2026-11-28T08:00:00Z"
            )
        if end <= start:
            raise HTTPException(422, detail="end must be after start")
        result = await runtime.kpi.compute(Window(_to_ns(start), _to_ns(end)))
        return result.to_dict()

    @app.get("/api/v1/edges", tags=["ops"])
    async def edges() -> dict[str, Any]:
        """Edge agents seen: online, last seen, sequence gaps and their latest health report."""
        now = time.time_ns()
        return {
            "edges": {
                key: {**asdict(seen), "seconds_since_seen": (now - seen.last_seen_ns) / 1e9}
                for key, seen in runtime.pipeline.stats.edges.items()
            }
        }

    @app.get("/api/v1/stats", tags=["ops"])
    async def stats() -> dict[str, Any]:
        """Ingest counters: batches, samples written and rejected, write failures."""
        s = runtime.pipeline.stats
        return {
            "batches": s.batches,
            "samples_written": s.samples_written,
            "samples_rejected": s.samples_rejected,
            "batches_malformed": s.batches_malformed,
            "batches_dead_lettered": s.batches_dead_lettered,
            "write_failures": s.write_failures,
            "last_write_latency_s": s.last_write_latency_s,
            "last_error": s.last_error,
            "consumer": asdict(runtime.consumer.stats),
            "kpi_evaluations": runtime.kpi.evaluations_run,
            "queue_depth": runtime.pipeline.queue.qsize(),
        }

    return app
