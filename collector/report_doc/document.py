"""The whole report as the API answers it (``format=json``) and the renderers read it: the
figures and their digest, plus what is not a figure — the register's names, when it was
generated, and how to reproduce every number (the API calls, the InfluxQL read)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from collector.api.timerange import iso
from collector.report_doc.figures import Figures, S, build_figures, digest
from collector.report_doc.period import bucket_of, local_midnight
from collector.report_doc.queries import Statement, Stored, read_stored
from collector.report_doc.worker import in_worker
from collector.storage.reader import InfluxQLReader
from common.languages import Names
from common.register_loader import LoadedRegister

__all__ = [
    "DIGEST_METHOD",
    "RECOMPUTE_COMMAND",
    "ApiLimits",
    "Named",
    "RegisterNames",
    "ReportDoc",
    "build_report",
    "names_of",
    "recompute_chunks",
    "report_of",
]

DIGEST_METHOD = "sha256(orjson.dumps(figures, option=orjson.OPT_SORT_KEYS))"
HOUR_NS = 3600 * S
RECOMPUTE_COMMAND = "kpi report"
"""The command of ``reproduce.cli`` that recomputes tiles from the raw samples."""


@dataclass(frozen=True)
class ApiLimits:
    """What one request of the API accepts, so that every call the report prints is one it
    answers (the defaults are the API's)."""

    max_range_s: float = 31 * 86400.0
    """``COLLECTOR_API__MAX_RANGE``: the longest range of /history, /report and the exports."""
    max_windows: int = 100
    """``COLLECTOR_API__REPORT_MAX_WINDOWS``: the most windows one /report or /report/windows
    request covers."""
    hour_offset_ns: int = 0
    """Where the API's hours begin, past the UTC hour (``COLLECTOR_API__SHIFT_START`` modulo
    1 h; normally 0)."""


DEFAULT_LIMITS = ApiLimits()


class DocModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class Named(DocModel):
    name: str = ""
    names: Names = Field(default_factory=dict)
    """Per language, as the register writes them."""
    equipment: str = ""
    equipment_names: Names = Field(default_factory=dict)


class RegisterNames(DocModel):
    """The register's names (``name`` and ``names`` per language), by id; lines by
    ``plant/line``."""

    enterprise: Named
    plants: dict[str, Named]
    lines: dict[str, Named]
    processes: dict[str, Named]


class StatementOut(DocModel):
    purpose: str
    """What it reads, in English (the report shows it translated: it is a catalogue text)."""
    text: str


class Reproduce(DocModel):
    api: list[str]
    """Paths with their query, relative to the API's base URL."""
    cli: list[str]
    """``kpi`` commands: the figures again, and (windows of 1 h on the API's hour grid) every
    tile recomputed from the raw samples, one ``kpi report`` per range of at most
    ``report_chunk_h`` hours."""
    report_chunk_h: int
    """The longest range of one ``kpi report`` command in ``cli``: what ``/report/windows``
    accepts (``COLLECTOR_API__REPORT_MAX_WINDOWS`` hours, within ``COLLECTOR_API__MAX_RANGE``)."""
    influxql: list[StatementOut]
    """Every statement the figures were read with, as sent (database: the collector's)."""
    database: str


class LoadedRegisterOut(DocModel):
    version: str
    digest: str
    """sha256 of the register file the API has loaded now (for the names and the declared
    rate; the results carry the versions they were computed with)."""


class ReportDoc(DocModel):
    figures: Figures
    digest: str
    """SHA-256 (hex) of the figures, see ``digest_method``."""
    digest_method: str = DIGEST_METHOD
    generated_at_ns: int
    generated_at: str
    utc_offset_s: int
    """Time zone the report shows times in (the one the period was asked in)."""
    loaded_register: LoadedRegisterOut
    names: RegisterNames
    reproduce: Reproduce


def names_of(register: LoadedRegister) -> RegisterNames:
    model = register.model
    return RegisterNames(
        enterprise=Named(name=model.enterprise.name, names=dict(model.enterprise.names)),
        plants={p.id: Named(name=p.name, names=dict(p.names)) for p in model.plants},
        lines={
            f"{p.id}/{line.id}": Named(name=line.name, names=dict(line.names))
            for p in model.plants
            for line in p.lines
        },
        processes={
            process.id: Named(
                name=process.name,
                names=dict(process.names),
                equipment=process.equipment,
                equipment_names=dict(process.equipment_names),
            )
            for p in model.plants
            for line in p.lines
            for process in line.processes
        },
    )


def _chunks(start_ns: int, end_ns: int, max_ns: int) -> list[tuple[int, int]]:
    out = []
    t = start_ns
    while t < end_ns:
        out.append((t, min(end_ns, t + max_ns)))
        t = out[-1][1]
    return out


def _q(path: str, **params: object) -> str:
    return f"{path}?{urlencode(params, safe=':')}"


def chunk_hours(limits: ApiLimits) -> int:
    """The most hours one ``/report/windows`` request with ``window=hour`` accepts."""
    return max(1, min(limits.max_windows, int(limits.max_range_s * S) // HOUR_NS))


def recompute_chunks(start_ns: int, end_ns: int, limits: ApiLimits) -> list[tuple[int, int]]:
    """``[start, end)`` cut into ranges ``/report/windows?window=hour`` accepts: each meets at
    most :func:`chunk_hours` hours of the API's grid (so at most that many windows, the
    first and last possibly partial) and is no longer than that; cut on the grid."""
    hours = chunk_hours(limits) * HOUR_NS
    floor = (start_ns - limits.hour_offset_ns) // HOUR_NS * HOUR_NS + limits.hour_offset_ns
    out: list[tuple[int, int]] = []
    a = start_ns
    while a < end_ns:
        b = min(end_ns, floor + (len(out) + 1) * hours)
        out.append((a, b))
        a = b
    return out


def _hourly(figures: Figures, limits: ApiLimits) -> bool:
    """Whether the tiles are the API's hours (1 h windows, the period starting on an hour of
    its grid): then ``/report?window=hour`` recomputes them."""
    offset = figures.start_ns - limits.hour_offset_ns
    return figures.window_s == 3600 and offset % HOUR_NS == 0


def api_calls(figures: Figures, limits: ApiLimits = DEFAULT_LIMITS) -> list[str]:
    """The API calls that give every number again: these figures; every stored point of the
    enterprise's rate (the tiles are the first at or after each ``start + k·window``); every
    stored status; the last tile recomputed from the raw samples; the first hour as
    ``/report`` computes it (when the tiles are its hours). ``/history`` and the exports
    cover at most ``max_range_s`` a call, so a longer period is listed as several calls."""
    ent = figures.enterprise_id
    window = figures.window_s * S
    lower, upper = figures.start_ns + window, figures.end_ns + window
    calls = [
        _q(
            "/api/v1/report-doc",
            enterprise=ent,
            start=figures.start,
            end=figures.end,
            format="json",
        )
    ]
    chunks = _chunks(lower, upper, int(limits.max_range_s * S))
    calls += [
        _q(
            "/api/v1/history",
            scope="enterprise",
            scope_id=ent,
            start=iso(a),
            end=iso(b),
            resolution="window",
        )
        for a, b in chunks
    ]
    calls += [_q("/api/v1/export/processes.csv", start=iso(a), end=iso(b)) for a, b in chunks]
    last = (figures.end_ns - figures.start_ns - 1) // window * window + figures.start_ns
    calls.append(_q("/api/v1/recompute", start=iso(last), end=iso(last + window)))
    if _hourly(figures, limits):
        first = figures.start_ns + window
        calls.append(_q("/api/v1/report", start=figures.start, end=iso(first), window="hour"))
    return calls


def cli_calls(figures: Figures, limits: ApiLimits = DEFAULT_LIMITS) -> list[str]:
    """``kpi report-doc`` for these figures (one request whatever the period); when the tiles
    are the API's hours, ``kpi report`` recomputing each of them from the raw samples, one
    command per range ``/report/windows`` accepts (:func:`recompute_chunks`): a single
    command over a longer period would be refused (422 ``too_many_windows``)."""
    ent = figures.enterprise_id
    out = [f"kpi report-doc --enterprise {ent} --from {figures.start} --to {figures.end} --json"]
    if _hourly(figures, limits):
        out += [
            f"{RECOMPUTE_COMMAND} --start {iso(a)} --end {iso(b)} --window hour --json"
            for a, b in recompute_chunks(figures.start_ns, figures.end_ns, limits)
        ]
    return out


async def build_report(
    reader: InfluxQLReader,
    register: LoadedRegister,
    start_ns: int,
    end_ns: int,
    *,
    window_s: float = 3600.0,
    utc_offset_s: int = 0,
    day_offset_ns: int | None = None,
    limits: ApiLimits = DEFAULT_LIMITS,
) -> ReportDoc:
    """Read the stored results of ``register``'s enterprise that tile ``[start, end)`` with
    windows of ``window_s`` (the collector's ``COLLECTOR_KPI__WINDOW``) and make the report
    of them, showing times ``utc_offset_s`` ahead of UTC (the zone the period was asked in).
    The trend's days start ``day_offset_ns`` after midnight UTC, by default at midnight in
    that zone. The reading runs on the event loop; making the figures and their digest
    (CPU-bound, ~0.5 s for a year) in the report's worker thread."""
    stored = await read_stored(
        reader,
        register.enterprise_id,
        [plant.id for plant in register.model.plants],
        start_ns,
        end_ns,
        window_ns=round(window_s * S),
    )
    return await in_worker(
        report_of,
        register,
        stored,
        start_ns,
        end_ns,
        database=reader.settings.database,
        utc_offset_s=utc_offset_s,
        day_offset_ns=day_offset_ns,
        limits=limits,
    )


def report_of(
    register: LoadedRegister,
    stored: Stored,
    start_ns: int,
    end_ns: int,
    *,
    database: str,
    utc_offset_s: int = 0,
    day_offset_ns: int | None = None,
    limits: ApiLimits = DEFAULT_LIMITS,
) -> ReportDoc:
    """The report of what :func:`read_stored` answered (pure, CPU-bound)."""
    day_offset = local_midnight(utc_offset_s) if day_offset_ns is None else day_offset_ns
    bucket, length, offset = bucket_of(start_ns, end_ns, day_offset)
    figures = build_figures(
        register.model,
        stored,
        start_ns,
        end_ns,
        bucket=bucket,
        bucket_ns=length,
        offset_ns=offset,
    )
    return document(
        figures,
        register,
        stored.statements,
        database,
        utc_offset_s=utc_offset_s,
        limits=limits,
    )


def document(
    figures: Figures,
    register: LoadedRegister,
    statements: Sequence[Statement],
    database: str,
    *,
    utc_offset_s: int = 0,
    limits: ApiLimits = DEFAULT_LIMITS,
    generated_at_ns: int | None = None,
) -> ReportDoc:
    now = time.time_ns() if generated_at_ns is None else generated_at_ns
    return ReportDoc(
        figures=figures,
        digest=digest(figures),
        generated_at_ns=now,
        generated_at=iso(now),
        utc_offset_s=utc_offset_s,
        loaded_register=LoadedRegisterOut(version=register.version, digest=register.digest),
        names=names_of(register),
        reproduce=Reproduce(
            api=api_calls(figures, limits),
            cli=cli_calls(figures, limits),
            report_chunk_h=chunk_hours(limits),
            influxql=[StatementOut(purpose=s.purpose, text=s.text) for s in statements],
            database=database,
        ),
    )
