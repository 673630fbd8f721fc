"""The whole report as the API answers it (``format=json``) and the renderers read it: the
figures and their digest, plus what is not a figure — the register's names, when it was
generated, and how to reproduce every number (the API calls, the InfluxQL read)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from collector.report_doc.figures import Figures, S, build_figures, digest, iso
from collector.report_doc.period import bucket_of
from collector.report_doc.queries import Statement, read_stored
from collector.storage.reader import InfluxQLReader
from common.languages import Names
from common.register_loader import LoadedRegister

__all__ = [
    "DIGEST_METHOD",
    "Named",
    "RegisterNames",
    "ReportDoc",
    "build_report",
    "names_of",
]

DIGEST_METHOD = "sha256(orjson.dumps(figures, option=orjson.OPT_SORT_KEYS))"


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
    text: str


class Reproduce(DocModel):
    api: list[str]
    """Paths with their query, relative to the API's base URL."""
    cli: list[str]
    """The same with the ``kpi`` command."""
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


def api_calls(figures: Figures, max_range_s: float) -> list[str]:
    """The API calls that give every number again: these figures; every stored point of the
    enterprise's rate (the tiles are the first at or after each ``start + k·window``); every
    stored status; the last tile recomputed from the raw samples; the first hour as
    ``/report`` computes it. ``/history`` and the exports cover at most ``max_range_s`` a
    call, so a longer period is listed as several calls."""
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
    chunks = _chunks(lower, upper, int(max_range_s * S))
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
    if figures.window_s == 3600:
        first = figures.start_ns + window
        calls.append(_q("/api/v1/report", start=figures.start, end=iso(first), window="hour"))
    return calls


def cli_calls(figures: Figures) -> list[str]:
    """The same with the ``kpi`` command (it splits long ranges itself)."""
    ent = figures.enterprise_id
    out = [f"kpi report-doc --enterprise {ent} --from {figures.start} --to {figures.end} --json"]
    if figures.window_s == 3600:
        out.append(f"kpi report --start {figures.start} --end {figures.end} --window hour --json")
    return out


async def build_report(
    reader: InfluxQLReader,
    register: LoadedRegister,
    start_ns: int,
    end_ns: int,
    *,
    window_s: float = 3600.0,
    day_offset_ns: int = 0,
    utc_offset_s: int = 0,
    max_range_s: float = 31 * 86400.0,
) -> ReportDoc:
    """Read the stored results of ``register``'s enterprise that tile ``[start, end)`` with
    windows of ``window_s`` (the collector's ``COLLECTOR_KPI__WINDOW``) and make the report
    of them."""
    bucket, length, offset = bucket_of(start_ns, end_ns, day_offset_ns)
    stored = await read_stored(
        reader,
        register.enterprise_id,
        [plant.id for plant in register.model.plants],
        start_ns,
        end_ns,
        window_ns=round(window_s * S),
    )
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
        reader.settings.database,
        utc_offset_s=utc_offset_s,
        max_range_s=max_range_s,
    )


def document(
    figures: Figures,
    register: LoadedRegister,
    statements: Sequence[Statement],
    database: str,
    *,
    utc_offset_s: int = 0,
    max_range_s: float = 31 * 86400.0,
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
            api=api_calls(figures, max_range_s),
            cli=cli_calls(figures),
            influxql=[StatementOut(purpose=s.purpose, text=s.text) for s in statements],
            database=database,
        ),
    )
