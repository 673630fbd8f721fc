"""The report's figures: made from the stored windows that tile the period
(``queries.py``), pure, typed, and digested.

**Tiles.** With evaluation windows of length ``L`` (1 h by default) the period
``[start, end)`` is tiled by ``n = ceil((end - start) / L)`` stored windows: in each bucket
``[start + k·L, start + (k+1)·L)``, k = 1 … n, the first window stored ending in it.
Normally that is the window ending on the grid, at ``start + k·L``: it covers
``[start + (k-1)·L, start + k·L)``, no other tile overlaps it, and it is what
``/api/v1/recompute`` gives for that range (and ``/api/v1/report?window=hour`` when
``start`` is on its hour grid). When that window was not stored, a later one of the bucket
stands in: ending ``d`` after the grid, it covers the first ``d`` of the next tile's range
too and leaves the first ``d`` of its own uncovered. The last tile is a whole window even
when ``end - start`` is not a whole number of ``L`` (it ends at ``start + n·L``), and a
stand-in for it ends after its grid point: either way it counts data of less than ``L``
after ``end``. The live loop's other windows (it evaluates the last hour every minute)
overlap these: their mean is a trend, not an audit figure (docs/api.md), so they are not
counted.

**The period's measured rate** of a scope (enterprise, plant, line) is pooled over the
tiles, from the stored verdicts of its key processes (``process_status``)::

    rate = Σ digitalized / Σ judged          (key processes × tiles)

— the share of the key-process time judged in the period that was digitalized. It is
``Σ numerator / Σ denominator`` of the scope's stored ``kpi_rate`` points of the same
tiles (the live loop made those of the same verdicts; ``NOT_SCHEDULED`` and
``PROVISIONAL`` leave the denominator as in each window). :class:`Check` holds the
enterprise's stored ``kpi_rate`` tiles against the processes' sums.

**A key process's status shares** are over the same tiles: tiles with each status / tiles
stored; a reason's count is the tiles reporting it.

**The trend** pools the tiles per day or per week (from Monday), days starting at midnight
in the time zone the period was asked in (its start's UTC offset), each tile in the bucket
of the time it covers (its nominal end − L).

**The digest** is SHA-256 of the figures as canonical JSON: ``orjson.dumps(figures,
option=orjson.OPT_SORT_KEYS)`` (keys sorted, no spaces, UTF-8). Names, the generation time
and the reproduction notes are outside it: the same stored results give the same digest
whoever asks, in whichever language.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from collector.api.timerange import iso
from collector.kpi.evaluator import Status
from collector.report_doc.queries import ProcessKey, ProcessTile, RateTile, Span, Stored
from common.register import Register

__all__ = [
    "FORMAT",
    "STATUSES",
    "Check",
    "Counts",
    "Figures",
    "ProcessFigures",
    "RateFigures",
    "TrendFigures",
    "TrendPoint",
    "ValueSpan",
    "build_figures",
    "canonical",
    "digest",
]

FORMAT = "plantkpi-report-doc/1"
STATUSES: tuple[str, ...] = tuple(str(s) for s in Status)
RATE_DEFINITION = (
    "pooled over the tiles (the stored windows ending at start + k * window_s, k = 1 ... n, "
    "the first stored in each window_s): sum(digitalized) / sum(judged) of the key "
    "processes' stored statuses = sum(numerator) / sum(denominator) of the stored kpi_rate"
)
S = 1_000_000_000
_SCOPE_ORDER = ("enterprise", "plant", "line")


class FigureModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Counts(FigureModel):
    tiles: int
    """Tiles with a stored verdict of at least one key process of the scope."""
    numerator: int
    """Σ digitalized key processes over the tiles."""
    denominator: int
    """Σ key processes judged (digitalized or not) over the tiles."""
    not_scheduled: int
    provisional: int
    rate: float | None
    """``numerator / denominator``; None when the denominator is 0."""


class RateFigures(Counts):
    scope: Literal["enterprise", "plant", "line"]
    scope_id: str
    plant_id: str | None
    """For a line: its plant (line ids are unique per plant only)."""
    in_register: bool
    """False for a scope stored in the period but no longer in the loaded register."""


class ProcessFigures(FigureModel):
    process_id: str
    plant_id: str
    line_id: str
    industry: str
    in_register: bool
    tiles: int
    """Stored tiles (``process_status`` points) of the process in the period."""
    statuses: dict[str, int]
    """Status → tiles with it (every status, 0 included)."""
    shares: dict[str, float | None]
    """Status → its tiles / ``tiles`` (None without a stored tile)."""
    reasons: dict[str, int]
    """Reason code → tiles reporting it."""


class TrendPoint(FigureModel):
    start_ns: int
    """The bucket's start (the first bucket may start before the period: only tiles of
    the period are counted)."""
    start: str
    enterprise: Counts
    plants: dict[str, Counts]


class TrendFigures(FigureModel):
    bucket: Literal["day", "week"]
    bucket_s: int
    offset_s: int
    """Buckets are ``[k·bucket_s + offset_s, (k+1)·bucket_s + offset_s)`` since the epoch:
    days start this long after midnight UTC (at midnight in the zone the period was asked
    in: 57600, 16 h, for +08:00), weeks on Mondays then."""
    points: list[TrendPoint]


class ValueSpan(FigureModel):
    """A register version: the (nominal) ends of the first and last tile whose key processes'
    stored verdicts carry it (``process_status.register_version``). Thresholds: the ends of
    the first and last window of the enterprise's stored ``kpi_rate`` carrying them."""

    value: str
    first_ns: int
    last_ns: int
    first: str
    last: str


class Check(FigureModel):
    """The counts made of the key processes' stored statuses against the enterprise's own
    stored ``kpi_rate`` points of the same tiles: equal when every tile has both."""

    process_tiles: int
    """Tiles with a stored status of at least one key process."""
    digitalized: int
    """Σ digitalized key processes (from ``process_status``)."""
    judged: int
    """Σ key processes judged (from ``process_status``)."""
    rate_tiles: int
    """Tiles with a stored ``kpi_rate`` point of the enterprise."""
    numerator: int
    """Σ ``numerator`` of those points."""
    denominator: int
    """Σ ``denominator`` of those points."""
    reconciles: bool


class Figures(FigureModel):
    format: str = FORMAT
    enterprise_id: str
    region: str
    start_ns: int
    end_ns: int
    start: str
    end: str
    rate_definition: str = RATE_DEFINITION
    window_s: int
    """The tile length: the collector's evaluation window (``COLLECTOR_KPI__WINDOW``)."""
    tiles_in_period: int
    """How many tiles the period has (``ceil((end - start) / window)``)."""
    stored_window_s: list[float]
    """Lengths of the windows stored in the period (normally ``[window_s]``)."""
    declared_rate: float | None
    """申报值: the register's ``enterprise.declared_rate``."""
    measured_rate: float | None
    """实测值: the enterprise's pooled rate over the period."""
    measured_minus_declared: float | None
    rates: list[RateFigures]
    processes: list[ProcessFigures]
    trend: TrendFigures
    register_versions: list[ValueSpan]
    thresholds: list[ValueSpan]
    check: Check


def canonical(figures: Figures | Mapping[str, Any]) -> bytes:
    """The bytes the digest is taken of: orjson, keys sorted, no spaces."""
    data = figures.model_dump(mode="json") if isinstance(figures, Figures) else figures
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def digest(figures: Figures | Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical`; a JSON copy of the figures gives the same."""
    return hashlib.sha256(canonical(figures)).hexdigest()


class _Sums:
    """The counts of one scope or trend bucket, made as ``collector.kpi.aggregate`` makes a
    window's: not scheduled and provisional processes are outside the denominator."""

    __slots__ = ("denominator", "not_scheduled", "numerator", "provisional", "tiles")

    def __init__(self) -> None:
        self.tiles: set[int] = set()
        self.numerator = self.denominator = self.not_scheduled = self.provisional = 0

    def add(self, tiles: Iterable[ProcessTile]) -> None:
        for tile in tiles:
            self.tiles.add(tile.end_ns)
            if tile.status == Status.NOT_SCHEDULED:
                self.not_scheduled += 1
            elif tile.status == Status.PROVISIONAL:
                self.provisional += 1
            elif tile.status == Status.DIGITALIZED:
                self.numerator += 1
                self.denominator += 1
            elif tile.status == Status.NOT_DIGITALIZED:
                self.denominator += 1

    def counts(self) -> dict[str, Any]:
        return {
            "tiles": len(self.tiles),
            "numerator": self.numerator,
            "denominator": self.denominator,
            "not_scheduled": self.not_scheduled,
            "provisional": self.provisional,
            "rate": self.numerator / self.denominator if self.denominator else None,
        }


def _rates(register: Register, stored: Stored) -> list[RateFigures]:
    """Every scope's counts, made of its key processes' tiles (grouped by the plant and
    line they were stored with)."""
    enterprise = register.enterprise.id
    sums: dict[tuple[str, str, str], _Sums] = {}
    for (plant, line, _, _), tiles in stored.processes.items():
        for key in (("enterprise", enterprise, ""), ("plant", plant, plant), ("line", line, plant)):
            sums.setdefault(key, _Sums()).add(tiles)
    known: list[tuple[str, str, str]] = [("enterprise", enterprise, "")]
    known += [("plant", p.id, p.id) for p in register.plants]
    known += [("line", line.id, p.id) for p in register.plants for line in p.lines]
    others = sorted(
        (k for k in sums if k not in known), key=lambda k: (_SCOPE_ORDER.index(k[0]), k)
    )
    return [
        RateFigures.model_validate(
            {
                **sums.get(key, _Sums()).counts(),
                "scope": key[0],
                "scope_id": key[1],
                "plant_id": key[2] if key[0] == "line" else None,
                "in_register": key in known,
            }
        )
        for key in [*known, *others]
    ]


def _processes(register: Register, stored: Stored) -> list[ProcessFigures]:
    registered: list[ProcessKey] = [
        (plant.id, line.id, process.id, str(process.industry))
        for plant in register.plants
        for line in plant.lines
        for process in line.processes
        if process.key
    ]
    out = []
    for key in [*registered, *sorted(set(stored.processes) - set(registered))]:
        plant, line, process, industry = key
        tiles = stored.processes.get(key, [])
        statuses = dict.fromkeys(STATUSES, 0)
        reasons: dict[str, int] = {}
        for tile in tiles:
            statuses[tile.status] = statuses.get(tile.status, 0) + 1
            for code in filter(None, tile.reasons.split(",")):
                reasons[code] = reasons.get(code, 0) + 1
        n = len(tiles)
        out.append(
            ProcessFigures(
                process_id=process,
                plant_id=plant,
                line_id=line,
                industry=industry,
                in_register=key in registered,
                tiles=n,
                statuses=statuses,
                shares={s: c / n if n else None for s, c in statuses.items()},
                reasons=reasons,
            )
        )
    return out


def _trend(
    register: Register,
    stored: Stored,
    bucket: Literal["day", "week"],
    length: int,
    offset: int,
) -> TrendFigures:
    plants = [p.id for p in register.plants]
    plants += sorted({plant for plant, _, _, _ in stored.processes} - set(plants))
    per: dict[tuple[str, int], _Sums] = {}
    for (plant, _, _, _), tiles in stored.processes.items():
        by_cell: dict[int, list[ProcessTile]] = {}
        for tile in tiles:
            # A tile belongs to the bucket of the time it covers: [end - L, end).
            cell = (tile.end_ns - stored.window_ns - offset) // length * length + offset
            by_cell.setdefault(cell, []).append(tile)
        for cell, in_cell in by_cell.items():
            for name in ("", plant):
                per.setdefault((name, cell), _Sums()).add(in_cell)
    starts = sorted({t for _, t in per})
    points = [
        TrendPoint(
            start_ns=t,
            start=iso(t),
            enterprise=Counts.model_validate(per.get(("", t), _Sums()).counts()),
            plants={p: Counts.model_validate(per.get((p, t), _Sums()).counts()) for p in plants},
        )
        for t in starts
    ]
    return TrendFigures(bucket=bucket, bucket_s=length // S, offset_s=offset // S, points=points)


def _spans(spans: Mapping[str, Span]) -> list[ValueSpan]:
    return [
        ValueSpan(
            value=value,
            first_ns=span.first_ns,
            last_ns=span.last_ns,
            first=iso(span.first_ns),
            last=iso(span.last_ns),
        )
        for value, span in sorted(spans.items(), key=lambda kv: (kv[1].first_ns, kv[0]))
    ]


def _check(enterprise: RateFigures, stored: Iterable[RateTile]) -> Check:
    tiles = numerator = denominator = 0
    for tile in stored:
        tiles += 1
        numerator += tile.numerator
        denominator += tile.denominator
    return Check(
        process_tiles=enterprise.tiles,
        digitalized=enterprise.numerator,
        judged=enterprise.denominator,
        rate_tiles=tiles,
        numerator=numerator,
        denominator=denominator,
        reconciles=(enterprise.tiles, enterprise.numerator, enterprise.denominator)
        == (tiles, numerator, denominator),
    )


def build_figures(
    register: Register,
    stored: Stored,
    start_ns: int,
    end_ns: int,
    *,
    bucket: Literal["day", "week"],
    bucket_ns: int,
    offset_ns: int,
) -> Figures:
    """The figures of ``register``'s enterprise over ``[start, end)`` from ``stored``;
    trend buckets of ``bucket_ns`` starting ``offset_ns`` after the epoch's grid."""
    rates = _rates(register, stored)
    processes = _processes(register, stored)
    own = rates[0]
    declared = register.enterprise.declared_rate
    return Figures(
        enterprise_id=register.enterprise.id,
        region=register.enterprise.region,
        start_ns=start_ns,
        end_ns=end_ns,
        start=iso(start_ns),
        end=iso(end_ns),
        window_s=stored.window_ns // S,
        tiles_in_period=-(-(end_ns - start_ns) // stored.window_ns),
        stored_window_s=stored.window_s,
        declared_rate=declared,
        measured_rate=own.rate,
        measured_minus_declared=(
            None if declared is None or own.rate is None else own.rate - declared
        ),
        rates=rates,
        processes=processes,
        trend=_trend(register, stored, bucket, bucket_ns, offset_ns),
        register_versions=_spans(stored.register_versions),
        thresholds=_spans(stored.thresholds),
        check=_check(own, stored.enterprise),
    )
