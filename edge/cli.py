"""``plantkpi-edge``: run an edge agent for one plant of a register."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from common.endpoints import parse_overrides
from common.register_loader import RegisterError
from common.service import run_until_signal, setup_logging

app = typer.Typer(add_completion=False, help=__doc__)


@app.callback()
def _group() -> None:
    """Keep ``run`` a named subcommand (more will follow)."""


@app.command()
def run(
    register: Annotated[
        Path | None, typer.Option(help="Register YAML (env EDGE_REGISTER_FILE)")
    ] = None,
    plant: Annotated[str | None, typer.Option(help="Plant id to serve (env EDGE_PLANT)")] = None,
    uplink_broker: Annotated[
        str | None, typer.Option(help="Central broker mqtt://host:port")
    ] = None,
    edge_id: Annotated[str | None, typer.Option(help="Edge id (default edge-<plant>)")] = None,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="Override an OPC UA endpoint: SOURCE_ID=opc.tcp://...")
    ] = None,
    broker: Annotated[
        list[str] | None, typer.Option(help="Override a device broker: SOURCE_ID=mqtt://...")
    ] = None,
    log_level: str = "INFO",
) -> None:
    """Read the plant's OPC UA and MQTT signals and forward them to the central broker."""
    from edge.agent import EdgeAgent
    from edge.settings import EdgeSettings

    setup_logging(log_level)
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "register_file": register,
            "plant": plant,
            "uplink_broker": uplink_broker,
            "edge_id": edge_id,
        }.items()
        if value is not None
    }
    try:
        if endpoint:
            overrides["endpoints"] = parse_overrides(endpoint, "endpoint")
        if broker:
            overrides["brokers"] = parse_overrides(broker, "broker")
        settings = EdgeSettings(**overrides)
        agent = EdgeAgent(settings)
    except (ValidationError, RegisterError, ValueError) as exc:
        print(f"plantkpi-edge: configuration error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    run_until_signal(agent.run)


def main() -> None:
    app()
