"""A whole simulated plant as real processes: simulators, one edge agent per plant, collector.

Used by the end-to-end tests and by the demo (``scripts/demo.py``), so the demo runs exactly
what the tests check. Every component is started through its own command line, as a user
would, with OPC UA ports picked free and passed as endpoint overrides.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from common.protocols.mqtt import MqttSource
from common.register_loader import LoadedRegister, load_register
from harness.servers import free_port
from simulators.equipment import serves_endpoint

LOOPBACK = "127.0.0.1"


@dataclass
class Component:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class PlantStack:
    """Start and stop the project's own processes around already-running servers."""

    register_path: Path
    scenario_path: Path
    broker_url: str
    influx_env: dict[str, str]
    workdir: Path
    register: LoadedRegister = field(init=False)
    endpoints: dict[str, str] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)
    api_url: str = ""
    edge_health_urls: dict[str, str] = field(default_factory=dict)
    """Each plant's edge agent's local health endpoint (``…/health``), by plant id."""
    device_broker_url: str = ""
    """The MQTT devices' broker, when it is not the central one (``broker_url``)."""

    def __post_init__(self) -> None:
        self.register = load_register(self.register_path)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for plant in self.register.model.plants:
            for source in plant.sources:
                if serves_endpoint(source.kind):  # the same scheme, on a free loopback port
                    scheme = urlsplit(str(getattr(source, "endpoint", ""))).scheme
                    self.endpoints[source.id] = f"{scheme}://{LOOPBACK}:{free_port()}"

    def _overrides(self, plant_id: str | None = None) -> list[str]:
        args: list[str] = []
        for plant in self.register.model.plants:
            if plant_id is not None and plant.id != plant_id:
                continue
            for source in plant.sources:
                if source.id in self.endpoints:
                    args += ["--endpoint", f"{source.id}={self.endpoints[source.id]}"]
                elif isinstance(source, MqttSource):
                    args += ["--broker", f"{source.id}={self.device_broker_url or self.broker_url}"]
        return args

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Component:
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("ab")
        # A component outlives nothing: if the test or the demo dies (even by SIGKILL), it
        # gets SIGTERM and stops cleanly, instead of holding its port as an orphan.
        setpriv = shutil.which("setpriv")
        launcher = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        proc = subprocess.Popen(
            [*launcher, sys.executable, *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        log_file.close()
        component = Component(name, proc, log_path)
        self.components.append(component)
        return component

    def start_simulators(
        self,
        *,
        duration: str | None = None,
        ledger: Path | None = None,
        only: list[str] | None = None,
        name: str = "simulators",
    ) -> Component:
        """The scenario's equipment as one process ``name``; ``only`` these source ids (a
        device that is restarted alone runs as a process of its own)."""
        args = ["-m", "simulators", "run", "--scenario", str(self.scenario_path)]
        args += ["--register", str(self.register_path), *self._overrides()]
        for source_id in only or []:
            args += ["--only", source_id]
        if duration:
            args += ["--duration", duration]
        if ledger:
            args += ["--ledger", str(ledger)]
        return self._spawn(name, args)

    def start_edges(self, env: dict[str, str] | None = None) -> list[Component]:
        """One edge agent per plant; each keeps its buffer folder and health port when
        started again (after a kill) under the same name."""
        started = []
        for plant in self.register.model.plants:
            args = ["-m", "edge", "run", "--register", str(self.register_path), "--plant", plant.id]
            args += ["--uplink-broker", self.broker_url, *self._overrides(plant.id)]
            # Each stack's edge keeps its store-and-forward buffer in the stack's workdir.
            known = self.edge_health_urls.get(plant.id)
            health_port = int(known.rsplit(":", 1)[1].split("/")[0]) if known else free_port()
            self.edge_health_urls[plant.id] = f"http://{LOOPBACK}:{health_port}/health"
            edge_env = {
                "EDGE_STATUS_INTERVAL": "5s",
                "EDGE_BUFFER_DIR": str(self.workdir / f"buffer-{plant.id}"),
                "EDGE_HEALTH_PORT": str(health_port),
                **(env or {}),
            }
            started.append(self._spawn(f"edge-{plant.id}", args, edge_env))
        return started

    def kill(self, name: str) -> None:
        """SIGKILL a component (a crash: no goodbye, no flush) and forget it."""
        for component in list(self.components):
            if component.name == name and component.proc.poll() is None:
                component.proc.kill()
                component.proc.wait()
                self.components.remove(component)

    def start_collector(
        self,
        *,
        window: str = "60s",
        period: str = "5s",
        lag: str = "3s",
        api_port: int = 0,
        extra_env: dict[str, str] | None = None,
        name: str = "collector",
    ) -> Component:
        port = api_port or free_port()
        self.api_url = f"http://{LOOPBACK}:{port}"
        env = {
            "COLLECTOR_REGISTERS": f'["{self.register_path}"]',
            "COLLECTOR_BROKER__URL": self.broker_url,
            "COLLECTOR_BROKER__CLIENT_ID": f"plantkpi-collector-{port}",
            "COLLECTOR_KPI__WINDOW": window,
            "COLLECTOR_KPI__PERIOD": period,
            "COLLECTOR_KPI__LAG": lag,
            "COLLECTOR_API__PORT": str(port),
            **self.influx_env,
            **(extra_env or {}),
        }
        return self._spawn(name, ["-m", "collector", "run"], env)

    def wait_for_simulators(self, timeout: float = 60.0) -> None:
        """Until every OPC UA simulator accepts connections. Edges started before that
        reconnect with a growing delay: on a slow machine the first minute of a run would
        then be a source outage, not the scenario."""
        deadline = time.monotonic() + timeout
        waiting: dict[str, tuple[str, int]] = {}
        for source_id, url in self.endpoints.items():
            parts = urlsplit(url)
            waiting[source_id] = (parts.hostname or LOOPBACK, parts.port or 4840)
        while waiting:
            self.check_alive()
            for source_id, address in list(waiting.items()):
                with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.5):
                    del waiting[source_id]
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"simulators not listening: {waiting}\n{self.logs()}")
            time.sleep(0.2)

    def wait_for_api(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"collector API did not come up at {self.api_url}\n{self.logs()}")

    def check_alive(self) -> None:
        """Raise with the logs if a component died (simulators with --duration may exit 0)."""
        for component in self.components:
            code = component.proc.poll()
            if code not in (None, 0):
                raise RuntimeError(f"{component.name} exited with {code}\n{component.log_tail()}")

    def logs(self) -> str:
        return "\n".join(f"===== {c.name}\n{c.log_tail()}" for c in self.components)

    def stop(self, name: str, timeout: float = 15.0) -> None:
        for component in self.components:
            if component.name == name:
                _terminate(component, timeout)

    def stop_all(self, timeout: float = 15.0) -> None:
        # Reverse start order: the collector drains last batches after edges said goodbye.
        for component in reversed(self.components):
            _terminate(component, timeout)


def _terminate(component: Component, timeout: float) -> None:
    proc = component.proc
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
