"""``plantkpi-edge``: run an edge agent for one plant of a register."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from common.endpoints import parse_overrides
from common.register_loader import RegisterError
from common.service import run_until_signal, setup_logging
from common.settings_env import warn_unknown_settings

if TYPE_CHECKING:
    from edge.sources.opcua.machines import ProposedProcess
    from edge.sources.opcua.security import ClientSecurity

app = typer.Typer(add_completion=False, help=__doc__)
log = logging.getLogger(__name__)


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
        str | None, typer.Option(help="Central broker mqtt://host:port (env EDGE_UPLINK__URL)")
    ] = None,
    edge_id: Annotated[str | None, typer.Option(help="Edge id (default edge-<plant>)")] = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option(help="Override a source's endpoint: SOURCE_ID=opc.tcp://... or modbus://..."),
    ] = None,
    broker: Annotated[
        list[str] | None, typer.Option(help="Override a device broker: SOURCE_ID=mqtt://...")
    ] = None,
    log_level: str = "INFO",
) -> None:
    """Read the plant's OPC UA and MQTT signals and forward them to the central broker."""
    from edge.agent import EdgeAgent
    from edge.buffer import BufferDirError
    from edge.health_server import HealthServerError
    from edge.settings import EdgeSettings

    setup_logging(log_level)
    # First: a misspelt variable explains the error a missing setting gives next.
    warn_unknown_settings(EdgeSettings, log)
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "register_file": register,
            "plant": plant,
            "edge_id": edge_id,
        }.items()
        if value is not None
    }
    if uplink_broker is not None:
        overrides["uplink"] = {"url": uplink_broker}
    try:
        if endpoint:
            overrides["endpoints"] = parse_overrides(endpoint, "endpoint")
        if broker:
            overrides["brokers"] = parse_overrides(broker, "broker")
        settings = EdgeSettings(**overrides)
        agent = EdgeAgent(settings)
    # A buffer directory that cannot be opened (no permission, another agent's) is set up
    # wrong, not a crash: the same one line as any other configuration error.
    except (ValidationError, RegisterError, ValueError, BufferDirError) as exc:
        print(f"plantkpi-edge: configuration error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    try:
        run_until_signal(agent.run)
    except HealthServerError as exc:
        print(f"plantkpi-edge: configuration error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


@app.command()
def browse(
    endpoint: Annotated[
        str | None,
        typer.Option(help="OPC UA server, opc.tcp://host:port (default: the source's endpoint)"),
    ] = None,
    register: Annotated[
        Path | None,
        typer.Option(
            help="Connect with the security of --source in this register (passwords and PKI "
            "folder from the EDGE_ settings, as the agent does)"
        ),
    ] = None,
    plant: Annotated[str | None, typer.Option(help="Plant of --source (with --register)")] = None,
    root: Annotated[
        str, typer.Option(help="Node id or browse path to start from (default: Objects)")
    ] = "i=85",
    depth: Annotated[int, typer.Option(min=1, help="Levels below the root")] = 3,
    max_nodes: Annotated[int, typer.Option(min=1, help="Stop after this many nodes")] = 1000,
    source: Annotated[
        str,
        typer.Option(help="Source id written into the entries (with --register: whose security)"),
    ] = "SOURCE",
    address: Annotated[
        str, typer.Option(help="Address the entries by 'node' (nsu= node id) or 'browse_path'")
    ] = "node",
    timeout: Annotated[float, typer.Option(help="Seconds per request")] = 4.0,
    machines: Annotated[
        bool,
        typer.Option(
            "--machines",
            help="Recognize standard machines (OPC 40001 Machinery, 40501 Machine Tools, 40502 "
            "CNC, PackML) and print register processes with their state and mode bound",
        ),
    ] = False,
) -> None:
    """Walk a server's address space and print register-ready signal entries (YAML)."""
    import asyncio

    from asyncua.ua.uaerrors import UaError

    from edge.sources.opcua.browse import BrowseError, browse_endpoint, register_entries
    from edge.sources.opcua.machines import register_processes

    setup_logging("WARNING")
    # asyncua logs every refused request; the learned sizes are reported by our own logger.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    if address not in ("node", "browse_path"):
        print(
            f"plantkpi-edge browse: --address {address!r}: use node or browse_path", file=sys.stderr
        )
        raise typer.Exit(2)
    try:
        security = None
        if register is not None:
            endpoint, security = _source_security(register, plant, source, endpoint)
        if endpoint is None:
            raise BrowseError("give --endpoint, or --register, --plant and --source")
        if machines:
            found = asyncio.run(_recognize(endpoint, max_nodes, timeout, security))
            sys.stdout.write(register_processes(found, source, endpoint))
            return
        outcome = asyncio.run(
            browse_endpoint(
                endpoint,
                root,
                depth=depth,
                max_nodes=max_nodes,
                timeout=timeout,
                security=security,
            )
        )
    except (BrowseError, ValidationError, RegisterError, ValueError, UaError) as exc:
        print(f"plantkpi-edge browse: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    sys.stdout.write(register_entries(outcome, source, address))
    if outcome.stopped:
        print(f"plantkpi-edge browse: stopped early: {outcome.stopped}", file=sys.stderr)


async def _recognize(
    endpoint: str, max_machines: int, timeout: float, security: ClientSecurity | None
) -> list[ProposedProcess]:
    from edge.sources.opcua.browse import browse_session
    from edge.sources.opcua.machines import recognize_machines

    async with browse_session(endpoint, timeout=timeout, security=security) as client:
        return await recognize_machines(client, max_machines=max_machines)


def _source_security(
    register: Path, plant: str | None, source: str, endpoint: str | None
) -> tuple[str, ClientSecurity]:
    """The register source's endpoint and security, built exactly as the agent builds them."""
    from common.protocols.opcua import OpcUaSource
    from common.register_loader import load_register
    from edge.settings import EdgeSettings
    from edge.sources.opcua.build import opcua_pki, opcua_source_security

    overrides: dict[str, Any] = {"register_file": register}
    if plant is not None:
        overrides["plant"] = plant
    settings = EdgeSettings(**overrides)
    loaded = load_register(register)
    config = loaded.plant(settings.plant).source(source)
    if not isinstance(config, OpcUaSource):
        raise ValueError(f"source {source} of plant {settings.plant} is not an OPC UA source")
    return opcua_source_security(config, loaded, settings, opcua_pki(settings), endpoint)


def main() -> None:
    app()
