"""Scopes the loaded registers define, and the declared rates they carry (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.api.errors import ApiError, excerpt
from collector.kpi.aggregate import INDUSTRIES, SCOPES, ScopeRate
from common.register_loader import LoadedRegister


def known_scope_ids(registers: Sequence[LoadedRegister]) -> dict[str, set[str]]:
    known: dict[str, set[str]] = {scope: set() for scope in SCOPES}
    for register in registers:
        model = register.model
        known["enterprise"].add(model.enterprise.id)
        known["region_official"].add(model.enterprise.region)
        known["region_pooled"].add(model.enterprise.region)
        for plant in model.plants:
            known["plant"].add(plant.id)
            known["line"].update(line.id for line in plant.lines)
    return known


def check_scope(scope: str, *, status: int = 422, field: str = "scope") -> None:
    """A scope kind: 404 when it is a path segment (no such resource), 422 as a parameter."""
    if scope not in SCOPES:
        raise ApiError(
            status,
            "unknown_scope",
            f"unknown scope {excerpt(scope)}; scopes: {', '.join(SCOPES)}",
            field=field,
        )


def check_industry(industry: str, field: str = "industry") -> None:
    if industry not in INDUSTRIES:
        raise ApiError(
            422,
            "invalid_request",
            f"unknown industry {excerpt(industry)}; industries: {', '.join(INDUSTRIES)}",
            field=field,
        )


def unknown_scope_id(
    scope: str, scope_id: str, registers: Sequence[LoadedRegister], field: str = "scope_id"
) -> ApiError:
    known = sorted(known_scope_ids(registers)[scope])
    shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
    return ApiError(
        404,
        "unknown_scope",
        f"no {scope} {excerpt(scope_id)} in the loaded registers (known: {shown or 'none'})",
        field=field,
    )


def declared_rates(registers: Sequence[LoadedRegister]) -> dict[str, float | None]:
    return {r.enterprise_id: r.model.enterprise.declared_rate for r in registers}


def rate_dict(rate: ScopeRate, declared: dict[str, float | None]) -> dict[str, Any]:
    """A rate as JSON; the enterprise scope (industry ``all``) also carries the rate the
    enterprise declared, and observed − declared, so the two are read side by side."""
    out = rate.to_dict()
    if rate.scope == "enterprise":
        value = declared.get(rate.scope_id) if rate.industry == "all" else None
        out["declared_rate"] = value
        out["observed_minus_declared"] = (
            None if value is None or rate.rate is None else rate.rate - value
        )
    return out
