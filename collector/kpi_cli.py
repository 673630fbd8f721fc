"""``kpi``: the collector API's client for plant managers — the current table, a process's
reasons, history, reports and exports. It shares nothing with the service but the API."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import measure_renderables
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from collector.api.models import (
    BucketHistoryOut,
    KpiOut,
    OutageOut,
    ProcessDetailOut,
    ProcessesOut,
    RateOut,
    ReportPlanOut,
    ReportWindowOut,
    WindowHistoryOut,
)
from collector.i18n import DEFAULT_LANG, Translator, translator
from collector.i18n.terms import (
    INDUSTRIES,
    PERIODS,
    SCOPES_SHORT,
    reason_fix,
    reason_label,
    status_label,
    term,
)
from collector.kpi_client import (
    DEFAULT_API,
    ApiOption,
    DisplayNames,
    JsonOption,
    LangOption,
    Refused,
    TokenOption,
    Unreachable,
    call,
    display_names,
    error_text,
    fail,
    get,
    headers,
    parse_when,
    reader,
    unreachable,
)
from collector.report_doc.cli import report_doc

__all__ = ["display_names", "kpi_app", "main", "parse_when", "reader", "render_kpi", "top_reasons"]

kpi_app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="Key-process digitalization rate: current table, processes and reasons.",
)


@contextmanager
def _progress(enabled: bool, *columns: Any) -> Iterator[Progress]:
    """A rich progress display on stderr (stdout stays clean for --json and CSV)."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        *columns,
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )
    with progress:
        yield progress


REASONS_SHOWN = 3
EN = translator(DEFAULT_LANG)


def top_reasons(reasons: dict[str, int], shown: int = REASONS_SHOWN, _: Translator = EN) -> str:
    """The most frequent reason codes with their process counts (``LOW_COVERAGE×4``; in
    Chinese the codes' labels), and how many codes more there are: a table cell must not
    hide that it is cut short."""
    ranked = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    text = " ".join(f"{_reason(_, code)}×{n}" for code, n in ranked[:shown])
    more = len(ranked) - shown
    return text + " " + _("+{count} more", count=more) if more > 0 else text


def _reason(_: Translator, code: str) -> str:
    """A reason as a reader of the language knows it: the code in English (it is what the
    docs and the API say), the short label otherwise."""
    return code if _.lang == DEFAULT_LANG else reason_label(_, code)


def _status(_: Translator, code: str) -> str:
    return code if _.lang == DEFAULT_LANG else status_label(_, code)


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def _scope(_: Translator, scope: str) -> str:
    return term(_, SCOPES_SHORT, scope)


def _rates_table(
    title: str, rows: list[RateOut], _: Translator, names: DisplayNames | None
) -> Table:
    table = Table(title=title)
    table.add_column(_("scope"))
    table.add_column(_("id"))
    if names is not None:
        table.add_column(_("name"))
    table.add_column(_("rate"), justify="right")
    table.add_column(_("digitalized/key"), justify="right")
    table.add_column(_("not sched."), justify="right")
    table.add_column(_("provisional"), justify="right")
    table.add_column(_("why not (processes)"))
    for r in rows:
        name = [names.scope(r.scope, r.scope_id, r.plant_id, r.enterprise_id)] if names else []
        table.add_row(
            _scope(_, r.scope),
            r.scope_id,
            *name,
            _pct(r.rate),
            f"{r.numerator}/{r.denominator}",
            str(r.not_scheduled),
            str(r.provisional),
            top_reasons(r.reasons, _=_),
        )
    return table


def render_kpi(
    console: Console,
    kpi: KpiOut,
    processes: ProcessesOut,
    _: Translator = EN,
    names: DisplayNames | None = None,
) -> None:
    names = names or DisplayNames()
    window = kpi.window
    seconds = (window.end_ns - window.start_ns) / 1e9
    end = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(window.end_ns / 1e9))
    title = _(
        "Key-process digitalization rate — window {seconds}s ending {end}",
        seconds=round(seconds),
        end=end,
    )
    order = {"region_official": 0, "region_pooled": 1, "enterprise": 2, "plant": 3, "line": 4}
    rows = sorted(
        (r for r in kpi.rates if r.industry == "all"),
        key=lambda r: (order.get(r.scope, 9), r.scope_id),
    )
    table = _rates_table(title, rows, _, names)
    unbounded = console.options.update_width(10_000)  # the width the table would like
    if names.enterprises and measure_renderables(console, unbounded, [table]).maximum > (
        console.width
    ):
        # The names only where they fit: a squeezed table would cut ids and reason codes.
        table = _rates_table(title, rows, _, None)
    console.print(table)
    if any(r.provisional for r in rows):
        console.print(
            _(
                "provisional: data for these processes is still on its way from the plant's "
                "edge (uplink outage, backlog draining); they leave the rate until it has arrived"
            )
        )
    with_names = bool(names.enterprises)
    failing = Table(title=_("Key processes that do not count, and why"))
    failing.add_column(_("process"))
    if with_names:
        failing.add_column(_("name"), max_width=18)
    for column in (_("plant/line"), _("status"), _("reasons"), _("worst coverage")):
        failing.add_column(column)
    for p in processes.processes:
        if p.status == "DIGITALIZED":
            continue
        coverage = min((s.good for s in p.signals), default=None)
        failing.add_row(
            p.process_id,
            *([names.processes.get((p.enterprise_id, p.process_id), "")] if with_names else []),
            f"{p.plant_id}/{p.line_id}",
            _status(_, p.status),
            ", ".join(_reason(_, code) for code in p.reasons) or "—",
            "—" if coverage is None else f"{coverage:.0%}",
        )
    console.print(failing)


@kpi_app.callback()
def kpi_current(
    ctx: typer.Context,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    as_json: JsonOption = False,
    lang: LangOption = None,
) -> None:
    """Print the current rates and the processes that do not count (default command)."""
    if ctx.invoked_subcommand is not None:
        return
    _ = reader(lang)
    kpi = get(api, "/api/v1/kpi", token, _)
    processes = get(api, "/api/v1/processes", token, _)
    if as_json:
        print(json.dumps({"kpi": kpi, "processes": processes["processes"]}, indent=2))
        return
    render_kpi(
        Console(),
        KpiOut.model_validate(kpi),
        ProcessesOut.model_validate(processes),
        _,
        display_names(api, token, _),
    )


@kpi_app.command()
def watch(
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes")] = 5.0,
    lang: LangOption = None,
) -> None:
    """Refresh the KPI table until Ctrl-C."""
    _ = reader(lang)
    console = Console()
    names: DisplayNames | None = None
    try:
        while True:
            try:
                kpi = call(api, "/api/v1/kpi", token, 10, _)
                processes = call(api, "/api/v1/processes", token, 10, _)
            except Unreachable as exc:
                text = _("waiting for the collector API at {api}: {error}", api=api, error=exc)
                console.print(f"[yellow]{text}[/]", markup=True)
            except Refused as exc:
                if exc.response.status_code != 503:  # a token or an address to fix
                    raise fail("/api/v1/kpi", exc.response, _) from None
                console.print(f"[yellow]{error_text(exc.response, _)}[/]")  # not ready yet
            else:
                if names is None or not names.enterprises:
                    names = display_names(api, token, _)
                console.clear()
                render_kpi(
                    console,
                    KpiOut.model_validate(kpi),
                    ProcessesOut.model_validate(processes),
                    _,
                    names,
                )
                console.print(_("API: {api}  (OpenAPI: {api}/docs) — Ctrl-C to stop", api=api))
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


@kpi_app.command("process")
def process_detail(
    process_id: str,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    as_json: JsonOption = False,
    lang: LangOption = None,
) -> None:
    """Why one process does (not) count: every failing rule and the evidence per signal."""
    _ = reader(lang)
    answer = get(api, f"/api/v1/processes/{process_id}", token, _)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    p = ProcessDetailOut.model_validate(answer)
    name = display_names(api, token, _).processes.get((p.enterprise_id, p.process_id))
    console = Console()
    # Names and ids are data: a "[" in them is text, not rich markup.
    console.print(
        f"[bold]{escape(p.process_id)}[/]{escape(f' {name}') if name else ''} "
        f"({escape(p.plant_id)}/{escape(p.line_id)}, {p.industry}): "
        f"[bold]{_status(_, p.status)}[/] "
        f"{escape(', '.join(_reason(_, code) for code in p.reasons))}"
    )
    for code in p.reasons:
        fix = reason_fix(_, code)
        if fix:
            label = reason_label(_, code)
            console.print(f"  {code} ({label}): {fix}", markup=False)
    table = Table()
    for column in (
        _("signal"),
        _("role"),
        _("good"),
        _("unknown"),
        _("bad"),
        _("uncertain"),
        _("overridden"),
        _("longest gap"),
        _("samples"),
        _("reasons"),
    ):
        table.add_column(column)
    for s in p.signals:
        table.add_row(
            s.signal_id,
            s.role,
            f"{s.good:.0%}",
            f"{s.unknown:.0%}",
            f"{s.bad:.0%}",
            f"{s.uncertain:.0%}",
            f"{s.overridden:.0%}",
            f"{s.longest_gap_s:.0f}s",
            str(s.samples),
            ", ".join(_reason(_, code) for code in s.reasons),
        )
    console.print(table)
    for outage in p.outages:
        console.print(_("outage: {outage}", outage=format_outage(outage, p.window.start_ns, _)))
    if p.outages_more:
        console.print(_("(+{count} more outages)", count=p.outages_more))
    if p.manual_share is not None:
        share = format(p.manual_share, ".0%")
        console.print(_("manual mode share: {share}", share=share))
    for problem in p.edge_problems:
        console.print(_("edge now: {problem}", problem=problem), soft_wrap=True, markup=False)
    console.print(
        _(
            "register {version}, thresholds {thresholds}",
            version=p.register_version,
            thresholds=p.thresholds,
        )
    )


StartOption = Annotated[
    str, typer.Option(help="ISO 8601 (no zone: UTC), 'now', or before now: '-24h', '-7d'")
]
EndOption = Annotated[str, typer.Option(help="Like --start; the range is [start, end)")]


def format_outage(outage: OutageOut, window_start_ns: int, _: Translator = EN) -> str:
    """``opc1: connection lost: transport lost, 35.2–58.8 s`` (seconds into the window;
    "until the window's end" when it did not come back within it)."""
    down = (outage.down_ns - window_start_ns) / 1e9
    up = outage.up_ns
    start = format(down, ".1f")
    span = (
        _("{down}–{up} s", down=start, up=format((up - window_start_ns) / 1e9, ".1f"))
        if up
        else _("from {down} s on", down=start)
    )
    detail = outage.detail or _("lost")
    return f"{outage.source}: {detail}, {span} ({_when(outage.down_ns)})"


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns / 1e9)) + "Z"


@kpi_app.command()
def history(
    scope: Annotated[str, typer.Argument(help="line, plant, enterprise, region_official, …")],
    scope_id: Annotated[str, typer.Argument(help="line, plant or enterprise id, or region")],
    start: StartOption = "-24h",
    end: EndOption = "now",
    resolution: Annotated[
        str, typer.Option(help="window (every stored point), hour, shift or day")
    ] = "hour",
    industry: Annotated[str, typer.Option(help="all, discrete or process")] = "all",
    plant: Annotated[str | None, typer.Option(help="for a line: its plant")] = None,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    as_json: JsonOption = False,
    lang: LangOption = None,
) -> None:
    """How a scope's rate has moved: the stored live results, per window or averaged."""
    _ = reader(lang)
    data = get(
        api,
        "/api/v1/history",
        token,
        _,
        scope=scope,
        scope_id=scope_id,
        start=parse_when(start),
        end=parse_when(end),
        resolution=resolution,
        industry=industry,
        plant=plant,
    )
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table(
        title=_(
            "{scope} {id} ({industry}) — stored rate, {resolution}",
            scope=_scope(_, scope),
            id=scope_id,
            industry=term(_, INDUSTRIES, industry),
            resolution=term(_, PERIODS, resolution),
        )
    )
    table.add_column(_("time (UTC)"))
    table.add_column(_("plant"))
    if resolution == "window":
        for column in (_("rate"), _("digitalized/key"), _("not sched."), _("why not")):
            table.add_column(column, justify="right")
        for p in WindowHistoryOut.model_validate(data).points:
            table.add_row(
                _when(p.time_ns),
                p.plant or "",
                _pct(p.rate),
                f"{p.numerator}/{p.denominator}",
                "" if p.not_scheduled is None else str(p.not_scheduled),
                top_reasons(p.reasons or {}, _=_),
            )
    else:
        for column in (_("mean"), _("min"), _("max"), _("pooled"), _("windows")):
            table.add_column(column, justify="right")
        for b in BucketHistoryOut.model_validate(data).points:
            table.add_row(
                _when(b.time_ns),
                b.plant or "",
                _pct(b.rate_mean),
                _pct(b.rate_min),
                _pct(b.rate_max),
                _pct(b.rate_pooled),
                str(b.points),
            )
    Console().print(table)


@kpi_app.command()
def report(
    start: StartOption = "-24h",
    end: EndOption = "now",
    window: Annotated[str, typer.Option(help="hour, shift or day (or 1h, 8h, 1d)")] = "shift",
    scope: Annotated[str, typer.Option(help="scope kind shown in the table")] = "enterprise",
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    as_json: JsonOption = False,
    lang: LangOption = None,
) -> None:
    """The rate per hour / shift / day, each window recomputed from the raw samples."""
    _ = reader(lang)
    plan = ReportPlanOut.model_validate(
        get(
            api,
            "/api/v1/report/windows",
            token,
            _,
            start=parse_when(start),
            end=parse_when(end),
            window=window,
        )
    )
    windows: list[dict[str, Any]] = []
    # One request per window: the server's bound on windows per request holds, and the
    # progress bar moves as each recomputation finishes.
    with _progress(not as_json, BarColumn(), MofNCompleteColumn()) as progress:
        task = progress.add_task(_("recomputing windows"), total=len(plan.windows))
        for w in plan.windows:
            got = get(api, "/api/v1/report", token, _, start=w.start, end=w.end, window=window)
            windows.extend(got["windows"])
            progress.advance(task)
    if as_json:
        print(json.dumps({"period": plan.period, "windows": windows}, indent=2))
        return
    table = Table(
        title=_(
            "Key-process digitalization rate per {period} (recomputed)",
            period=term(_, PERIODS, plan.period),
        )
    )
    for column in (
        _("start (UTC)"),
        _("end"),
        _("scope"),
        _("id"),
        _("rate"),
        _("digitalized/key"),
        _("why not"),
    ):
        table.add_column(column)
    for entry in windows:
        recomputed = ReportWindowOut.model_validate(entry)
        for r in recomputed.rates:
            if r.scope != scope or r.industry != "all":
                continue
            partial = _(" (partial)") if recomputed.partial else ""
            table.add_row(
                _when(recomputed.window.start_ns),
                _when(recomputed.window.end_ns) + partial,
                _scope(_, r.scope),
                r.scope_id,
                _pct(r.rate),
                f"{r.numerator}/{r.denominator}",
                top_reasons(r.reasons, _=_),
            )
    Console().print(table)


@kpi_app.command()
def export(
    what: Annotated[str, typer.Argument(help="processes (per-process status) or rates")],
    start: StartOption = "-24h",
    end: EndOption = "now",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")
    ] = None,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array instead of CSV")] = False,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            envvar="KPI_LANG",
            help="Column headers in en or zh (CSV only: JSON keys stay as they are)",
        ),
    ] = None,
) -> None:
    """Stored per-process statuses or per-scope rates of a range, as CSV (or JSON)."""
    _ = reader(lang)
    if what not in ("processes", "rates"):
        raise typer.BadParameter(_("{what}: export 'processes' or 'rates'", what=repr(what)))
    path = f"/api/v1/export/{what}.csv"
    params = {"start": parse_when(start), "end": parse_when(end)}
    if lang and not as_json:
        # Only an explicit --lang / KPI_LANG changes a machine-readable header (never the
        # locale), and JSON keys are the stored names in every language.
        params["lang"] = _.lang
    text = _download(api, path, token, params, _, show=output is not None or as_json)
    out = json.dumps(list(csv.DictReader(io.StringIO(text))), indent=2) + "\n" if as_json else text
    if output is None:
        sys.stdout.write(out)
    else:
        output.write_text(out, encoding="utf-8")
        rows = max(0, text.count("\n") - 1)
        wrote = _("wrote {rows} rows to {path}", rows=rows, path=output)
        print(f"kpi: {wrote}", file=sys.stderr)


def _download(
    api: str, path: str, token: str | None, params: dict[str, str], _: Translator, *, show: bool
) -> str:
    chunks: list[bytes] = []
    try:
        with (
            httpx.stream(
                "GET",
                f"{api.rstrip('/')}{path}",
                params=params,
                headers=headers(token, _),
                timeout=300,
            ) as response,
            _progress(show, DownloadColumn()) as progress,
        ):
            if response.status_code != 200:
                response.read()
                raise fail(path, response, _)
            name = path.rsplit("/", 1)[-1]
            task = progress.add_task(_("downloading {name}", name=name), total=None)
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                progress.advance(task, len(chunk))
    except httpx.HTTPError as exc:
        if chunks:
            # The server cut a stream it had started: never hand on a short file as whole.
            text = _("transfer interrupted: {error}", error=exc)
            print(f"kpi: {path}: {text}", file=sys.stderr)
            raise typer.Exit(5) from None
        raise unreachable(api, exc, _) from None
    return b"".join(chunks).decode()


kpi_app.command("report-doc")(report_doc)


def main() -> None:
    kpi_app()
