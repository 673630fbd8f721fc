"""``plantkpi``: tools for the people who bring a plant in (``plantkpi register --help``)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml

from common.durations import parse_duration
from common.register_loader import RegisterError, load_register
from common.yaml_source import YamlSourceError, read_yaml
from onboarding.check import DEFAULT_WINDOW_S, warnings
from onboarding.diff import diff
from onboarding.ledger import export_ledger, import_ledger
from onboarding.sheets import SheetError, read_rows, write_rows

app = typer.Typer(
    name="plantkpi",
    help="Tools for bringing a plant in: check and compare register files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_app = typer.Typer(
    help="Register files: check, compare, and import from / export to an equipment ledger.",
    no_args_is_help=True,
)
app.add_typer(register_app, name="register")

INVALID = 2
"""Exit status of a register that does not load (as the services' configuration errors)."""


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` whole or not at all: a full disk or a failed write leaves the file as
    it was (written beside it, then renamed over it)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        _fail(f"cannot write {path}: {exc.strerror or exc}; it is as it was", code=1)


def _fail(message: str, code: int = INVALID) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@register_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The register YAML.")],
    window: Annotated[
        str, typer.Option(help="The collector's KPI window (COLLECTOR_KPI__WINDOW).")
    ] = f"{DEFAULT_WINDOW_S:g}s",
    strict: Annotated[bool, typer.Option(help="Exit 1 when there are warnings.")] = False,
) -> None:
    """Every error of a register at once (exit 2), then what loads but will not measure what
    it should (warnings)."""
    try:
        window_s = parse_duration(window)
    except ValueError as exc:
        _fail(f"--window: {exc}")
    try:
        register = load_register(file)
        document = read_yaml(file, "register")
    except (RegisterError, YamlSourceError) as exc:
        _fail(str(exc))
    found = warnings(register, window_s)
    model = register.model
    processes = [p for plant in model.plants for line in plant.lines for p in line.processes]
    typer.echo(
        f"{file}: loads: {len(model.plants)} plants, {len(processes)} processes "
        f"({sum(p.key for p in processes)} key), {len(register.signals())} signals; "
        f"{len(found)} warnings"
    )
    for finding in found:
        typer.echo(f"warning: {finding.render(document)}")
    if found and strict:
        raise typer.Exit(1)


@register_app.command("diff")
def compare(
    old: Annotated[Path, typer.Argument(help="The register in force.")],
    new: Annotated[Path, typer.Argument(help="The register to deploy.")],
) -> None:
    """What deploying NEW instead of OLD changes: processes added, removed, re-keyed or moved,
    signals changed, and each scope's denominator (its key processes)."""
    try:
        before, after = load_register(old), load_register(new)
    except RegisterError as exc:
        _fail(str(exc))
    found = diff(before, after)
    if found.empty:
        typer.echo(f"{old} → {new}: no process or signal changed")
        return
    for line in found.lines():
        typer.echo(line)


@register_app.command("import")
def import_(
    ledger: Annotated[Path, typer.Argument(help="The ledger: .xlsx or .csv (UTF-8 or GBK).")],
    base: Annotated[
        Path,
        typer.Option(
            help="A register with the enterprise, the equipment classes and each plant's "
            "sources (its plants' lines are replaced by the ledger's)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The register file to write.")],
    sheet: Annotated[
        str | None, typer.Option(help="The workbook's sheet (default the first).")
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="Of downtime times written without one (China: +08:00).")
    ] = "+08:00",
) -> None:
    """An equipment ledger, one row per process, into a register file that loads; every bad
    row is reported with its row and column, all at once (exit 2, nothing written)."""
    try:
        zone = dt.datetime.fromisoformat(f"2000-01-01T00:00:00{timezone}").tzinfo
    except ValueError:
        _fail(f"--timezone: {timezone!r} is not an offset such as +08:00")
    assert zone is not None
    try:
        rows = read_rows(ledger, sheet)
        base_data = read_yaml(base, "register").data
    except (SheetError, YamlSourceError) as exc:
        _fail(str(exc))
    if not isinstance(base_data, dict):
        _fail(f"{base}: not a register (a mapping with enterprise and plants)")
    result = import_ledger(rows, base_data, ledger.name, zone)
    if result.problems:
        _fail(
            f"{ledger}: {len(result.problems)} problems, nothing written\n  "
            + "\n  ".join(result.problems)
        )
    text = yaml.safe_dump(result.document, sort_keys=False, allow_unicode=True)
    _replace(out, lambda path: path.write_text(text, encoding="utf-8"))
    processes = sum(
        len(line.get("processes", []))
        for plant in result.document.get("plants", [])
        for line in plant.get("lines", []) or []
    )
    typer.echo(f"{out}: {processes} processes from {len(rows)} rows of {ledger}")


@register_app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="The register YAML.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The ledger to write: .xlsx or .csv.")],
    chinese: Annotated[bool, typer.Option(help="Chinese column headers.")] = True,
) -> None:
    """A register's processes as an equipment ledger, one row per process (classes and
    parameters as written), to keep the ledger as the source of truth."""
    try:
        load_register(file)  # only a register that loads is exported
        data = read_yaml(file, "register").data
    except (RegisterError, YamlSourceError) as exc:
        _fail(str(exc))
    headers, rows, notes = export_ledger(data, chinese)
    try:
        _replace(out, lambda path: write_rows(path, headers, rows, out.suffix))
    except SheetError as exc:
        _fail(str(exc))
    for note in notes:
        typer.echo(f"note: {note}")
    typer.echo(f"{out}: {len(rows)} rows")


def main() -> None:
    app(prog_name="plantkpi")


if __name__ == "__main__":
    main()
