"""``plantkpi-collector``: the central collector service (``run``) and its broker ACL
(``acl``). The ``kpi`` command for plant managers is ``collector/kpi_cli.py``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from common.register_loader import RegisterError
from common.service import run_until_signal, setup_logging
from common.settings_env import warn_unknown_settings

log = logging.getLogger(__name__)

service_app = typer.Typer(add_completion=False, help="The central collector service.")


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
    from common.garbage import tune_for_service

    setup_logging(log_level)
    tune_for_service()
    # First: a misspelt variable explains the error a missing setting gives next.
    warn_unknown_settings(CollectorSettings, log)
    overrides: dict[str, Any] = {}
    if register:
        overrides["registers"] = register
    if broker:
        overrides["broker"] = {"url": broker}
    try:
        settings = CollectorSettings(**overrides)
        collector = Collector(settings)
    except (ValidationError, RegisterError, ValueError) as exc:
        print(f"plantkpi-collector: configuration error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    run_until_signal(collector.run)


@service_app.command()
def acl(
    register: Annotated[list[Path], typer.Option(help="Register YAML, repeatable")],
    edge_user_pattern: Annotated[
        str, typer.Option(help="Broker user of each edge: {enterprise}, {plant}, {edge}")
    ] = "{edge}",
    edge_id_pattern: Annotated[
        str, typer.Option(help="Edge id of each plant (EDGE_EDGE_ID): {enterprise}, {plant}")
    ] = "edge-{plant}",
    collector_user: Annotated[
        list[str] | None,
        typer.Option(
            help="Broker user of a collector replica, repeatable (default plantkpi-collector)"
        ),
    ] = None,
    prefix: Annotated[str, typer.Option(help="Uplink topic prefix")] = "plantkpi",
) -> None:
    """Print a least-privilege mosquitto ACL for the uplink: each edge may publish only its
    plant's topics, the collector may read them and publish dead letters."""
    from collector.acl import AclOptions, generate_acl
    from common.register_loader import load_register

    try:
        text = generate_acl(
            [load_register(path) for path in register],
            AclOptions(
                prefix,
                edge_id_pattern,
                edge_user_pattern,
                tuple(collector_user or ["plantkpi-collector"]),
            ),
        )
    except (RegisterError, ValueError) as exc:
        print(f"plantkpi-collector acl: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    sys.stdout.write(text)


def main() -> None:
    service_app()
