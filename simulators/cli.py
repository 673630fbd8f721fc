"""``plantkpi-sim``: run the equipment simulators of a scenario, or check a scenario."""

# No `from __future__ import annotations`: typer reads the annotations at runtime.

import asyncio
import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from common.durations import parse_duration
from common.endpoints import parse_overrides
from common.protocols.mqtt import MqttSource
from common.service import run_until_signal, setup_logging
from simulators.ledger import Ledger
from simulators.machine import Behaviour
from simulators.opcua_server import NodeIdError
from simulators.runner import Simulator, SimulatorError
from simulators.scenario import LoadedScenario, ScenarioError, load_scenario, simulated_signals

app = typer.Typer(
    help="Equipment simulators (OPC UA servers, MQTT devices) driven by a register and a scenario.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("simulators")

ScenarioOption = Annotated[
    Path, typer.Option("--scenario", "-s", help="Scenario YAML (names its register).")
]
RegisterOption = Annotated[
    Path | None, typer.Option("--register", help="Use this register instead of the scenario's.")
]


@app.command()
def run(
    scenario: ScenarioOption,
    register: RegisterOption = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--endpoint",
            metavar="SOURCE_ID=URL",
            help="Serve an OPC UA, Modbus or S7 source on another endpoint, e.g. "
            "a1-opcua=opc.tcp://0.0.0.0:4840 or c1-plc=modbus://0.0.0.0:5020 "
            "(repeatable).",
        ),
    ] = None,
    broker: Annotated[
        list[str] | None,
        typer.Option(
            "--broker",
            metavar="SOURCE_ID=URL",
            help="Publish an MQTT source to another broker, e.g. a-devices=mqtt://host:1883 "
            "(repeatable).",
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="SOURCE_ID",
            help="Simulate only these sources (repeatable; default: all), e.g. to run one "
            "device as its own process that can be restarted alone.",
        ),
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Stop after this long (30s, 5m); default: until Ctrl-C.")
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option(help="Record every produced sample to this JSON-lines file.")
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="OPC UA servers keep every value they serve in DIR/<source id>.sqlite and "
            "answer HistoryRead from it (kept across restarts).",
        ),
    ] = None,
    tick: Annotated[str, typer.Option(help="How often the machines are stepped.")] = "0.1s",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ERROR.")] = "INFO",
) -> None:
    """Run the simulators until Ctrl-C, SIGTERM or --duration."""
    _setup_logging(log_level)
    loaded = _load(scenario, register)
    try:
        endpoints = parse_overrides(endpoint, "--endpoint")
        brokers = parse_overrides(broker, "--broker")
    except ValueError as exc:
        _fail(str(exc))
    seconds = _duration(duration, "--duration") if duration is not None else None
    tick_s = _duration(tick, "--tick")
    try:
        simulator = Simulator(
            loaded,
            endpoints=endpoints,
            brokers=brokers,
            sources=only,
            tick=tick_s,
            ledger=Ledger(ledger) if ledger is not None else None,
            history_dir=history,
        )
    except (SimulatorError, NodeIdError, ValueError) as exc:
        _fail(str(exc))
    try:
        run_until_signal(lambda stop: _run(simulator, seconds, stop))
    except OSError as exc:  # typically: the endpoint's port is taken
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"cannot start: {exc.strerror or exc}{where}", code=1)


@app.command()
def check(scenario: ScenarioOption, register: RegisterOption = None) -> None:
    """Validate a scenario and its register; list the machines and their behaviours."""
    loaded = _load(scenario, register)
    try:
        Simulator(loaded)  # checks node ids and payload paths too
    except (SimulatorError, NodeIdError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(_describe(loaded))


async def _run(simulator: Simulator, duration: float | None, stop: asyncio.Event) -> None:
    await simulator.start()
    machines = simulator.machines
    log.info(
        "simulating %d machines (seed %d)%s; Ctrl-C to stop",
        len(machines),
        simulator.scenario.seed,
        f" for {duration:g}s" if duration is not None else "",
    )
    await simulator.run(duration, stop)
    ledger = simulator.ledger
    log.info(
        "stopped%s",
        f"; {ledger.count} samples recorded in {ledger.path}" if ledger is not None else "",
    )


def _describe(loaded: LoadedScenario) -> str:
    register = loaded.register
    out = [
        f"scenario {loaded.path} (seed {loaded.seed})",
        f"register {register.path} (version {register.version})",
        "sources:",
    ]
    for plant in register.model.plants:
        for source in plant.sources:
            where = source.broker if isinstance(source, MqttSource) else ""
            where = str(getattr(source, "endpoint", where))
            out.append(f"  {plant.id}/{source.id}: {source.kind} {where}")
    out.append("machines:")
    for plant in register.model.plants:
        for line in plant.lines:
            for process in line.processes:
                simulated = simulated_signals(process)
                name = f"{plant.id}/{line.id}/{process.id}"
                if not simulated:
                    out.append(f"  {name}: not simulated (no signal bound to OPC UA or MQTT)")
                    continue
                spec = loaded.model.machines.get(process.id)
                behaviour = spec.behaviour if spec is not None else Behaviour.HEALTHY
                details = []
                if spec is not None:
                    if spec.after is not None:
                        details.append(f"after {spec.after:g}s")
                    if spec.period is not None:
                        details.append(f"period {spec.period:g}s")
                    if spec.duty is not None:
                        details.append(f"duty {spec.duty:g}")
                    if spec.signals is not None:
                        details.append(f"signals {', '.join(spec.signals)}")
                sources = sorted(
                    {s.source for s in process.signals if s.id in simulated if s.source}
                )
                out.append(
                    f"  {name}: {behaviour.value}{' ' + ' '.join(details) if details else ''}"
                    f" ({len(simulated)} signal{'s' if len(simulated) != 1 else ''}"
                    f" via {', '.join(sources)})"
                )
    expected = loaded.model.expected
    if expected.processes:
        out.append("expected:")
        for pid, outcome in expected.processes.items():
            reasons = f" {', '.join(outcome.reasons)}" if outcome.reasons else ""
            may = f" (may also: {', '.join(outcome.may_also)})" if outcome.may_also else ""
            out.append(f"  {pid}: {outcome.status.value}{reasons}{may}")
    return "\n".join(out)


def _load(scenario: Path, register: Path | None) -> LoadedScenario:
    try:
        return load_scenario(scenario, register)
    except ScenarioError as exc:
        _fail(str(exc))


def _duration(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        _fail(f"{option}: {exc}")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"plantkpi-sim: error: {message}", err=True)
    raise typer.Exit(code)


def _setup_logging(level: str) -> None:
    if not isinstance(logging.getLevelName(level.upper()), int):
        _fail(f"--log-level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    setup_logging(level)


def main() -> None:
    app()
