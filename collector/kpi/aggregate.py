"""Rates per line, plant, enterprise and region from per-process evaluations.

* line, plant, enterprise: digitalized key processes / key processes in scope
  (``NOT_SCHEDULED`` processes leave the denominator; the rate is None when it is 0);
  ``PROVISIONAL`` ones (data still on its way) leave it too, counted in ``provisional``:
  a rate with ``provisional > 0`` covers only the processes that have a verdict;
* ``region_official``: unweighted mean of the rates of the region's enterprises that have a
  defined rate, comparable to published figures;
* ``region_pooled``: Σ digitalized / Σ key processes in scope over the region;
* each split by industry: ``all``, ``discrete``, ``process``.

Every rate carries its counts and a Pareto of reason codes (code → number of processes in
scope reporting it), so a low rate explains itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from collector.kpi.evaluator import Evaluation, ProcessResult, Status
from collector.kpi.inputs import Window

__all__ = [
    "INDUSTRIES",
    "SCOPES",
    "Counts",
    "EnterpriseCounts",
    "ScopeRate",
    "aggregate",
    "region_rates",
]

Scope = Literal["line", "plant", "enterprise", "region_official", "region_pooled"]
SCOPES: tuple[Scope, ...] = ("line", "plant", "enterprise", "region_official", "region_pooled")
Industry = Literal["all", "discrete", "process"]
INDUSTRIES: tuple[Industry, ...] = ("all", "discrete", "process")


@dataclass(frozen=True)
class ScopeRate:
    scope: Scope
    scope_id: str
    """Line, plant or enterprise id, or the region name."""
    industry: Industry
    numerator: int
    """Digitalized key processes."""
    denominator: int
    """Key processes in scope (not-scheduled ones excluded)."""
    not_scheduled: int
    rate: float | None
    """None when the denominator is 0 (for ``region_official``: no enterprise has a rate)."""
    reasons: dict[str, int]
    """Reason code → number of processes reporting it, most frequent first."""
    enterprises: int
    """Enterprises with key processes in scope here (a defined rate): for a region, the
    enterprises whose rates ``region_official`` averages; for a line, plant or enterprise,
    1 when its rate is defined, else 0."""
    window: Window
    thresholds: str
    """Fingerprint of the thresholds all the underlying results were computed with."""
    provisional: int = 0
    """Processes with no verdict yet (``PROVISIONAL``), outside the denominator."""
    enterprise_id: str | None = None
    """Line, plant and enterprise scopes: the enterprise they belong to."""
    plant_id: str | None = None
    """Line and plant scopes: the plant they belong to (line ids are unique per plant only)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "scope_id": self.scope_id,
            "industry": self.industry,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "not_scheduled": self.not_scheduled,
            "provisional": self.provisional,
            "rate": self.rate,
            "reasons": dict(self.reasons),
            "enterprises": self.enterprises,
            "window": self.window.to_dict(),
            "thresholds": self.thresholds,
            "enterprise_id": self.enterprise_id,
            "plant_id": self.plant_id,
        }


@dataclass(frozen=True)
class Counts:
    numerator: int
    denominator: int
    not_scheduled: int
    reasons: dict[str, int]
    provisional: int = 0

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def aggregate(evaluations: Sequence[Evaluation], regions: bool = True) -> list[ScopeRate]:
    """Rates of every line, plant, enterprise and (with ``regions``) region of the given
    evaluations.

    The evaluations (one per enterprise) must share one window and one set of thresholds:
    mixing them would make a rate no one can reproduce. Output order is deterministic:
    enterprises by id (their lines, then plants, then the enterprise, in register order),
    then regions by name; industries ``all``, ``discrete``, ``process`` within each scope.
    """
    if not evaluations:
        return []
    _check_compatible(evaluations)
    window = evaluations[0].window
    thresholds = evaluations[0].thresholds
    out: list[ScopeRate] = []

    def emit(
        scope: Scope,
        scope_id: str,
        results: list[ProcessResult],
        enterprise_id: str | None = None,
        plant_id: str | None = None,
    ) -> None:
        for industry in INDUSTRIES:
            counts = _count(results, industry)
            out.append(
                ScopeRate(
                    scope,
                    scope_id,
                    industry,
                    counts.numerator,
                    counts.denominator,
                    counts.not_scheduled,
                    counts.rate,
                    counts.reasons,
                    1 if counts.denominator else 0,
                    window,
                    thresholds,
                    counts.provisional,
                    enterprise_id,
                    plant_id,
                )
            )

    ordered = sorted(evaluations, key=lambda e: e.enterprise_id)
    for ev in ordered:
        for plant_id, line_id in ev.lines:
            in_line = [p for p in ev.processes if p.plant_id == plant_id and p.line_id == line_id]
            emit("line", line_id, in_line, ev.enterprise_id, plant_id)
        for plant_id in ev.plants:
            in_plant = [p for p in ev.processes if p.plant_id == plant_id]
            emit("plant", plant_id, in_plant, ev.enterprise_id, plant_id)
        emit("enterprise", ev.enterprise_id, list(ev.processes), ev.enterprise_id)

    if regions:
        members = [
            EnterpriseCounts(
                ev.enterprise_id,
                ev.region,
                {industry: _count(list(ev.processes), industry) for industry in INDUSTRIES},
            )
            for ev in ordered
        ]
        out += region_rates(members, window, thresholds)
    return out


@dataclass(frozen=True)
class EnterpriseCounts:
    """What a region's rates are made of, per enterprise: its counts per industry (from
    its evaluation, or from its stored ``kpi_rate`` points of scope ``enterprise``)."""

    enterprise_id: str
    region: str
    counts: dict[str, Counts]
    """Industry → counts."""


def region_rates(
    members: Sequence[EnterpriseCounts], window: Window, thresholds: str
) -> list[ScopeRate]:
    """``region_official`` and ``region_pooled`` of every region of ``members``, regions
    by name, industries in order."""
    out: list[ScopeRate] = []
    for region in sorted({m.region for m in members}):
        in_region = sorted(
            (m for m in members if m.region == region), key=lambda m: m.enterprise_id
        )
        for industry in INDUSTRIES:
            per_enterprise = [m.counts.get(industry, _EMPTY) for m in in_region]
            pooled = _merge(per_enterprise)
            rates = [c.rate for c in per_enterprise if c.rate is not None]
            official = sum(rates) / len(rates) if rates else None
            common = (pooled.numerator, pooled.denominator, pooled.not_scheduled)
            out.append(
                ScopeRate(
                    "region_official",
                    region,
                    industry,
                    *common,
                    official,
                    pooled.reasons,
                    len(rates),
                    window,
                    thresholds,
                    pooled.provisional,
                )
            )
            out.append(
                ScopeRate(
                    "region_pooled",
                    region,
                    industry,
                    *common,
                    pooled.rate,
                    pooled.reasons,
                    len(rates),
                    window,
                    thresholds,
                    pooled.provisional,
                )
            )
    return out


_EMPTY = Counts(0, 0, 0, {})


def _count(results: Iterable[ProcessResult], industry: Industry) -> Counts:
    numerator = denominator = not_scheduled = provisional = 0
    reasons: Counter[str] = Counter()
    for result in results:
        if industry != "all" and result.industry != industry:
            continue
        if result.status is Status.NOT_SCHEDULED:
            not_scheduled += 1
            continue
        reasons.update(str(r) for r in result.reasons)
        if result.status is Status.PROVISIONAL:
            provisional += 1
            continue
        denominator += 1
        if result.status is Status.DIGITALIZED:
            numerator += 1
    return Counts(numerator, denominator, not_scheduled, _pareto(reasons), provisional)


def _merge(counts: Iterable[Counts]) -> Counts:
    numerator = denominator = not_scheduled = provisional = 0
    reasons: Counter[str] = Counter()
    for c in counts:
        numerator += c.numerator
        denominator += c.denominator
        not_scheduled += c.not_scheduled
        provisional += c.provisional
        reasons.update(c.reasons)
    return Counts(numerator, denominator, not_scheduled, _pareto(reasons), provisional)


def _pareto(reasons: Counter[str]) -> dict[str, int]:
    return dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))


def _check_compatible(evaluations: Sequence[Evaluation]) -> None:
    seen: set[str] = set()
    first = evaluations[0]
    for ev in evaluations:
        if ev.enterprise_id in seen:
            raise ValueError(f"enterprise {ev.enterprise_id!r} is evaluated twice")
        seen.add(ev.enterprise_id)
        if ev.window != first.window:
            raise ValueError(
                f"enterprise {ev.enterprise_id!r} was evaluated over {ev.window}, "
                f"enterprise {first.enterprise_id!r} over {first.window}: one window only"
            )
        if ev.thresholds != first.thresholds:
            raise ValueError(
                f"enterprise {ev.enterprise_id!r} was evaluated with thresholds "
                f"{ev.thresholds}, enterprise {first.enterprise_id!r} with "
                f"{first.thresholds}: one set of thresholds only"
            )
