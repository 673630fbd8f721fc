"""``kpi report-doc``: fetch the report of an enterprise over a period from the collector API
and write it as XLSX and PDF (or print its figures as JSON). A client of the API like the
other ``kpi`` commands: it computes nothing itself.

Exit codes as for every ``kpi`` command: 0 ok, 3 the API is unreachable, 4 the API answered
an error (printed as ``status code [field] detail``), 2 a wrong argument.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from collector.kpi_client import (
    DEFAULT_API,
    ApiOption,
    LangOption,
    TokenOption,
    fetch,
    iso,
    parse_moment,
    reader,
)
from collector.report_doc import DIGEST_HEADER
from collector.report_doc.period import CalendarPeriod, calendar_period, file_stem

__all__ = ["report_doc"]

PATH = "/api/v1/report-doc"
FORMATS = ("xlsx", "pdf")
_FILENAME = re.compile(r'filename="([^"/\\]+)"')


def period_of(
    start: str, end: str | None, period: str | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``[from, to)`` from ``--from`` and ``--to``, or the calendar ``--period`` that
    contains ``--from``."""
    begin = parse_moment(start, now, "--from")
    if period is not None:
        if period not in ("month", "quarter", "year"):
            raise typer.BadParameter(
                f"{period!r}: use month, quarter or year", param_hint="--period"
            )
        if end is not None:
            raise typer.BadParameter("give --to or --period, not both", param_hint="--to")
        kind: CalendarPeriod = period  # type: ignore[assignment]
        return calendar_period(begin, kind)
    if end is None:
        raise typer.BadParameter(
            "give --to, or --period month|quarter|year (the one containing --from)",
            param_hint="--to",
        )
    return begin, parse_moment(end, now, "--to")


def report_doc(
    enterprise: Annotated[str, typer.Option("--enterprise", help="Enterprise id (register)")],
    start: Annotated[
        str,
        typer.Option(
            "--from",
            help="Start: ISO 8601 date or time (no zone: UTC), 'now' or before now ('-30d')",
        ),
    ],
    end: Annotated[
        str | None, typer.Option("--to", help="End (the period is [from, to)); or --period")
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="month, quarter or year: the calendar period containing --from (in its zone)",
        ),
    ] = None,
    lang: LangOption = None,
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Folder the files are written to")
    ] = Path("."),
    formats: Annotated[
        list[str] | None, typer.Option("--format", help="xlsx and/or pdf (default: both)")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures and their digest as JSON instead")
    ] = False,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
) -> None:
    """The report an enterprise sends upward: measured beside declared rate, key processes,
    reasons, trend, register versions, how to reproduce it and its digest (XLSX and PDF)."""
    _ = reader(lang)
    language = _.lang
    begin, finish = period_of(start, end, period)
    params = {
        "enterprise": enterprise,
        "start": iso(begin),
        "end": iso(finish),
        "lang": language,
    }
    if as_json:
        answer: Any = fetch(api, PATH, token, _, 600, **params, format="json").json()
        print(json.dumps(answer, indent=2, ensure_ascii=False))
        return
    chosen = formats or list(FORMATS)
    for kind in chosen:
        if kind not in FORMATS:
            raise typer.BadParameter(f"{kind!r}: use xlsx or pdf", param_hint="--format")
    output_dir.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    for kind in chosen:
        response = fetch(api, PATH, token, _, 600, **params, format=kind)
        found = _FILENAME.search(response.headers.get("content-disposition", ""))
        name = (
            found.group(1) if found else f"{file_stem(enterprise, begin, finish, language)}.{kind}"
        )
        path = output_dir / name
        path.write_bytes(response.content)
        digests[kind] = response.headers.get(DIGEST_HEADER, "")
        size = f"{len(response.content):,}"
        written = _("wrote {path} ({size} bytes)", path=path, size=size)
        print(f"kpi: {written}", file=sys.stderr)
    shown = sorted(set(digests.values()))
    print(f"kpi: SHA-256 {', '.join(shown)}", file=sys.stderr)
    if len(shown) > 1:
        warning = _(
            "the stored results changed between the requests (a period reaching into the "
            "present?): the files' digests differ; ask again for identical files"
        )
        print(f"kpi: {warning}", file=sys.stderr)
