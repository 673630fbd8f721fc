"""Real mosquitto, influxd and v2-proxy servers as subprocesses, for tests and the demo.

Each server listens on free loopback ports, keeps its data and logs in its own folder
(a fresh temp folder unless one is given) and can be stopped (SIGTERM), killed (SIGKILL)
and restarted on the same ports with the same data, which is what fault-injection tests
need. Nothing here imports pytest, so the demo script can use it too.

Every operation has a blocking form (``start()``, ``stop()``, ``kill()``, ``restart()``)
for fixtures and scripts, and an ``*_async`` form for use inside a running event loop
(e.g. restarting the broker under a live edge agent without freezing the loop).

Servers are started through ``setpriv --pdeathsig KILL`` where available, so they die
with the thread that started them even if the test process is killed; an ``atexit`` hook
stops whatever is still running at a normal exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
_POLL_INTERVAL = 0.05
_ADDRESS_IN_USE = re.compile(r"address already in use", re.IGNORECASE)
_START_ATTEMPTS = 3


class ServerError(RuntimeError):
    """A server could not be started or stopped; the message includes its log tail."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the OS picks it; races are retried at start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path.name} is empty)"


def _launcher() -> list[str]:
    # PDEATHSIG makes the server die with us even on SIGKILL, so crashed test runs do not
    # leave brokers holding ports; setpriv execs the server, so the pid is the server's.
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


_running: weakref.WeakSet[ManagedServer] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.kill()


class ManagedServer(ABC):
    """One server process with its own data folder and fixed ports once started."""

    name = "server"

    def __init__(self, data_dir: str | Path | None = None, *, startup_timeout: float = 20.0):
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix=f"plantkpi-{self.name}-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports_fixed = False
        self.output_path = self.data_dir / f"{self.name}.out"
        """Where the process's stdout and stderr go."""

    # -- what a subclass provides ---------------------------------------------------------

    @abstractmethod
    def _allocate_ports(self) -> None:
        """Pick free ports (called before the first start and again if one was taken)."""

    @abstractmethod
    def _prepare(self) -> list[str]:
        """Write the config file and return the command line."""

    @abstractmethod
    def _probe(self) -> bool:
        """True when the server answers (blocking, short timeout)."""

    @abstractmethod
    async def _probe_async(self) -> bool:
        """True when the server answers."""

    @property
    @abstractmethod
    def url(self) -> str: ...

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _log_paths(self) -> list[Path]:
        return [self.output_path]

    # -- state ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {path}\n{_tail(path, lines)}" for path in self._log_paths())

    # -- blocking API ---------------------------------------------------------------------

    def start(self) -> None:
        """Start and wait until the server answers; raises ServerError with its log tail."""
        for attempt in range(_START_ATTEMPTS):
            self._spawn()
            deadline = time.monotonic() + self.startup_timeout
            while True:
                state = self._check_started()
                if state == "ready":
                    self._ports_fixed = True
                    return
                if state == "died" or time.monotonic() > deadline:
                    break
                time.sleep(_POLL_INTERVAL)
            if not self._retry_after_failure(attempt, state):
                raise self._start_error(state)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``): servers flush their data on SIGTERM."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to flush."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._forget()

    def restart(self, *, hard: bool = False) -> None:
        """Stop (or kill, if ``hard``) and start again on the same ports with the same data."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its data folder if this object created it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- async API ------------------------------------------------------------------------

    async def start_async(self) -> None:
        for attempt in range(_START_ATTEMPTS):
            self._spawn()
            deadline = time.monotonic() + self.startup_timeout
            while True:
                state = await self._check_started_async()
                if state == "ready":
                    self._ports_fixed = True
                    return
                if state == "died" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(_POLL_INTERVAL)
            if not self._retry_after_failure(attempt, state):
                raise self._start_error(state)

    async def stop_async(self, timeout: float = 15.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            if not await _wait_exit(proc, timeout):
                proc.kill()
        await _wait_exit(proc, None)
        self._forget()

    async def kill_async(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        await _wait_exit(proc, None)
        self._forget()

    async def restart_async(self, *, hard: bool = False) -> None:
        if hard:
            await self.kill_async()
        else:
            await self.stop_async()
        await self.start_async()

    # -- context managers -----------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await self.start_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _spawn(self) -> None:
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        if not self._ports_fixed:
            self._allocate_ports()
        command = self._prepare()
        if shutil.which(command[0]) is None:
            raise ServerError(
                f"cannot start {self.name}: {command[0]} not found or not executable "
                "(run scripts/install-system-deps.sh as root)"
            )
        with self.output_path.open("ab") as out:
            try:
                self._proc = subprocess.Popen(
                    [*_launcher(), *command],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    env=self._env(),
                    # Own session: a Ctrl-C in the terminal reaches our code, which then
                    # stops the servers in order, instead of killing them all at once.
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise ServerError(
                    f"cannot start {self.name}: {exc.filename} not found "
                    "(run scripts/install-system-deps.sh as root)"
                ) from exc
        _running.add(self)

    def _check_started(self) -> str:
        """'died', 'ready' (ours and answering) or 'alive' (not answering yet)."""
        if not self.running:
            return "died"
        if self._ready_in_logs() and self._probe() and self.running:
            return "ready"
        return "alive"

    async def _check_started_async(self) -> str:
        if not self.running:
            return "died"
        if self._ready_in_logs() and await self._probe_async() and self.running:
            return "ready"
        return "alive"

    def _ready_in_logs(self) -> bool:
        """Whether the log says the server finished starting (subclasses that can tell)."""
        return True

    def _retry_after_failure(self, attempt: int, state: str) -> bool:
        """Retry with new ports when someone grabbed ours between free_port() and bind."""
        if self._ports_fixed or attempt + 1 >= _START_ATTEMPTS:
            return False
        if state == "died" and _ADDRESS_IN_USE.search(self.log_tail(50)):
            self.kill()
            return True
        return False

    def _start_error(self, state: str) -> ServerError:
        proc = self._proc
        how = (
            f"exited with code {proc.returncode}"
            if proc is not None and proc.poll() is not None
            else f"did not answer within {self.startup_timeout:.0f} s"
        )
        self.kill()
        return ServerError(f"{self.name} at {self.url} {how}; log tail:\n{self.log_tail()}")

    def _forget(self) -> None:
        self._proc = None
        _running.discard(self)


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Wait for the process to exit without blocking the loop; False on timeout."""
    if proc.poll() is not None:
        return True
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:  # no pidfd (old kernel) or already gone: a thread can wait instead
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
        except TimeoutError:
            return False
        return True
    exited = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, exited.set)  # a pidfd becomes readable when the process exits
    try:
        await asyncio.wait_for(exited.wait(), timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    proc.wait()  # reap: returns at once
    return True


class MosquittoServer(ManagedServer):
    """mosquitto 2.x with persistence, anonymous access, logging to ``mosquitto.log``."""

    name = "mosquitto"

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        extra_config: list[str] | None = None,
        startup_timeout: float = 20.0,
        binary: str | None = None,
    ):
        super().__init__(data_dir, startup_timeout=startup_timeout)
        self.port = 0
        self.extra_config = list(extra_config or [])
        """Extra mosquitto.conf lines, e.g. ``autosave_interval 1``."""
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.config_path = self.data_dir / "mosquitto.conf"
        self.log_path = self.data_dir / "mosquitto.log"
        self.persistence_dir = self.data_dir / "persistence"
        self._mosquitto_log_start = 0

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"

    def _allocate_ports(self) -> None:
        self.port = free_port()

    def _log_paths(self) -> list[Path]:
        return [self.output_path, self.log_path]

    def _prepare(self) -> list[str]:
        self.persistence_dir.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} {LOOPBACK}",
            "allow_anonymous true",
            # Running as root, mosquitto would otherwise switch to the 'mosquitto' user,
            # which cannot write our temp folder.
            "user root",
            "persistence true",
            f"persistence_location {self.persistence_dir}/",
            "max_queued_messages 100000",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            *self.extra_config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")
        return [self.binary, "-c", str(self.config_path)]

    def _ready_in_logs(self) -> bool:
        # "running" is logged after persistence is restored and listeners are open; it
        # also proves that the process answering on the port is ours.
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._mosquitto_log_start)
                return b" running" in handle.read()
        except OSError:
            return False

    def _spawn(self) -> None:
        self._mosquitto_log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        super()._spawn()

    def _probe(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    async def _probe_async(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, self.port), 0.5)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True


class InfluxServer(ManagedServer):
    """influxd 1.x with auth off, its meta/data/wal folders and both ports in our space."""

    name = "influxd"

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        startup_timeout: float = 30.0,
        binary: str | None = None,
        config: Mapping[tuple[str, str], object] | None = None,
    ):
        super().__init__(data_dir, startup_timeout=startup_timeout)
        self.port = 0
        self.rpc_port = 0
        self.config_overrides = dict(config or {})
        """Extra ``(table, key): value`` settings, e.g. ``{("http", "auth-enabled"): True}``;
        ``""`` is the top-level table. Applied after ours, so they win."""
        self.binary = binary or shutil.which("influxd") or "/usr/bin/influxd"
        self.config_path = self.data_dir / "influxdb.conf"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _allocate_ports(self) -> None:
        self.port = free_port()
        self.rpc_port = free_port()
        while self.rpc_port == self.port:
            self.rpc_port = free_port()

    def _env(self) -> dict[str, str]:
        # INFLUXDB_* variables override the config file; ours must win.
        return {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}

    def _prepare(self) -> list[str]:
        self.config_path.write_text(self._config_text())
        return [self.binary, "-config", str(self.config_path)]

    def _config_text(self) -> str:
        # Defaults only: /dev/null keeps a machine's /etc/influxdb/influxdb.conf (auth,
        # paths) out of the tests.
        try:
            result = subprocess.run(
                [self.binary, "config", "-config", "/dev/null"],
                capture_output=True,
                check=False,
                env=self._env(),
                timeout=30,
            )
        except OSError as exc:
            raise ServerError(
                f"cannot run '{self.binary} config': {exc.strerror} "
                "(run scripts/install-system-deps.sh as root)"
            ) from exc
        if result.returncode != 0:
            raise ServerError(
                f"'{self.binary} config' failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace')[-2000:]}"
            )
        base = result.stdout.decode()
        top_level = tomllib.loads(base)
        reporting: dict[tuple[str, str], object] = (
            {("", "reporting-enabled"): False}
            if "reporting-enabled" in top_level  # Debian renames the upstream option
            else {("", "reporting-disabled"): True}
        )
        changes: dict[tuple[str, str], object] = {
            ("", "bind-address"): f"{LOOPBACK}:{self.rpc_port}",
            **reporting,
            ("meta", "dir"): str(self.data_dir / "meta"),
            ("meta", "logging-enabled"): False,
            ("data", "dir"): str(self.data_dir / "data"),
            ("data", "wal-dir"): str(self.data_dir / "wal"),
            ("data", "query-log-enabled"): False,
            ("monitor", "store-enabled"): False,
            ("http", "bind-address"): f"{LOOPBACK}:{self.port}",
            ("http", "auth-enabled"): False,
            ("http", "log-enabled"): False,
            ("http", "unix-socket-enabled"): False,
            ("http", "bind-socket"): str(self.data_dir / "influxd.sock"),
            ("logging", "level"): "warn",
            ("logging", "suppress-logo"): True,
            ("continuous_queries", "log-enabled"): False,
            **self.config_overrides,
        }
        text = rewrite_toml(base, changes)
        _check_rewritten(text, changes)
        return text

    def _probe(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1.0) as response:
                return bool(response.status == 204)
        except (OSError, urllib.error.URLError):
            return False

    async def _probe_async(self) -> bool:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session,
                session.get(f"{self.url}/ping") as response,
            ):
                return response.status == 204
        except (aiohttp.ClientError, TimeoutError):
            return False

    # -- small blocking helpers for fixtures and scripts ----------------------------------

    def query(self, q: str, db: str | None = None, *, post: bool = False) -> dict[str, Any]:
        """Run InfluxQL over /query (blocking); raises ServerError naming the query."""
        params = {"q": q, "epoch": "ns", **({"db": db} if db else {})}
        data = urllib.parse.urlencode(params).encode()
        request = (
            urllib.request.Request(f"{self.url}/query", data=data, method="POST")
            if post
            else urllib.request.Request(f"{self.url}/query?{data.decode()}")
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:
            raise ServerError(f"query {q!r} failed: {exc.code} {exc.read()[:500]!r}") from exc
        for result in body.get("results", []):
            if "error" in result:
                raise ServerError(f"query {q!r} failed: {result['error']}")
        return body

    def create_database(self, name: str) -> None:
        self.query(f"CREATE DATABASE {_ident(name)}", post=True)

    def drop_database(self, name: str) -> None:
        self.query(f"DROP DATABASE {_ident(name)}", post=True)


class V2ProxyServer(ManagedServer):
    """``python -m harness.v2_proxy`` in front of an influxd, as its own process."""

    name = "v2proxy"

    def __init__(
        self,
        upstream: str,
        data_dir: str | Path | None = None,
        *,
        startup_timeout: float = 20.0,
    ):
        super().__init__(data_dir, startup_timeout=startup_timeout)
        self.upstream = upstream
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _allocate_ports(self) -> None:
        self.port = free_port()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def _prepare(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "harness.v2_proxy",
            "--upstream",
            self.upstream,
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
        ]

    def _probe(self) -> bool:
        # Any HTTP answer means the proxy is up, even 503 while the upstream is down.
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1.0):
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, urllib.error.URLError):
            return False

    async def _probe_async(self) -> bool:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session,
                session.get(f"{self.url}/health"),
            ):
                return True
        except (aiohttp.ClientError, TimeoutError):
            return False


# -- TOML rewriting ---------------------------------------------------------------------

_SECTION = re.compile(r"^\s*\[(\[)?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_-]+)\s*=")


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    raise TypeError(f"cannot write {value!r} as a TOML value")


def rewrite_toml(text: str, changes: Mapping[tuple[str, str], object]) -> str:
    """Set ``(table, key)`` values in influxd's generated config, keeping everything else.

    ``table`` is ``""`` for top-level keys. Keys missing from a table are added at its end;
    array tables (``[[graphite]]``) are left alone. A line-based edit keeps the file
    diffable against ``influxd config`` output, which a TOML writer would not.
    """
    pending = dict(changes)
    out: list[str] = []
    section: str | None = ""
    array_table = False

    def flush(table: str | None) -> None:
        if table is None:
            return
        for (tbl, key), value in list(pending.items()):
            if tbl == table:
                out.append(
                    f"  {key} = {toml_value(value)}" if table else f"{key} = {toml_value(value)}"
                )
                del pending[(tbl, key)]

    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            # Insert keys the previous table lacked before its successor starts (and
            # top-level keys before the first table, where TOML requires them).
            while out and not out[-1].strip():
                out.pop()
            flush(None if array_table else section)
            out.append("")
            array_table = header.group(1) is not None
            section = header.group(2)
            out.append(line)
            continue
        key = _KEY.match(line)
        if key and not array_table and (section or "", key.group(2)) in pending:
            value = pending.pop((section or "", key.group(2)))
            out.append(f"{key.group(1)}{key.group(2)} = {toml_value(value)}")
            continue
        out.append(line)
    flush(None if array_table else section)
    for (table, name), value in pending.items():  # tables that did not exist at all
        out.extend(["", f"[{table}]", f"  {name} = {toml_value(value)}"])
    return "\n".join(out).lstrip("\n") + "\n"


def _check_rewritten(text: str, changes: Mapping[tuple[str, str], object]) -> None:
    parsed = tomllib.loads(text)
    for (table, key), value in changes.items():
        got = (parsed.get(table, {}) if table else parsed).get(key)
        if got != value:
            raise ServerError(f"influxd config rewrite failed: [{table}] {key} is {got!r}")


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
