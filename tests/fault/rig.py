"""One fault-injection run: a real plant, a seeded series of kill -9, and the final count.

Two plants, one source each (``RunConfig.plant``):

    mqtt:   simulators ──QoS 1, retained──► device mosquitto ──persistent session──► edge agent
              (ledger)                                                                  │ disk buffer
    opcua:  simulator (OPC UA server, history in SQLite) ──subscription + backfill──► edge agent
              (ledger)                                                                  │ disk buffer
    InfluxDB ◄── collector ◄──persistent session, ack after write── central mosquitto ◄─┘

Every box is a real process: mosquitto and influxd through ``harness.servers``, the
project's own services through their command lines. During the stream the collector, the
edge agent, the central mosquitto and influxd are killed with SIGKILL in the order of
:func:`~tests.fault.schedule.make_schedule` and restarted after a pause: the services as new
processes with the same client id, buffer folder and ports, the servers on the same ports
and data folders. The device broker and the OPC UA server are not killed: they stand for
the plant's equipment side, whose own durability is not ours to test (see
docs/reliability.md). The OPC UA server keeps the history of every variable it serves
(``--history`` in the run's folder), from which the edge backfills its outages.

After the stream the rig waits until the edge's buffer is empty (and, on OPC UA, its
backfill done) and the collector idle, then compares InfluxDB's ``sample`` measurement with
the simulators' ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from harness.broker_config import CENTRAL, shipped_lines
from harness.servers import LOOPBACK, InfluxServer, MosquittoServer, free_port
from tests import registers
from tests.fault.compare import (
    Comparison,
    FaultTimes,
    Row,
    attribute,
    compare,
    offsets_ms,
    read_ledger,
    window_starts,
)
from tests.fault.schedule import Fault, make_schedule

ENTERPRISE = "fault-ent"
PLANT = "p1"
EDGE = f"edge-{PLANT}"
SOURCE = "dev"
"""The MQTT plant's device source."""
OPCUA_SOURCE = "opc"
"""The OPC UA plant's source: the simulator's server, in subscribe mode."""
OPCUA_URI = "urn:plantkpi:fault"
DATABASE = "fault"
COLLECTOR_BROKER__CLIENT_ID = "plantkpi-collector-fault"
CENTRAL_PERSISTENCE = shipped_lines(CENTRAL)
"""The shipped central broker's persistence and queueing lines (deploy/mosquitto), not a
copy: they save the in-memory database after every loop that queued a message, changed a
subscription or a retained message (see docs/reliability.md)."""
PARAMETERS = ("torque", "pressure", "temperature", "power", "x0", "x1", "x2", "x3")
ATTRIBUTION_MARGIN_NS = 2_000_000_000
POLL_S = 0.3
FREEZE_QUIET_S = 2.0
"""OPC UA plant: the ledger (flushed every 0.5 s) did not grow for this long: frozen."""
BACKFILL_SETTLE_S = 3.0
"""OPC UA plant: a health report this long after the edge was first seen subscribed (its
backfill starts 2 publishing intervals + 0.2 s after subscribing) can show it done."""

PlantKind = Literal["mqtt", "opcua"]


def register_yaml(processes: int, plant_kind: PlantKind = "mqtt") -> str:
    """One plant, one source, ``processes`` machines of 9 signals each: a state (on change)
    and 8 parameters, half at 100 ms, half at 200 ms; two machines per line. The source is
    an MQTT device source with a persistent session (``mqtt``) or an OPC UA server read by
    subscription (``opcua``; backfill from its history is the default)."""
    source_id = SOURCE if plant_kind == "mqtt" else OPCUA_SOURCE

    def address(pid: str, name: str) -> dict[str, str]:
        if plant_kind == "mqtt":
            return {"topic": f"fault/{pid}/{name}"}
        return {"node": f"nsu={OPCUA_URI};s={pid}.{name}"}

    def machine(number: int) -> dict[str, Any]:
        pid = f"m{number}"
        state = registers.sig(
            "state", "state", source_id, "on_change", "100ms", **address(pid, "state")
        )
        parameters = [
            registers.sig(
                name,
                source=source_id,
                interval="100ms" if i % 2 == 0 else "200ms",
                **address(pid, name),
            )
            for i, name in enumerate(PARAMETERS)
        ]
        return registers.process(pid, [state, *parameters], name=f"Machine {number}")

    lines = [
        registers.line(
            f"l{line_no}",
            [machine(n) for n in range(line_no * 2, min(processes, line_no * 2 + 2))],
        )
        for line_no in range((processes + 1) // 2)
    ]
    if plant_kind == "mqtt":
        source = registers.mqtt_source(
            SOURCE, "mqtt://127.0.0.1:1", qos=1, persistent_session=True, session_expiry="1h"
        )
    else:
        source = registers.opcua_source(OPCUA_SOURCE, "opc.tcp://127.0.0.1:1", mode="subscribe")
    plant = registers.plant(PLANT, [source], lines)
    doc = registers.document([plant], enterprise=ENTERPRISE, region="Test", version=None)
    return registers.to_yaml(doc)


def scenario_yaml(seed: int, processes: int, plant_kind: PlantKind, stream_s: float) -> str:
    """The simulators' scenario. On the OPC UA plant every machine stops updating after
    ``stream_s`` (from the simulator's start): the values freeze and the server, which is
    not stopped before the drain, writes nothing more, so the ledger is complete while the
    edge still reads (and backfills) from it."""
    text = f"seed: {seed}\nregister: register.yaml\n"
    if plant_kind == "mqtt":
        return text + "machines: {}\n"
    after = f"{round(stream_s * 1000)}ms"
    machines = "".join(
        f"  m{n}: {{behaviour: stops_updating, after: {after}}}\n" for n in range(processes)
    )
    return text + "machines:\n" + machines


@dataclass(frozen=True)
class RunConfig:
    seed: int
    stream_s: float
    n_faults: int
    processes: int = 4
    drain_timeout_s: float = 90.0
    plant: PlantKind = "mqtt"
    """The plant's one source: MQTT devices or an OPC UA server with history."""


@dataclass
class RunReport:
    seed: int
    stream_s: float
    faults: list[dict[str, Any]]
    produced: int
    stored: int
    missing: int
    duplicated: int
    unexpected: int
    mismatched: int
    collector_batches: int
    collector_samples_written: int
    redeliveries: int
    """Samples the collector wrote beyond the distinct ones stored (lower bound)."""
    collector_lifetimes: int
    edge_lifetimes: int
    drained: bool
    drain_s: float
    missing_near: dict[str, int] = field(default_factory=dict)
    missing_offsets: list[str] = field(default_factory=list)
    """Distinct source times of missing samples relative to the kill near them."""
    missing_examples: list[str] = field(default_factory=list)
    other_examples: list[str] = field(default_factory=list)
    plant: PlantKind = "mqtt"
    kills: dict[str, int] = field(default_factory=dict)
    """Kills per target."""
    before_start: int = 0
    """OPC UA: ledger records older than the value each signal had when the edge first
    subscribed (nothing can deliver them: no mark to backfill from); not in ``produced``."""
    backfilled: int = 0
    """Stored points with ``backfill=true`` (written at least once from a backfill)."""
    edge_backfill: dict[str, int] = field(default_factory=dict)
    """OPC UA: the edge's health ``backfill`` counters (samples, gaps, failures) summed over
    its lifetimes (a killed lifetime's last report: a lower bound)."""
    stream_end_s: float = 0.0
    """OPC UA: when the ledger was seen frozen (seconds after the stream started)."""

    def summary(self) -> str:
        faults = "; ".join(
            f"{f['target']} killed at {f['killed_at_s']:.1f}s, down {f['down_s']:.1f}s"
            for f in self.faults
        )
        opcua = (
            f"; {self.before_start} ledger records before the edge's first subscription "
            f"(not expected); stored with backfill=true {self.backfilled}, edge backfill "
            f"counters {self.edge_backfill}; ledger frozen at {self.stream_end_s:.1f}s"
            if self.plant == "opcua"
            else ""
        )
        return (
            f"{self.plant} plant, seed {self.seed}, {self.stream_s:g}s stream, "
            f"faults: {faults}\n"
            f"produced {self.produced}, stored {self.stored}, missing {self.missing}, "
            f"duplicated {self.duplicated}, unexpected {self.unexpected}, "
            f"mismatched {self.mismatched}; collector wrote {self.collector_samples_written} "
            f"samples in {self.collector_batches} batches over {self.collector_lifetimes} "
            f"lifetimes (redeliveries ≥ {self.redeliveries}); drained={self.drained} "
            f"in {self.drain_s:.1f}s"
            + opcua
            + (
                f"\nmissing by nearby fault: {self.missing_near}, source times relative to "
                f"the kill: {self.missing_offsets}"
                if self.missing
                else ""
            )
            + (f"\nmissing e.g. {self.missing_examples}" if self.missing_examples else "")
            + (f"\nother differences e.g. {self.other_examples}" if self.other_examples else "")
        )


class Service:
    """One of the project's services as a process that can be killed and started again."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.lifetimes = 0
        self.started_ns = 0
        """Wall clock of the latest start."""

    def start(self) -> None:
        self.started_ns = time.time_ns()
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.lifetimes + 1} at {time.time_ns()}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.lifetimes += 1

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()  # SIGKILL cannot be caught: this returns at once

    async def stop(self, timeout: float = 20.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.kill()

    def died(self) -> str | None:
        """Why it exited on its own, if it did (kills by us do not count)."""
        code = self.proc.poll() if self.proc is not None else None
        return None if code in (None, 0) else f"{self.name} exited with {code}"

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


class FaultRig:
    def __init__(self, workdir: Path, config: RunConfig) -> None:
        self.workdir = workdir
        self.config = config
        self.schedule = make_schedule(config.seed, config.stream_s, config.n_faults)
        workdir.mkdir(parents=True, exist_ok=True)
        self.opcua = config.plant == "opcua"
        self.source_id = OPCUA_SOURCE if self.opcua else SOURCE
        self.register_path = workdir / "register.yaml"
        self.register_path.write_text(register_yaml(config.processes, config.plant))
        scenario = workdir / "scenario.yaml"
        scenario.write_text(
            scenario_yaml(config.seed, config.processes, config.plant, config.stream_s)
        )
        self.ledger_path = workdir / "ledger.jsonl"
        self.history_dir = workdir / "opcua-history"
        """OPC UA plant: the server's history (kept with the run's folder)."""
        self.opcua_url = f"opc.tcp://{LOOPBACK}:{free_port()}"
        self.device = MosquittoServer(workdir / "device-mosquitto")
        """MQTT plant only: the devices' broker."""
        self.central = MosquittoServer(
            workdir / "central-mosquitto", extra_config=CENTRAL_PERSISTENCE
        )
        self.influx = InfluxServer(workdir / "influxd")
        self.api_port = free_port()
        self.api = f"http://{LOOPBACK}:{self.api_port}"
        self.collector: Service
        self.edge: Service
        self.simulators: Service
        self.times: list[FaultTimes] = []
        self.t0_ns = 0
        """Wall clock when the simulators were started (the stream's second 0)."""
        # Latest counters of each collector lifetime, polled (a killed one keeps its last).
        self.collector_stats: dict[int, dict[str, Any]] = {}
        # OPC UA: per edge lifetime, its latest backfill counters and when it was first
        # seen subscribed (a health report's own time).
        self.edge_backfill: dict[int, dict[str, Any]] = {}
        self.edge_subscribed_ns: dict[int, int] = {}
        self.cut_ns = 0
        """OPC UA: a time at which the edge was subscribed for the first time."""
        self.http = httpx.AsyncClient(timeout=2.0)

    # -- set-up -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FaultRig]:
        servers = [self.central, self.influx]
        if not self.opcua:
            servers.insert(0, self.device)
        try:
            await asyncio.gather(*(server.start_async() for server in servers))
            await asyncio.to_thread(self.influx.create_database, DATABASE)
            self._define_services()
            self.collector.start()
            await self._until(self._collector_subscribed, 30, "the collector's subscription")
            self.edge.start()
            if self.opcua:
                # Its server is the simulator, started with the stream: until then the edge
                # reports, with its source down.
                await self._until(self._edge_reporting, 30, "the edge's first health report")
            else:
                await self._until(self._edge_subscribed, 30, "the edge's device subscription")
            yield self
        finally:
            for service in ("simulators", "edge", "collector"):
                if hasattr(self, service):
                    await getattr(self, service).stop()
            await self.http.aclose()
            for server in servers:
                await server.stop_async()

    def _define_services(self) -> None:
        register = str(self.register_path)
        self.collector = Service(
            "collector",
            ["-m", "collector", "run"],
            {
                "COLLECTOR_REGISTERS": json.dumps([register]),
                "COLLECTOR_BROKER__URL": self.central.url,
                "COLLECTOR_BROKER__CLIENT_ID": COLLECTOR_BROKER__CLIENT_ID,
                "COLLECTOR_INFLUX__URL": self.influx.url,
                "COLLECTOR_INFLUX__DATABASE": DATABASE,
                "COLLECTOR_INFLUX__MODE": "v1",
                # The KPI loop is not under test here; keep its reads off the stream.
                "COLLECTOR_KPI__PERIOD": "1h",
                "COLLECTOR_API__PORT": str(self.api_port),
            },
            self.workdir,
        )
        equipment = (
            ["--endpoint", f"{OPCUA_SOURCE}={self.opcua_url}"]
            if self.opcua
            else ["--broker", f"{SOURCE}={self.device.url}"]
        )
        self.edge = Service(
            "edge",
            [
                *("-m", "edge", "run", "--register", register, "--plant", PLANT),
                *("--uplink-broker", self.central.url, *equipment),
            ],
            {
                "EDGE_BUFFER_DIR": str(self.workdir / "edge-buffer"),
                "EDGE_OPCUA_PKI_DIR": str(self.workdir / "edge-pki"),
                "EDGE_HEALTH_PORT": "0",
                "EDGE_FLUSH_INTERVAL": "200ms",
                "EDGE_RECONNECT_MAX_DELAY": "1s",
                "EDGE_STATUS_INTERVAL": "1s",
            },
            self.workdir,
        )
        history = ["--history", str(self.history_dir)] if self.opcua else []
        self.simulators = Service(
            "simulators",
            [
                *("-m", "simulators", "run", "--scenario", str(self.workdir / "scenario.yaml")),
                *equipment,
                *("--ledger", str(self.ledger_path), *history),
            ],
            {},
            self.workdir,
        )

    # -- observation --------------------------------------------------------------------

    async def _get(self, path: str) -> dict[str, Any] | None:
        try:
            response = await self.http.get(f"{self.api}{path}")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def _poll_stats(self) -> dict[str, Any] | None:
        lifetime = self.collector.lifetimes
        stats = await self._get("/api/v1/stats")
        # Only a live process answers; a reply after a restart belongs to the new lifetime.
        if stats is not None and lifetime == self.collector.lifetimes:
            self.collector_stats[lifetime] = stats
        return stats

    async def _collector_subscribed(self) -> bool:
        stats = await self._poll_stats()
        return stats is not None and stats["consumer"]["state"] == "subscribed"

    async def _edge_health(self) -> dict[str, Any] | None:
        edges = await self._get("/api/v1/edges")
        if edges is None:
            return None
        seen = edges["edges"].get(f"{ENTERPRISE}/{PLANT}/{EDGE}")
        health: dict[str, Any] | None = seen.get("health") if seen else None
        return health or None

    async def _edge_subscribed(self) -> bool:
        health = await self._edge_health()
        return bool(health) and health["sources"][self.source_id]["state"] == "subscribed"  # type: ignore[index]

    async def _edge_reporting(self) -> bool:
        health = await self._edge_health()
        return health is not None and health["ts"] > self.edge.started_ns

    async def _edge_first_subscribed(self) -> bool:
        """OPC UA: the edge's first subscription; ``cut_ns`` is the time of the report
        that shows it (the subscription was made before)."""
        health = await self._edge_health()
        if health is None or health["sources"][OPCUA_SOURCE]["state"] != "subscribed":
            return False
        self.cut_ns = int(health["ts"])
        return True

    def _note_edge(self, health: dict[str, Any] | None) -> None:
        """OPC UA: keep a report's backfill counters, and when its lifetime was first seen
        subscribed (reports older than the latest start are of an earlier lifetime)."""
        if health is None or health["ts"] <= self.edge.started_ns:
            return
        lifetime = self.edge.lifetimes
        source = health["sources"][OPCUA_SOURCE]
        self.edge_backfill[lifetime] = dict(source["backfill"])
        if source["state"] == "subscribed":
            self.edge_subscribed_ns.setdefault(lifetime, int(health["ts"]))

    def _check_alive(self) -> None:
        for service in (self.collector, self.edge, self.simulators):
            why = service.died()
            if why:
                raise AssertionError(f"{why}\n{service.log_tail()}")

    async def _until(self, check: Callable[[], Any], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if await check():
                return
            await asyncio.sleep(POLL_S)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def logs(self) -> str:
        parts = [f"===== {s.name}\n{s.log_tail()}" for s in (self.collector, self.edge)]
        parts += [f"===== {s.name}\n{s.log_tail(10)}" for s in (self.central, self.influx)]
        return "\n".join(parts)

    # -- the run ------------------------------------------------------------------------

    async def run(self) -> RunReport:
        self.simulators.start()
        started = time.monotonic()
        self.t0_ns = time.time_ns()
        poller = asyncio.create_task(self._poll_forever())
        try:
            if self.opcua:
                # What the server wrote before the edge's first subscription cannot reach
                # it (no mark to backfill from): the comparison starts here (window_starts).
                await self._until(
                    self._edge_first_subscribed, 30, "the edge's first OPC UA subscription"
                )
            for fault in self.schedule:
                await asyncio.sleep(max(0.0, started + fault.at_s - time.monotonic()))
                self._check_alive()
                await self._inject(fault)
            await asyncio.sleep(max(0.0, started + self.config.stream_s - time.monotonic()))
            if self.opcua:
                # The server stays up (history, backfill) while its machines are frozen.
                stopped_ns = await self._ledger_frozen()
            else:
                await self.simulators.stop()
                stopped_ns = time.time_ns()
            drain_started = time.monotonic()
            drained = await self._drain(stopped_ns)
            drain_s = time.monotonic() - drain_started
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        await self._poll_stats()  # the surviving lifetime's exact final counters
        if self.opcua:
            await self.simulators.stop()  # closes the ledger (frozen: nothing more in it)
        stored = await asyncio.to_thread(self.stored_rows)
        produced = read_ledger(self.ledger_path)
        since = window_starts(produced, self.cut_ns) if self.opcua else None
        result = compare(produced, stored, since)
        backfilled = await asyncio.to_thread(self.stored_backfilled)
        report = self._report(result, drained, drain_s)
        report.backfilled = backfilled
        report.stream_end_s = round((stopped_ns - self.t0_ns) / 1e9, 1) if self.opcua else 0.0
        return report

    async def _poll_forever(self) -> None:
        while True:
            await self._poll_stats()
            if self.opcua:
                self._note_edge(await self._edge_health())
            await asyncio.sleep(POLL_S)

    async def _ledger_frozen(self) -> int:
        """OPC UA plant: wait until the machines stopped updating (scenario_yaml): the
        ledger has not grown for FREEZE_QUIET_S and reaches ``stream_s`` past its first
        record. Returns that moment (wall clock, ns)."""
        deadline = time.monotonic() + 60.0
        size, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            self._check_alive()
            now = self.ledger_path.stat().st_size if self.ledger_path.exists() else 0
            if now != size:
                size, since = now, time.monotonic()
            elif time.monotonic() - since >= FREEZE_QUIET_S:
                with contextlib.suppress(ValueError):  # a line half written: read again
                    times = [ts for _, _, ts, _, _ in read_ledger(self.ledger_path)]
                    if times and max(times) - min(times) >= (self.config.stream_s - 0.3) * 1e9:
                        return time.time_ns()
            await asyncio.sleep(0.25)
        raise AssertionError(f"the simulator's machines did not freeze\n{self.logs()}")

    async def _inject(self, fault: Fault) -> None:
        if fault.target == "collector":
            await self._poll_stats()  # its counters up to the kill, as close as we can get
            killed = time.time_ns()
            self.collector.kill()
            await asyncio.sleep(fault.pause_s)
            self.collector.start()
        elif fault.target == "edge":
            killed = time.time_ns()
            self.edge.kill()
            await asyncio.sleep(fault.pause_s)
            self.edge.start()
        elif fault.target == "central_mosquitto":
            killed = time.time_ns()
            await self.central.kill_async()
            await asyncio.sleep(fault.pause_s)
            await self.central.start_async()
        else:
            killed = time.time_ns()
            await self.influx.kill_async()
            await asyncio.sleep(fault.pause_s)
            await self.influx.start_async()
        self.times.append(FaultTimes(fault, killed, time.time_ns()))

    async def _drain(self, stopped_ns: int) -> bool:
        """Wait until nothing is on its way: the edge reports an empty buffer in a health
        report made well after the simulators stopped, the collector's queue is empty, and
        the stored count no longer moves."""
        deadline = time.monotonic() + self.config.drain_timeout_s
        last_count = -1
        previous: tuple[int, Any] | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            health = await self._edge_health()
            stats = await self._poll_stats()
            count = await asyncio.to_thread(self.stored_count)
            edge_empty = (
                health is not None
                and health["ts"] > stopped_ns + 2_000_000_000
                and health["buffer"]["depth"] == 0
                and health["uplink"]["state"] == "connected"
            )
            caught_up = True
            if self.opcua and health is not None:
                caught_up = self._backfill_done(health, previous)
                previous = (health["ts"], health["sources"][OPCUA_SOURCE]["backfill"])
                # The edge's watermark waits for a backfill to come or under way: stored
                # past the freeze, nothing acquired before it is still on its way.
                watermark = await asyncio.to_thread(self.stored_watermark)
                caught_up = caught_up and watermark > stopped_ns + 2_000_000_000
            collector_idle = stats is not None and stats["queue_depth"] == 0
            if edge_empty and caught_up and collector_idle and count == last_count:
                return True
            last_count = count
            await asyncio.sleep(1.0)
        return False

    def _backfill_done(self, health: dict[str, Any], previous: tuple[int, Any] | None) -> bool:
        """OPC UA: the edge's live lifetime is subscribed and its backfill counters did not
        move between two reports made from BACKFILL_SETTLE_S after it was first seen
        subscribed (the health report has counters, no "backfill running" flag; the
        watermark, checked beside this, says when a backfill is over)."""
        self._note_edge(health)
        source = health["sources"][OPCUA_SOURCE]
        subscribed = self.edge_subscribed_ns.get(self.edge.lifetimes)
        if source["state"] != "subscribed" or subscribed is None:
            return False
        if health["ts"] <= subscribed + BACKFILL_SETTLE_S * 1e9:
            return False
        backfill = source["backfill"]
        return previous is not None and previous[0] != health["ts"] and previous[1] == backfill

    # -- storage ------------------------------------------------------------------------

    def stored_count(self) -> int:
        try:
            body = self.influx.query("SELECT count(status) FROM sample", DATABASE)
        except Exception:  # influxd may be restarting: the next poll retries
            return -1
        series = body["results"][0].get("series") or []
        return int(series[0]["values"][0][1]) if series else 0

    def stored_watermark(self) -> int:
        """The edge's newest stored watermark (its ``complete_until``), 0 when none yet."""
        try:
            body = self.influx.query("SELECT last(seq) FROM watermark", DATABASE)
        except Exception:  # influxd may be restarting: the next poll retries
            return 0
        series = body["results"][0].get("series") or []
        return int(series[0]["values"][0][0]) if series else 0

    def stored_backfilled(self) -> int:
        """Stored points with ``backfill=true``."""
        body = self.influx.query("SELECT count(backfill) FROM sample", DATABASE)
        series = body["results"][0].get("series") or []
        return int(series[0]["values"][0][1]) if series else 0

    def stored_rows(self) -> list[Row]:
        body = self.influx.query(
            "SELECT value, value_str, value_bool, status FROM sample GROUP BY process, signal",
            DATABASE,
        )
        rows: list[Row] = []
        for series in body["results"][0].get("series") or []:
            process, sig = series["tags"]["process"], series["tags"]["signal"]
            col = {name: i for i, name in enumerate(series["columns"])}
            for r in series["values"]:
                value = next(
                    (
                        r[col[n]]
                        for n in ("value", "value_str", "value_bool")
                        if r[col[n]] is not None
                    ),
                    None,
                )
                rows.append((process, sig, int(r[col["time"]]), value, int(r[col["status"]])))
        return rows

    # -- the report ---------------------------------------------------------------------

    def _report(self, result: Comparison, drained: bool, drain_s: float) -> RunReport:
        t0_ns = self.t0_ns
        faults = [
            {
                **asdict(t.fault),
                "killed_at_s": round((t.killed_ns - t0_ns) / 1e9, 2),
                "killed_ns": t.killed_ns,
                "down_s": round((t.restarted_ns - t.killed_ns) / 1e9, 2),
            }
            for t in self.times
        ]
        written = sum(int(s["samples_written"]) for s in self.collector_stats.values())
        batches = sum(int(s["batches"]) for s in self.collector_stats.values())
        near: Counter[str] = attribute(result.missing, self.times, ATTRIBUTION_MARGIN_NS)
        edge_backfill = {
            name: sum(int(b.get(name, 0)) for b in self.edge_backfill.values())
            for name in ("samples", "gaps", "failures")
        }
        others = [f"duplicated {k}" for k in result.duplicated[:3]]
        others += [f"unexpected {k}" for k in result.unexpected[:3]]
        others += [f"mismatched {m}" for m in result.mismatched[:3]]
        return RunReport(
            seed=self.config.seed,
            stream_s=self.config.stream_s,
            faults=faults,
            produced=result.produced,
            stored=result.stored_distinct - result.stored_before_start,
            missing=len(result.missing),
            duplicated=len(result.duplicated),
            unexpected=len(result.unexpected),
            mismatched=len(result.mismatched),
            collector_batches=batches,
            collector_samples_written=written,
            redeliveries=written - result.stored_distinct,
            collector_lifetimes=self.collector.lifetimes,
            edge_lifetimes=self.edge.lifetimes,
            drained=drained,
            drain_s=round(drain_s, 1),
            missing_near=dict(near),
            missing_offsets=offsets_ms(result.missing, self.times, ATTRIBUTION_MARGIN_NS),
            missing_examples=[f"{p}/{s}@{ts}" for p, s, ts in result.missing[:5]],
            other_examples=others,
            plant=self.config.plant,
            kills=dict(Counter(t.fault.target for t in self.times)),
            before_start=result.before_start,
            edge_backfill=edge_backfill if self.opcua else {},
        )


def record(report: RunReport) -> None:
    """Append the run's figures to ``$PLANTKPI_FAULT_REPORT`` (JSON lines), if set."""
    path = os.environ.get("PLANTKPI_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(report)) + "\n")
