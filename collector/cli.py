"""Command line: ``plantkpi-collector run`` (the service) and ``kpi`` (for plant managers)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from common.register_loader import RegisterError
from common.service import run_until_signal, setup_logging

service_app = typer.Typer(add_completion=False, help="The central collector service.")
kpi_app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="Key-process digitalization rate: current table, processes and reasons.",
)

ApiOption = Annotated[str, typer.Option(envvar="KPI_API", help="Collector API base URL")]
DEFAULT_API = "http://127.0.0.1:8080"


@service_app.callback()
def _group() -> None:
    """Keep ``run`` a named subcommand (more will follow)."""


@service_app.command()
def run(
    register: Annotated[
        list[Path] | None, typer.Option(help="Register YAML, repeatable (env COLLECTOR_REGISTERS)")
    ] = None,
    broker: Annotated[str | None, typer.Option(help="Central broker mqtt://host:port")] = None,
    log_level: str = "INFO",
) -> None:
    """Consume edge uplinks, write InfluxDB, evaluate the KPI, serve the API."""
    from collector.service import Collector
    from collector.settings import CollectorSettings

    setup_logging(log_level)
    overrides: dict[str, Any] = {}
    if register:
        overrides["registers"] = register
    if broker:
        overrides["broker"] = broker
    try:
        settings = CollectorSettings(**overrides)
        collector = Collector(settings)
    except (ValidationError, RegisterError, ValueError) as exc:
        print(f"plantkpi-collector: configuration error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    run_until_signal(collector.run)


def _get(api: str, path: str, **params: Any) -> Any:
    try:
        response = httpx.get(f"{api.rstrip('/')}{path}", params=params, timeout=30)
    except httpx.HTTPError as exc:
        print(f"kpi: cannot reach the collector API at {api}: {exc}", file=sys.stderr)
        raise typer.Exit(3) from None
    if response.status_code != 200:
        detail = response.json().get("detail", response.text) if response.content else ""
        print(f"kpi: {path}: {response.status_code} {detail}", file=sys.stderr)
        raise typer.Exit(4)
    return response.json()


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def render_kpi(console: Console, kpi: dict[str, Any], processes: dict[str, Any]) -> None:
    window = kpi["window"]
    seconds = (window["end_ns"] - window["start_ns"]) / 1e9
    end = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(window["end_ns"] / 1e9))
    table = Table(title=f"Key-process digitalization rate — window {seconds:.0f}s ending {end}")
    table.add_column("scope")
    table.add_column("id")
    table.add_column("rate", justify="right")
    table.add_column("digitalized/key", justify="right")
    table.add_column("not sched.", justify="right")
    table.add_column("why not (processes)")
    order = {"region_official": 0, "region_pooled": 1, "enterprise": 2, "plant": 3, "line": 4}
    rows = sorted(
        (r for r in kpi["rates"] if r["industry"] == "all"),
        key=lambda r: (order.get(r["scope"], 9), r["scope_id"]),
    )
    for r in rows:
        reasons = sorted(r["reasons"].items(), key=lambda kv: -kv[1])[:3]
        table.add_row(
            r["scope"].replace("region_", "region "),
            r["scope_id"],
            _pct(r["rate"]),
            f"{r['numerator']}/{r['denominator']}",
            str(r["not_scheduled"]),
            " ".join(f"{code}×{n}" for code, n in reasons),
        )
    console.print(table)
    failing = Table(title="Key processes that do not count, and why")
    for column in ("process", "plant/line", "status", "reasons", "worst coverage"):
        failing.add_column(column)
    for p in processes["processes"]:
        if p["status"] == "DIGITALIZED":
            continue
        coverage = min((s["good"] for s in p["signals"]), default=None)
        failing.add_row(
            p["process_id"],
            f"{p['plant_id']}/{p['line_id']}",
            p["status"],
            ", ".join(p["reasons"]) or "—",
            "—" if coverage is None else f"{coverage:.0%}",
        )
    console.print(failing)


@kpi_app.callback()
def kpi_current(
    ctx: typer.Context,
    api: ApiOption = DEFAULT_API,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print the current rates and the processes that do not count (default command)."""
    if ctx.invoked_subcommand is not None:
        return
    kpi = _get(api, "/api/v1/kpi")
    processes = _get(api, "/api/v1/processes")
    if as_json:
        print(json.dumps({"kpi": kpi, "processes": processes["processes"]}, indent=2))
        return
    render_kpi(Console(), kpi, processes)


@kpi_app.command()
def watch(
    api: ApiOption = DEFAULT_API,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes")] = 5.0,
) -> None:
    """Refresh the KPI table until Ctrl-C."""
    console = Console()
    try:
        while True:
            try:
                kpi = httpx.get(f"{api}/api/v1/kpi", timeout=10)
                processes = httpx.get(f"{api}/api/v1/processes", timeout=10)
            except httpx.HTTPError as exc:
                console.print(f"[yellow]waiting for the collector API at {api}: {exc}[/]")
                time.sleep(interval)
                continue
            if kpi.status_code != 200:
                console.print(f"[yellow]{kpi.json().get('detail', kpi.text)}[/]")
            else:
                console.clear()
                render_kpi(console, kpi.json(), processes.json())
                console.print(f"API: {api}  (OpenAPI: {api}/docs) — Ctrl-C to stop")
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


@kpi_app.command("process")
def process_detail(
    process_id: str,
    api: ApiOption = DEFAULT_API,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Why one process does (not) count: every failing rule and the evidence per signal."""
    p = _get(api, f"/api/v1/processes/{process_id}")
    if as_json:
        print(json.dumps(p, indent=2))
        return
    console = Console()
    console.print(
        f"[bold]{p['process_id']}[/] ({p['plant_id']}/{p['line_id']}, {p['industry']}): "
        f"[bold]{p['status']}[/] {', '.join(p['reasons'])}"
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
    for s in p["signals"]:
        table.add_row(
            s["signal_id"],
            s["role"],
            f"{s['good']:.0%}",
            f"{s['unknown']:.0%}",
            f"{s['bad']:.0%}",
            f"{s['uncertain']:.0%}",
            f"{s['overridden']:.0%}",
            f"{s['longest_gap_s']:.0f}s",
            str(s["samples"]),
            ", ".join(s["reasons"]),
        )
    console.print(table)
    if p.get("manual_share") is not None:
        console.print(f"manual mode share: {p['manual_share']:.0%}")
    console.print(f"register {p['register_version']}, thresholds {p['thresholds']}")


def main() -> None:
    service_app()


def kpi_main() -> None:
    kpi_app()
