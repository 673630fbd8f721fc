"""The key-process digitalization rate (specified in KPI.md): a pure evaluator and aggregation.

``evaluate`` turns a register, samples, liveness events, a window and thresholds into
per-process statuses; ``aggregate`` turns evaluations into line/plant/enterprise/region
rates. Neither does I/O or reads the clock, so live and recomputed results agree.
"""

from collector.kpi.aggregate import INDUSTRIES, SCOPES, ScopeRate, aggregate
from collector.kpi.evaluator import (
    Evaluation,
    ProcessResult,
    Reason,
    SignalEvidence,
    Status,
    evaluate,
)
from collector.kpi.inputs import EDGE_SOURCE, SignalSamples, SourceEvent, Window
from collector.kpi.thresholds import Thresholds

__all__ = [
    "EDGE_SOURCE",
    "INDUSTRIES",
    "SCOPES",
    "Evaluation",
    "ProcessResult",
    "Reason",
    "ScopeRate",
    "SignalEvidence",
    "SignalSamples",
    "SourceEvent",
    "Status",
    "Thresholds",
    "Window",
    "aggregate",
    "evaluate",
]
