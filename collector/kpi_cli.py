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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
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
    ReportPlanOut,
    ReportWindowOut,
    WindowHistoryOut,
)

kpi_app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="Key-process digitalization rate: current table, processes and reasons.",
)

ApiOption = Annotated[str, typer.Option(envvar="KPI_API", help="Collector API base URL")]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="KPI_TOKEN", help="API bearer token (env KPI_TOKEN)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
DEFAULT_API = "http://127.0.0.1:8080"


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _error_text(response: httpx.Response) -> str:
    """The API's JSON error as one line: status, code, the parameter at fault, detail."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    detail = body.get("detail", response.text) if isinstance(body, dict) else body
    field = body.get("field") if isinstance(body, dict) else None
    code = body.get("error", "") if isinstance(body, dict) else ""
    where = f" [{field}]" if field else ""
    return f"{response.status_code} {code}{where} {detail}"


def _fail(path: str, response: httpx.Response) -> typer.Exit:
    """Print the API's JSON error and exit 4."""
    print(f"kpi: {path}: {_error_text(response)}", file=sys.stderr)
    return typer.Exit(4)


def _unreachable(api: str, exc: Exception) -> typer.Exit:
    print(f"kpi: cannot reach the collector API at {api}: {exc}", file=sys.stderr)
    return typer.Exit(3)


class _Unreachable(Exception):
    """The API did not answer (connection refused, timed out)."""


class _Refused(Exception):
    """The API answered with an error (its JSON body says which)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _call(api: str, path: str, token: str | None, timeout: float, **params: Any) -> Any:
    """One GET of the API: its JSON answer, or :class:`_Unreachable` / :class:`_Refused`."""
    query = {k: v for k, v in params.items() if v is not None}
    try:
        response = httpx.get(
            f"{api.rstrip('/')}{path}", params=query, headers=_headers(token), timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise _Unreachable(str(exc)) from None
    if response.status_code != 200:
        raise _Refused(response)
    return response.json()


def _get(api: str, path: str, token: str | None = None, **params: Any) -> Any:
    try:
        return _call(api, path, token, 300, **params)
    except _Unreachable as exc:
        raise _unreachable(api, exc) from None
    except _Refused as exc:
        raise _fail(path, exc.response) from None


def parse_when(text: str, now: datetime | None = None) -> str:
    """``now``, ``-24h`` / ``-7d`` (before now), or ISO 8601 (no zone: UTC) → ISO with zone."""
    from common.durations import parse_duration

    now = now or datetime.now(UTC)
    text = text.strip()
    if text == "now":
        moment = now
    elif text.startswith("-"):
        try:
            moment = now - timedelta(seconds=parse_duration(text[1:]))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise typer.BadParameter(
                f"{text!r}: use ISO 8601 (2026-11-28T08:00:00Z), 'now' or '-24h'"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


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


def top_reasons(reasons: dict[str, int], shown: int = REASONS_SHOWN) -> str:
    """The most frequent reason codes with their process counts (``LOW_COVERAGE×4``), and
    how many codes more there are: a table cell must not hide that it is cut short."""
    ranked = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    text = " ".join(f"{code}×{n}" for code, n in ranked[:shown])
    more = len(ranked) - shown
    return f"{text} +{more} more" if more > 0 else text


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def render_kpi(console: Console, kpi: KpiOut, processes: ProcessesOut) -> None:
    window = kpi.window
    seconds = (window.end_ns - window.start_ns) / 1e9
    end = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(window.end_ns / 1e9))
    table = Table(title=f"Key-process digitalization rate — window {seconds:.0f}s ending {end}")
    table.add_column("scope")
    table.add_column("id")
    table.add_column("rate", justify="right")
    table.add_column("digitalized/key", justify="right")
    table.add_column("not sched.", justify="right")
    table.add_column("provisional", justify="right")
    table.add_column("why not (processes)")
    order = {"region_official": 0, "region_pooled": 1, "enterprise": 2, "plant": 3, "line": 4}
    rows = sorted(
        (r for r in kpi.rates if r.industry == "all"),
        key=lambda r: (order.get(r.scope, 9), r.scope_id),
    )
    for r in rows:
        table.add_row(
            r.scope.replace("region_", "region "),
            r.scope_id,
            _pct(r.rate),
            f"{r.numerator}/{r.denominator}",
            str(r.not_scheduled),
            str(r.provisional),
            top_reasons(r.reasons),
        )
    console.print(table)
    if any(r.provisional for r in rows):
        console.print(
            "provisional: data for these processes is still on its way from the plant's edge "
            "(uplink outage, backlog draining); they leave the rate until it has arrived"
        )
    failing = Table(title="Key processes that do not count, and why")
    for column in ("process", "plant/line", "status", "reasons", "worst coverage"):
        failing.add_column(column)
    for p in processes.processes:
        if p.status == "DIGITALIZED":
            continue
        coverage = min((s.good for s in p.signals), default=None)
        failing.add_row(
            p.process_id,
            f"{p.plant_id}/{p.line_id}",
            p.status,
            ", ".join(p.reasons) or "—",
            "—" if coverage is None else f"{coverage:.0%}",
        )
    console.print(failing)


@kpi_app.callback()
def kpi_current(
    ctx: typer.Context,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the current rates and the processes that do not count (default command)."""
    if ctx.invoked_subcommand is not None:
        return
    kpi = _get(api, "/api/v1/kpi", token)
    processes = _get(api, "/api/v1/processes", token)
    if as_json:
        print(json.dumps({"kpi": kpi, "processes": processes["processes"]}, indent=2))
        return
    render_kpi(Console(), KpiOut.model_validate(kpi), ProcessesOut.model_validate(processes))


@kpi_app.command()
def watch(
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes")] = 5.0,
) -> None:
    """Refresh the KPI table until Ctrl-C."""
    console = Console()
    try:
        while True:
            try:
                kpi = _call(api, "/api/v1/kpi", token, 10)
                processes = _call(api, "/api/v1/processes", token, 10)
            except _Unreachable as exc:
                console.print(f"[yellow]waiting for the collector API at {api}: {exc}[/]")
            except _Refused as exc:
                if exc.response.status_code != 503:  # a token or an address to fix
                    raise _fail("/api/v1/kpi", exc.response) from None
                console.print(f"[yellow]{_error_text(exc.response)}[/]")  # not ready yet
            else:
                console.clear()
                render_kpi(
                    console, KpiOut.model_validate(kpi), ProcessesOut.model_validate(processes)
                )
                console.print(f"API: {api}  (OpenAPI: {api}/docs) — Ctrl-C to stop")
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


@kpi_app.command("process")
def process_detail(
    process_id: str,
    api: ApiOption = DEFAULT_API,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Why one process does (not) count: every failing rule and the evidence per signal."""
    answer = _get(api, f"/api/v1/processes/{process_id}", token)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    p = ProcessDetailOut.model_validate(answer)
    console = Console()
    console.print(
        f"[bold]{p.process_id}[/] ({p.plant_id}/{p.line_id}, {p.industry}): "
        f"[bold]{p.status}[/] {', '.join(p.reasons)}"
    )
    table = Table()
    for column in (
        "signal",
        "role",
        "good",
        "unknown",
        "bad",
        "uncertain",
        "overridden",
        "longest gap",
        "samples",
        "reasons",
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
            ", ".join(s.reasons),
        )
    console.print(table)
    for outage in p.outages:
        console.print(f"outage: {format_outage(outage, p.window.start_ns)}")
    if p.outages_more:
        console.print(f"(+{p.outages_more} more outages)")
    if p.manual_share is not None:
        console.print(f"manual mode share: {p.manual_share:.0%}")
    for problem in p.edge_problems:
        console.print(f"edge now: {problem}", soft_wrap=True, markup=False)
    console.print(f"register {p.register_version}, thresholds {p.thresholds}")


StartOption = Annotated[
    str, typer.Option(help="ISO 8601 (no zone: UTC), 'now', or before now: '-24h', '-7d'")
]
EndOption = Annotated[str, typer.Option(help="Like --start; the range is [start, end)")]


def format_outage(outage: OutageOut, window_start_ns: int) -> str:
    """``opc1: connection lost: transport lost, 35.2–58.8 s`` (seconds into the window;
    "until the window's end" when it did not come back within it)."""
    down = (outage.down_ns - window_start_ns) / 1e9
    up = outage.up_ns
    span = f"{down:.1f}–{(up - window_start_ns) / 1e9:.1f} s" if up else f"from {down:.1f} s on"
    return f"{outage.source}: {outage.detail or 'lost'}, {span} ({_when(outage.down_ns)})"


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
) -> None:
    """How a scope's rate has moved: the stored live results, per window or averaged."""
    data = _get(
        api,
        "/api/v1/history",
        token,
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
    table = Table(title=f"{scope} {scope_id} ({industry}) — stored rate, {resolution}")
    table.add_column("time (UTC)")
    table.add_column("plant")
    if resolution == "window":
        for column in ("rate", "digitalized/key", "not sched.", "why not"):
            table.add_column(column, justify="right")
        for p in WindowHistoryOut.model_validate(data).points:
            table.add_row(
                _when(p.time_ns),
                p.plant or "",
                _pct(p.rate),
                f"{p.numerator}/{p.denominator}",
                "" if p.not_scheduled is None else str(p.not_scheduled),
                top_reasons(p.reasons or {}),
            )
    else:
        for column in ("mean", "min", "max", "pooled", "windows"):
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
) -> None:
    """The rate per hour / shift / day, each window recomputed from the raw samples."""
    plan = ReportPlanOut.model_validate(
        _get(
            api,
            "/api/v1/report/windows",
            token,
            start=parse_when(start),
            end=parse_when(end),
            window=window,
        )
    )
    windows: list[dict[str, Any]] = []
    # One request per window: the server's bound on windows per request holds, and the
    # progress bar moves as each recomputation finishes.
    with _progress(not as_json, BarColumn(), MofNCompleteColumn()) as progress:
        task = progress.add_task("recomputing windows", total=len(plan.windows))
        for w in plan.windows:
            got = _get(api, "/api/v1/report", token, start=w.start, end=w.end, window=window)
            windows.extend(got["windows"])
            progress.advance(task)
    if as_json:
        print(json.dumps({"period": plan.period, "windows": windows}, indent=2))
        return
    table = Table(title=f"Key-process digitalization rate per {plan.period} (recomputed)")
    for column in ("start (UTC)", "end", "scope", "id", "rate", "digitalized/key", "why not"):
        table.add_column(column)
    for entry in windows:
        recomputed = ReportWindowOut.model_validate(entry)
        for r in recomputed.rates:
            if r.scope != scope or r.industry != "all":
                continue
            table.add_row(
                _when(recomputed.window.start_ns),
                _when(recomputed.window.end_ns) + (" (partial)" if recomputed.partial else ""),
                r.scope,
                r.scope_id,
                _pct(r.rate),
                f"{r.numerator}/{r.denominator}",
                top_reasons(r.reasons),
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
) -> None:
    """Stored per-process statuses or per-scope rates of a range, as CSV (or JSON)."""
    if what not in ("processes", "rates"):
        raise typer.BadParameter(f"{what!r}: export 'processes' or 'rates'")
    path = f"/api/v1/export/{what}.csv"
    params = {"start": parse_when(start), "end": parse_when(end)}
    text = _download(api, path, token, params, show=output is not None or as_json)
    out = json.dumps(list(csv.DictReader(io.StringIO(text))), indent=2) + "\n" if as_json else text
    if output is None:
        sys.stdout.write(out)
    else:
        output.write_text(out)
        rows = max(0, text.count("\n") - 1)
        print(f"kpi: wrote {rows} rows to {output}", file=sys.stderr)


def _download(api: str, path: str, token: str | None, params: dict[str, str], *, show: bool) -> str:
    chunks: list[bytes] = []
    try:
        with (
            httpx.stream(
                "GET",
                f"{api.rstrip('/')}{path}",
                params=params,
                headers=_headers(token),
                timeout=300,
            ) as response,
            _progress(show, DownloadColumn()) as progress,
        ):
            if response.status_code != 200:
                response.read()
                raise _fail(path, response)
            task = progress.add_task(f"downloading {path.rsplit('/', 1)[-1]}", total=None)
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                progress.advance(task, len(chunk))
    except httpx.HTTPError as exc:
        if chunks:
            # The server cut a stream it had started: never hand on a short file as whole.
            print(f"kpi: {path}: transfer interrupted: {exc}", file=sys.stderr)
            raise typer.Exit(5) from None
        raise _unreachable(api, exc) from None
    return b"".join(chunks).decode()


def main() -> None:
    kpi_app()
