"""``plantkpi``: tools for the people who bring a plant in (``plantkpi register --help``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from common.durations import parse_duration
from common.register_loader import RegisterError, load_register
from common.yaml_source import YamlSourceError, read_yaml
from onboarding.check import DEFAULT_WINDOW_S, warnings
from onboarding.diff import diff

app = typer.Typer(
    name="plantkpi",
    help="Tools for bringing a plant in: check and compare register files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_app = typer.Typer(help="Register files: check and compare.", no_args_is_help=True)
app.add_typer(register_app, name="register")

INVALID = 2
"""Exit status of a register that does not load (as the services' configuration errors)."""


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


def main() -> None:
    app(prog_name="plantkpi")


if __name__ == "__main__":
    main()
