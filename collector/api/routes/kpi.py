"""The current window: rates per scope, one scope, enterprises declared vs observed,
processes with their reasons and evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from collector.api.errors import ApiError, excerpt
from collector.api.models import (
    EnterprisesOut,
    KpiOut,
    ProcessDetailOut,
    ProcessesOut,
    ScopeKpiOut,
)
from collector.api.runtime import Runtime
from collector.api.scopes import (
    check_industry,
    check_scope,
    declared_rates,
    rate_dict,
    unknown_scope_id,
)
from collector.kpi.aggregate import SCOPES
from collector.kpi.evaluator import ProcessResult
from collector.kpi.service import KpiResult, KpiService


def latest(kpi: KpiService) -> KpiResult:
    if kpi.latest is None:
        raise ApiError(
            503, "not_ready", "no KPI evaluation yet: the first one runs shortly after start"
        )
    return kpi.latest


def router(runtime: Runtime) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["kpi"])

    @r.get("/kpi")
    async def current_kpi(
        scope: Annotated[str | None, Query(description=", ".join(SCOPES))] = None,
        industry: Annotated[str | None, Query(description="all, discrete or process")] = None,
    ) -> KpiOut:
        """Current rates of every scope, each split by industry, with the counts and the
        reason-code Pareto behind it; enterprise rates also carry the declared rate."""
        if scope is not None:
            check_scope(scope)
        if industry is not None:
            check_industry(industry)
        result = latest(runtime.kpi)
        declared = declared_rates(runtime.kpi.registers)
        rates = [
            rate_dict(rate, declared)
            for rate in result.rates
            if (scope is None or rate.scope == scope)
            and (industry is None or rate.industry == industry)
        ]
        return KpiOut.model_validate(
            {
                "window": result.window.to_dict(),
                "computed_at_ns": result.computed_at_ns,
                "rates": rates,
            }
        )

    @r.get("/scopes/{scope}/{scope_id}")
    async def one_scope(
        scope: Annotated[str, Path(description=", ".join(SCOPES))],
        scope_id: Annotated[str, Path(description="line, plant or enterprise id, or region")],
        plant: Annotated[
            str | None, Query(description="line ids are unique per plant only: pick one")
        ] = None,
    ) -> ScopeKpiOut:
        """One scope's current rate, split by industry (a line id shared by several plants
        gives one entry per plant unless ``plant`` picks one)."""
        check_scope(scope, status=404)
        result = latest(runtime.kpi)
        declared = declared_rates(runtime.kpi.registers)
        rates = [
            rate_dict(rate, declared)
            for rate in result.rates
            if rate.scope == scope
            and rate.scope_id == scope_id
            and (plant is None or rate.plant_id == plant)
        ]
        if not rates:
            raise unknown_scope_id(scope, scope_id, runtime.kpi.registers)
        return ScopeKpiOut.model_validate(
            {
                "scope": scope,
                "scope_id": scope_id,
                "window": result.window.to_dict(),
                "computed_at_ns": result.computed_at_ns,
                "rates": rates,
            }
        )

    @r.get("/enterprises")
    async def enterprises() -> EnterprisesOut:
        """Each enterprise's measured rate beside the rate it declared in its
        self-assessment (register ``enterprise.declared_rate``)."""
        result = latest(runtime.kpi)
        measured = {
            rate.scope_id: rate
            for rate in result.rates
            if rate.scope == "enterprise" and rate.industry == "all"
        }
        items = []
        for register in sorted(runtime.kpi.registers, key=lambda reg: reg.enterprise_id):
            ent = register.model.enterprise
            rate = measured.get(ent.id)
            observed = rate.rate if rate else None
            items.append(
                {
                    "enterprise_id": ent.id,
                    "name": ent.name,
                    "region": ent.region,
                    "above_designated_size": ent.above_designated_size,
                    "register_version": register.version,
                    "declared_rate": ent.declared_rate,
                    "observed_rate": observed,
                    "observed_minus_declared": (
                        None
                        if observed is None or ent.declared_rate is None
                        else observed - ent.declared_rate
                    ),
                    "numerator": rate.numerator if rate else 0,
                    "denominator": rate.denominator if rate else 0,
                    "not_scheduled": rate.not_scheduled if rate else 0,
                    "provisional": rate.provisional if rate else 0,
                    "reasons": dict(rate.reasons) if rate else {},
                }
            )
        return EnterprisesOut.model_validate(
            {"window": result.window.to_dict(), "enterprises": items}
        )

    @r.get("/processes")
    async def processes(
        status: str | None = None, plant: str | None = None, line: str | None = None
    ) -> ProcessesOut:
        """Status of every key process in the current window, with its reasons and evidence."""
        result = latest(runtime.kpi)
        items = [
            p.to_dict()
            for e in result.evaluations
            for p in e.processes
            if (status is None or p.status == status)
            and (plant is None or p.plant_id == plant)
            and (line is None or p.line_id == line)
        ]
        return ProcessesOut.model_validate({"window": result.window.to_dict(), "processes": items})

    @r.get("/processes/{process_id}")
    async def process(process_id: str) -> ProcessDetailOut:
        """One key process: status, every failing rule's reason code, the evidence per
        signal, and the register version and thresholds it was computed with (R7)."""
        result = latest(runtime.kpi)
        for evaluation in result.evaluations:
            for p in evaluation.processes:
                if p.process_id == process_id:
                    return ProcessDetailOut.model_validate(
                        {**p.to_dict(), "edge_problems": edge_problems(runtime, p)}
                    )
        raise ApiError(
            404,
            "unknown_process",
            f"no key process {excerpt(process_id)} in the loaded registers",
            field="process_id",
        )

    return r


def edge_problems(runtime: Runtime, process: ProcessResult) -> list[str]:
    """The signal problems the process's plant's online edge agents report for it now."""
    lines = []
    for seen in runtime.pipeline.stats.edges.values():
        if (
            not seen.online
            or seen.plant != process.plant_id
            or seen.enterprise != process.enterprise_id
        ):
            continue  # an edge that is gone says nothing about now
        signals = seen.health.get("signals")
        problems = signals.get("problems") if isinstance(signals, dict) else None
        for problem in problems if isinstance(problems, list) else []:
            if not isinstance(problem, dict) or problem.get("process") != process.process_id:
                continue
            where = f" ({problem['address']})" if problem.get("address") else ""
            lines.append(f"{problem.get('signal')}{where}: {problem.get('reason')}")
        listed = len(problems) if isinstance(problems, list) else 0
        total = signals.get("problem_signals", 0) if isinstance(signals, dict) else 0
        if isinstance(total, int) and total > listed:
            lines.append(
                f"(the edge lists {listed} of its {total} signals not delivered: this "
                "process's may be among the rest; see /api/v1/edges)"
            )
    return lines
