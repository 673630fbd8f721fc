"""Shared by the OPC UA source tests: registers and real servers to restart (the sink and the
waits every source test uses: ``tests/edge/source_kit.py``).

The sources under test talk to real OPC UA servers (the asyncua simulator in-process or as
a subprocess, node-opcua as a subprocess); only the sink, the far end of the source, records.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from common.register_loader import load_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources import StoredMarks
from edge.sources.opcua.source import OpcUaSource
from tests import registers

INTEROP = Path(__file__).parents[2] / "interop"
SIM_URI = "urn:test:edge"
EXTRA_URI = "urn:aaa:first"
"""Sorts before SIM_URI: a simulator whose register also names it registers it first, so
SIM_URI's namespace index shifts by one."""


def machines_document(
    machines: int,
    *,
    uri: str = SIM_URI,
    source: dict[str, Any] | None = None,
    extra: str = "",
) -> dict[str, Any]:
    """``machines`` machines of two 100 ms signals each (state on change, speed periodic),
    served by source ``s1`` at ``nsu=<uri>;s=m<i>.<signal>``. ``source`` adds keys to the
    source (``{"mode": "poll"}``), ``extra`` a machine in that other namespace."""
    processes = [
        registers.process(
            f"m{i}",
            [
                registers.sig(
                    "state", "state", "s1", "on_change", "100ms", node=f"nsu={uri};s=m{i}.state"
                ),
                registers.sig(
                    "speed", source="s1", interval="100ms", node=f"nsu={uri};s=m{i}.speed"
                ),
            ],
            name=f"Machine {i}",
        )
        for i in range(machines)
    ]
    if extra:
        state = registers.sig(
            "state", "state", "s1", "on_change", "100ms", node=f"nsu={extra};s=extra.state"
        )
        processes.append(
            registers.process("extra", [state], key=False, name="In another namespace")
        )
    s1 = registers.opcua_source("s1", publishing_interval="100ms", **(source or {}))
    plant = registers.plant("p1", [s1], [registers.line("l1", processes)])
    return registers.document([plant], enterprise="test-ent", region="Test", version=None)


def register_yaml(
    machines: int,
    *,
    uri: str = SIM_URI,
    source: dict[str, Any] | None = None,
    extra: str = "",
) -> str:
    """:func:`machines_document` as the register file's text."""
    return registers.to_yaml(machines_document(machines, uri=uri, source=source, extra=extra))


INTEROP_URI = "urn:plantkpi:interop"
INTEROP_SIGNALS = {"state": "State", "force": "Force", "count": "Count", "level": "Level"}


def interop_document(
    presses: int = 1,
    *,
    source: dict[str, Any] | None = None,
    extras: dict[tuple[int, str], dict[str, Any]] | None = None,
    signals: tuple[str, ...] = ("state", "force", "count"),
) -> dict[str, Any]:
    """A register for tests/interop/server.js: machines press<i> reading Press<i>.<Name>;
    ``source`` adds keys to source ``s1`` (``security``, ``mode``), ``extras`` to one signal
    (``{(1, "count"): {"deadband": {...}}}``)."""
    extras = extras or {}
    processes = [
        registers.process(
            f"press{p}",
            [
                registers.sig(
                    sid,
                    "state" if sid == "state" else "parameter",
                    "s1",
                    interval="100ms",
                    node=f"nsu={INTEROP_URI};s=Press{p}.{INTEROP_SIGNALS[sid]}",
                    **extras.get((p, sid), {}),
                )
                for sid in signals
            ],
            name=f"Press {p}",
        )
        for p in range(1, presses + 1)
    ]
    s1 = registers.opcua_source("s1", publishing_interval="200ms", **(source or {}))
    plant = registers.plant("p1", [s1], [registers.line("l1", processes)])
    return registers.document([plant], enterprise="test-ent", region="Test", version=None)


def interop_register(
    presses: int = 1,
    *,
    source: dict[str, Any] | None = None,
    extras: dict[tuple[int, str], dict[str, Any]] | None = None,
    signals: tuple[str, ...] = ("state", "force", "count"),
) -> str:
    """:func:`interop_document` as the register file's text."""
    doc = interop_document(presses, source=source, extras=extras, signals=signals)
    return registers.to_yaml(doc)


SCENARIO = "seed: 7\nregister: register.yaml\n"


def write_files(folder: Path, register: str, scenario: str = SCENARIO) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "register.yaml").write_text(register)
    (folder / "scenario.yaml").write_text(scenario)
    return folder / "register.yaml", folder / "scenario.yaml"


def edge_source(
    register: Path, endpoint: str, marks: StoredMarks | None = None, **settings: Any
) -> OpcUaSource:
    """The register's source ``s1`` as the edge agent builds it, with fast test timings
    (``marks``: where its backfill starts, as the agent's buffer keeps them)."""
    values: dict[str, Any] = {
        "opcua_timeout": 1.0,
        "opcua_watchdog": 1.0,
        "reconnect_max_delay": 0.5,
    }
    values.update(settings)
    config = EdgeSettings(register_file=register, plant="p1", endpoints={"s1": endpoint}, **values)
    (source,) = build_sources(load_register(register), config, marks)
    assert isinstance(source, OpcUaSource)
    return source


class NodeOpcUaServer:
    """tests/interop/server.js in a subprocess, restartable on the same port."""

    def __init__(self, port: int, **env: str) -> None:
        self.port = port
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    async def start(self, **env: str) -> None:
        if not (INTEROP / "node_modules" / "node-opcua").is_dir():
            raise AssertionError(
                "node-opcua is not installed: run bash scripts/bootstrap.sh "
                "(npm install in tests/interop)"
            )
        self.proc = await asyncio.create_subprocess_exec(
            "node",
            str(INTEROP / "server.js"),
            str(self.port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **self.env, **env},
        )
        assert self.proc.stdout is not None
        output = []
        async with asyncio.timeout(60):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                output.append(line)
                if line.startswith("READY"):
                    break
                if not line:
                    await self.proc.wait()
                    raise AssertionError(
                        f"node-opcua server exited with {self.proc.returncode}: {''.join(output)}"
                    )
        # Keep reading its output so a full pipe never blocks the server.
        self._drain = asyncio.create_task(self._read_rest())

    async def _read_rest(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass

    async def kill(self) -> None:
        """SIGKILL: the server vanishes the way a crashed or powered-off device does."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        self.proc = None


class SimulatorProcess:
    """``python -m simulators run`` serving source s1 on ``endpoint``: a real process to
    SIGSTOP (hung server: socket open, no answers) and SIGCONT."""

    def __init__(self, scenario: Path, endpoint: str) -> None:
        self.scenario = scenario
        self.endpoint = endpoint
        self.proc: asyncio.subprocess.Process | None = None
        self.output: list[str] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulators",
            "run",
            "--scenario",
            str(self.scenario),
            "--endpoint",
            f"s1={self.endpoint}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=Path(__file__).parents[3],
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                self.output.append(line)
                if "OPC UA source s1:" in line:
                    break
                if not line:
                    await self.proc.wait()
                    raise AssertionError(f"simulator exited: {''.join(self.output)}")
        self._drain = asyncio.create_task(self._read_rest())

    async def _read_rest(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.output.append(line.decode())

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
