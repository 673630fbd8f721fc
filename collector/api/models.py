"""What the API answers, as pydantic models: the OpenAPI document's response schemas, the
check that a route answers what it documents, and what the ``kpi`` CLI parses.

The KPI's domain objects keep their own JSON form (``to_dict``, also what storage and the
tests compare); these models validate it. Unknown keys are ignored, so a CLI parses the
answer of a newer collector; ``tests/collector/api/test_api_models.py`` holds every model to the
domain's JSON, key for key, so nothing the domain writes goes undocumented.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

_WINDOW_EXAMPLE: dict[str, JsonValue] = {
    "start_ns": 1_764_316_800_000_000_000,
    "end_ns": 1_764_320_400_000_000_000,
}


class ApiModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorOut(BaseModel):
    """Every failure's body (docs/api.md lists the codes); some carry more keys, such as
    ``windows`` and ``max_windows`` for ``too_many_windows``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "error": "unknown_process",
                    "detail": "no key process 'a9-milling' in the loaded registers",
                    "field": "process_id",
                }
            ]
        },
    )

    error: str
    """A code a client can branch on: unauthorized, unknown_scope, invalid_request, …"""
    detail: str
    field: str | None = None
    """The parameter at fault, where one is."""
    error_id: str | None = None
    """For ``internal``: the id the server logged the failure under."""


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or wrong bearer token (`unauthorized`)"),
    404: _error("No such scope, process or route"),
    422: _error("A parameter failed validation (`field` names it)"),
    500: _error("Unexpected; logged under `error_id`"),
    502: _error("InfluxDB refused the query (`storage_error`)"),
    503: _error("No KPI evaluation yet, or InfluxDB unreachable"),
}
"""What every ``/api/*`` route may answer besides its success."""


class WindowOut(ApiModel):
    """A half-open time range ``[start_ns, end_ns)``, nanoseconds since the epoch (UTC)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_WINDOW_EXAMPLE]})

    start_ns: int
    end_ns: int


# -- the current window ------------------------------------------------------------------


class RateOut(ApiModel):
    """One scope's rate for one industry split, with the counts and reasons behind it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scope": "plant",
                    "scope_id": "plant-a",
                    "industry": "all",
                    "numerator": 3,
                    "denominator": 4,
                    "not_scheduled": 0,
                    "provisional": 0,
                    "rate": 0.75,
                    "reasons": {"LOW_COVERAGE": 1},
                    "enterprises": 1,
                    "window": _WINDOW_EXAMPLE,
                    "thresholds": "c0.95-g60-m0.2",
                    "enterprise_id": "ent-1",
                    "plant_id": "plant-a",
                }
            ]
        }
    )

    scope: str
    """line, plant, enterprise, region_official or region_pooled."""
    scope_id: str
    industry: str
    """all, discrete or process."""
    numerator: int
    """Digitalized key processes."""
    denominator: int
    """Key processes in scope (not-scheduled and provisional ones excluded)."""
    not_scheduled: int
    provisional: int
    rate: float | None
    """numerator / denominator; null when the denominator is 0."""
    reasons: dict[str, int]
    """Reason code → processes reporting it, most frequent first."""
    enterprises: int
    window: WindowOut
    thresholds: str
    enterprise_id: str | None
    plant_id: str | None


class EnterpriseRateOut(RateOut):
    """An enterprise's rate, beside the rate it declared (industry ``all`` only)."""

    declared_rate: float | None
    observed_minus_declared: float | None


Rate = EnterpriseRateOut | RateOut


class KpiOut(ApiModel):
    window: WindowOut
    computed_at_ns: int
    rates: list[Rate]


class ScopeKpiOut(KpiOut):
    scope: str
    scope_id: str


class EnterpriseOut(ApiModel):
    enterprise_id: str
    name: str
    region: str
    above_designated_size: bool
    register_version: str
    declared_rate: float | None
    observed_rate: float | None
    observed_minus_declared: float | None
    numerator: int
    denominator: int
    not_scheduled: int
    provisional: int
    reasons: dict[str, int]


class EnterprisesOut(ApiModel):
    window: WindowOut
    enterprises: list[EnterpriseOut]


class OutageOut(ApiModel):
    """A source (or the plant's edge agent, ``_edge``) lost during the window."""

    source: str
    down_ns: int
    up_ns: int | None
    """When it came back; null if not before the window's end."""
    detail: str


class SignalEvidenceOut(ApiModel):
    """How one required signal fared over the scheduled part of the window."""

    signal_id: str
    role: str
    update: str
    source: str
    good: float
    bad: float
    uncertain: float
    overridden: float
    unknown: float
    """Shares of the scheduled time; the five sum to 1."""
    longest_gap_s: float
    samples: int
    known_valid_at_end: bool
    quality_at_end: str | None
    reasons: list[str]


class ProcessOut(ApiModel):
    """One key process in one window: status, reasons, the evidence per signal, and the
    register version and thresholds it was computed with."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enterprise_id": "ent-1",
                    "region": "Taiyuan",
                    "plant_id": "plant-a",
                    "line_id": "line-1",
                    "process_id": "a1-turning",
                    "industry": "discrete",
                    "status": "NOT_DIGITALIZED",
                    "reasons": ["LOW_COVERAGE"],
                    "signals": [
                        {
                            "signal_id": "state",
                            "role": "state",
                            "update": "on_change",
                            "source": "opc1",
                            "good": 0.62,
                            "bad": 0.0,
                            "uncertain": 0.0,
                            "overridden": 0.0,
                            "unknown": 0.38,
                            "longest_gap_s": 1368.0,
                            "samples": 41,
                            "known_valid_at_end": True,
                            "quality_at_end": "good",
                            "reasons": ["LOW_COVERAGE"],
                        }
                    ],
                    "manual_share": None,
                    "scheduled_s": 3600.0,
                    "unbound_signals": [],
                    "manual_signals": [],
                    "register_version": "2026-11-01",
                    "register_digest": "sha256:…",
                    "thresholds": "c0.95-g60-m0.2",
                    "window": _WINDOW_EXAMPLE,
                    "outages": [
                        {
                            "source": "opc1",
                            "down_ns": 1_764_317_000_000_000_000,
                            "up_ns": 1_764_318_368_000_000_000,
                            "detail": "connection lost: transport closed",
                        }
                    ],
                    "outages_more": 0,
                    "complete": True,
                }
            ]
        }
    )

    enterprise_id: str
    region: str
    plant_id: str
    line_id: str
    process_id: str
    industry: str
    status: str
    """DIGITALIZED, NOT_DIGITALIZED, NOT_SCHEDULED or PROVISIONAL."""
    reasons: list[str]
    signals: list[SignalEvidenceOut]
    manual_share: float | None
    scheduled_s: float
    unbound_signals: list[str]
    manual_signals: list[str]
    register_version: str
    register_digest: str
    thresholds: str
    window: WindowOut
    outages: list[OutageOut]
    outages_more: int
    complete: bool


class ProcessDetailOut(ProcessOut):
    """One key process, and what its plant's edge agent says now about its signals."""

    edge_problems: list[str]
    """The edge's health report's signal problems for this process (every reading
    rejected, or nothing valid for a signal's hold), e.g. ``speed (topic d/m1/speed, path
    val): 5 readings rejected, none valid since: payload has no value at 'val'``. Live:
    not part of the stored result."""


class ProcessesOut(ApiModel):
    window: WindowOut
    processes: list[ProcessOut]


# -- the past ------------------------------------------------------------------------------


class StoredRatePoint(ApiModel):
    """One stored ``kpi_rate`` point (docs/schema.md), stamped with its window's end;
    fields a point was written without are absent."""

    time_ns: int
    time: str
    enterprise: str | None
    plant: str | None
    rate: float | None
    numerator: int | None = None
    denominator: int | None = None
    not_scheduled: int | None = None
    enterprises: int | None = None
    reasons: dict[str, int] | None = None
    register_versions: str | None = None
    thresholds: str | None = None
    window_s: float | None = None
    provisional: int | None = None
    revision: int | None = None


class BucketPoint(ApiModel):
    """Stored points averaged over one hour / shift / day (windows ending in it)."""

    time_ns: int
    time: str
    bucket_s: int
    enterprise: str | None
    plant: str | None
    points: int
    rate_mean: float | None
    rate_min: float | None
    rate_max: float | None
    numerator: int
    denominator: int
    rate_pooled: float | None


class HistoryOut(ApiModel):
    scope: str
    scope_id: str
    industry: str
    resolution: str
    start_ns: int
    end_ns: int
    source: str


class WindowHistoryOut(HistoryOut):
    """``resolution=window``: every stored point."""

    points: list[StoredRatePoint]


class BucketHistoryOut(HistoryOut):
    """``resolution=hour|shift|day``: the stored points aggregated per bucket."""

    points: list[BucketPoint]


class PlannedWindowOut(WindowOut):
    start: str
    end: str
    partial: bool
    """Clipped to the requested range: shorter than the period."""


class ReportPlanOut(ApiModel):
    period: str
    windows: list[PlannedWindowOut]


class ProcessStatusOut(ApiModel):
    process_id: str
    plant_id: str
    line_id: str
    industry: str
    status: str
    reasons: list[str]


class ReportWindowOut(ApiModel):
    window: WindowOut
    start: str
    end: str
    partial: bool
    register_versions: list[str]
    thresholds: str | None
    rates: list[Rate]
    processes: list[ProcessStatusOut]


class ReportOut(ApiModel):
    period: str
    windows: list[ReportWindowOut]


class EvaluationOut(ApiModel):
    """All key processes of one enterprise's register in one window."""

    enterprise_id: str
    region: str
    above_designated_size: bool
    register_version: str
    register_digest: str
    thresholds: str
    window: WindowOut
    plants: list[str]
    lines: list[tuple[str, str]]
    """``[plant_id, line_id]`` pairs, in register order."""
    processes: list[ProcessOut]
    incomplete_plants: dict[str, int]
    """Plants whose edge had not delivered everything up to the window's end, with the
    watermark each had then (0: none stored)."""


class RecomputeOut(ApiModel):
    window: WindowOut
    computed_at_ns: int
    rates: list[RateOut]
    evaluations: list[EvaluationOut]


# -- operations ----------------------------------------------------------------------------


class HealthOut(ApiModel):
    status: str = Field(examples=["ok"])


class ReadyOut(ApiModel):
    ready: bool
    broker: str
    """The consumer's connection state (``subscribed`` when ready)."""
    kpi_error: str
    """The kind of the last evaluation's failure, or empty."""
    kpi_evaluated: bool


class EdgeOut(ApiModel):
    plant: str
    enterprise: str
    online: bool
    last_seen_ns: int
    last_seq: int
    boot: int
    seq_gaps: int
    link: int
    stale_states: int
    redeliveries: int
    health: dict[str, Any]
    """The edge's latest health report, as it sent it."""
    seconds_since_seen: float


class EdgesOut(ApiModel):
    edges: dict[str, EdgeOut]
    """By ``enterprise/plant/edge``."""


class SampleAgesOut(ApiModel):
    samples: int
    p50_s: float | None
    p99_s: float | None
    mean_s: float | None


class ConsumerStatsOut(ApiModel):
    state: str
    connects: int
    messages: int
    bad_topics: int
    failed_messages: int
    acked: int
    read_pauses: int
    last_error: str
    silent_s: float


class StatsOut(ApiModel):
    batches: int
    samples_written: int
    samples_rejected: int
    batches_malformed: int
    batches_dead_lettered: int
    limit_violations: dict[str, int]
    """By limit (an ``UplinkLimits`` field name): how often an edge's batch exceeded it."""
    samples_rejected_by_rule: dict[str, int]
    states_rejected: int
    write_failures: dict[str, int]
    """By kind of failure."""
    last_write_latency_s: float
    sample_age_at_write: SampleAgesOut
    last_error: str
    consumer: ConsumerStatsOut
    kpi_evaluations: int
    queue_depth: int


# -- texts for people ----------------------------------------------------------------------


class NamedOut(ApiModel):
    id: str
    name: str
    """In the language asked for: ``names[lang]``, else the register's ``name``, else the
    other language, else the id."""
    names: dict[str, str]
    """As the register writes them, per language."""


class ProcessNameOut(NamedOut):
    equipment: str
    equipment_names: dict[str, str]


class LineNamesOut(NamedOut):
    processes: list[ProcessNameOut]


class PlantNamesOut(NamedOut):
    lines: list[LineNamesOut]


class EnterpriseNamesOut(NamedOut):
    register_version: str
    plants: list[PlantNamesOut]


class NamesOut(ApiModel):
    lang: str
    enterprises: list[EnterpriseNamesOut]


class ReasonTextOut(ApiModel):
    label: str
    """A short label."""
    fix: str
    """What to check or change so the process counts."""


class TermsOut(ApiModel):
    lang: str
    reasons: dict[str, ReasonTextOut]
    statuses: dict[str, str]
    scopes: dict[str, str]
