"""One end-to-end run: simulators → edge → mosquitto → collector → InfluxDB, measured.

Every component is a real process started by :class:`harness.plant.PlantStack`,
against already-running mosquitto and influxd. After a warm-up, a window of ``seconds``
is measured:

- produced: simulator ledger records whose source time falls in the window;
- stored: ``sample`` rows whose point time (= source time) falls in the window, counted
  ``grace`` seconds after the window closed (so a pipeline that falls behind shows it),
  and again after the pipeline drained (what was lost for good);
- written: the collector's own count of samples InfluxDB acknowledged during the window;
- acquisition latency: edge ``recv_ns`` minus the point's source time;
- freshness: age of the newest stored sample of one probe signal per source, polled about
  once a second (an upper estimate of end-to-end latency: the collector's write time is
  not stored);
- CPU seconds of every process over the window, from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.cpu import CpuUsage, snapshot, usage
from bench.scaled_plant import (
    MQTT_PREFIX,
    MQTT_SOURCE,
    OPCUA_PREFIX,
    OPCUA_SOURCE,
    PLANT,
    PlantSize,
    parameter_id,
    process_id,
    write_plant,
)
from collector.storage.influxql import quote_ident, quote_literal, time_range
from collector.storage.reader import InfluxQLReader
from collector.storage.schema import SAMPLE
from collector.storage.settings import InfluxSettings
from harness.plant import PlantStack
from harness.servers import InfluxServer, MosquittoServer

SOURCES = {OPCUA_SOURCE: OPCUA_PREFIX, MQTT_SOURCE: MQTT_PREFIX}
"""Source id → prefix of the process ids it carries."""
SOURCE_LABELS = {OPCUA_SOURCE: "OPC UA", MQTT_SOURCE: "MQTT"}
EDGE = f"edge-{PLANT}"


class BenchError(RuntimeError):
    """The run could not be measured (a component died, data never arrived); has the logs."""


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: float
    p95: float

    @staticmethod
    def of(values: list[float]) -> Percentiles:
        if not values:
            return Percentiles(0, math.nan, math.nan)
        ordered = sorted(values)

        def rank(q: float) -> float:  # nearest rank
            return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

        return Percentiles(len(ordered), rank(0.50), rank(0.95))


@dataclass(frozen=True)
class PipelineResult:
    size: PlantSize
    seconds: float
    """Length of the measured window (wall clock)."""
    produced: dict[str, int]
    """Source id → ledger records with source time in the window, handed to the pipeline
    (OPC UA: written to the server; MQTT: acknowledged by the broker) by the time the
    stored rows were counted."""
    produced_total: dict[str, int]
    """The same, once the simulators stopped: includes samples they published late."""
    stored_in_time: dict[str, int]
    """Source id → rows with point time in the window, present ``grace`` s after it."""
    stored_final: dict[str, int]
    """Source id → the same count once the pipeline drained."""
    written: int
    """Samples the collector had acknowledged by InfluxDB during the window (its counter)."""
    grace_s: float
    acquisition_ms: dict[str, Percentiles]
    """Source id → edge receive time minus source time, in ms."""
    freshness_ms: dict[str, Percentiles]
    """Source id → age of the probe signal's newest stored sample, in ms."""
    cpu: CpuUsage
    edge_received_per_s: dict[str, float | None]
    """Source id → samples/s the edge received (OPC UA notifications, MQTT messages), from
    its health reports (every 5 s) around the window; None without two reports."""
    collector_queue_end: int
    """Batches waiting in the collector's write queue when the window closed."""
    edge_buffer_end: int | None
    """Edge buffer depth in its last health report before the window closed."""
    edge_dropped: int | None
    write_failures: dict[str, int]
    kpi_recompute_s: float | None
    """How long ``/api/v1/recompute`` of the window took (read + evaluate), if it ran."""
    kpi_recompute_samples: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def produced_count(self) -> int:
        return sum(self.produced.values())

    @property
    def stored_total(self) -> int:
        return sum(self.stored_in_time.values())

    @property
    def stored_final_total(self) -> int:
        return sum(self.stored_final.values())

    @property
    def produced_per_s(self) -> float:
        return self.produced_count / self.seconds

    @property
    def stored_per_s(self) -> float:
        return self.stored_total / self.seconds

    @property
    def written_per_s(self) -> float:
        return self.written / self.seconds

    @property
    def stored_ratio(self) -> float:
        return self.stored_total / self.produced_count if self.produced_count else math.nan

    @property
    def produced_late(self) -> int:
        """Samples of the window the simulators handed over only after it was counted."""
        return sum(self.produced_total.values()) - self.produced_count

    @property
    def completeness(self) -> float:
        total = sum(self.produced_total.values())
        return self.stored_final_total / total if total else math.nan


@dataclass(frozen=True)
class RunTiming:
    seconds: float = 30.0
    """The measured window."""
    warmup: float = 8.0
    """After data from both sources is stored, before the window opens."""
    grace: float = 5.0
    """After the window closes, before its rows are counted."""
    start_timeout: float = 90.0
    drain_timeout: float = 120.0
    kpi_recompute: bool = True


async def run_pipeline(
    mosquitto: MosquittoServer,
    influx: InfluxServer,
    size: PlantSize,
    workdir: Path,
    timing: RunTiming | None = None,
    *,
    keep_database: bool = False,
) -> PipelineResult:
    """Start a plant of ``size``, measure one window, stop everything; raise BenchError.

    Logs, the ledger and the generated register stay in ``workdir``; the database is
    dropped afterwards unless ``keep_database``.
    """
    timing = timing or RunTiming()
    database = f"bench_e2e_{size.periodic_signals}_{time.time_ns() // 1_000_000}"
    register, scenario = await asyncio.to_thread(write_plant, size, workdir)
    settings = InfluxSettings(url=influx.url, database=database)
    env = {
        "COLLECTOR_INFLUX__URL": influx.url,
        # v1 /write straight to influxd 1.6: the v2 path would need the test proxy in front,
        # a Python hop production does not have.
        "COLLECTOR_INFLUX__MODE": "v1",
        "COLLECTOR_INFLUX__DATABASE": database,
    }
    stack = await asyncio.to_thread(PlantStack, register, scenario, mosquitto.url, env, workdir)
    reader = InfluxQLReader(settings)
    ledger = workdir / "ledger.jsonl"
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            # The KPI loop evaluates once at start (nothing stored yet) and then not again
            # during the run: this measures ingest alone. The recompute below times the
            # KPI's read path separately.
            stack.start_collector(window="60s", period="1h", lag="3s")
            await asyncio.to_thread(stack.wait_for_api)
            stack.start_simulators(ledger=ledger)
            stack.start_edges()
            started_pids = {c.name: c.proc.pid for c in stack.components}
            pids = {
                "simulators": started_pids["simulators"],
                "edge": started_pids[EDGE],
                "collector": started_pids["collector"],
                "mosquitto": _pid(mosquitto),
                "influxd": _pid(influx),
                "bench": os.getpid(),
            }
            await _wait_for_data(stack, reader, size, timing.start_timeout)
            await asyncio.sleep(timing.warmup)

            stats_before = await _api(http, stack, "/api/v1/stats")
            edges_before = await _api(http, stack, "/api/v1/edges")
            cpu_before = snapshot(pids)
            t0 = time.time_ns()
            started = time.monotonic()
            ages = await _probe_freshness(stack, reader, size, timing.seconds)
            cpu_after = snapshot(pids)
            wall = time.monotonic() - started
            t1 = time.time_ns()
            stats_after = await _api(http, stack, "/api/v1/stats")
            edges_after = await _api(http, stack, "/api/v1/edges")

            await asyncio.sleep(timing.grace)
            stack.check_alive()
            stored_in_time = await _count_by_source(reader, t0, t1)
            # What the simulators had handed over by now: the ledger is flushed every
            # 0.5 s, so wait past one flush; anything handed over meanwhile only makes
            # "produced" larger, never "stored".
            await asyncio.sleep(1.0)
            ledger_in_time = (await asyncio.to_thread(ledger.stat)).st_size
            await asyncio.to_thread(stack.stop, "simulators")  # SIGTERM: ledger flushed, closed
            await _wait_for_drain(http, stack, timing.drain_timeout)
            stored_final = await _count_by_source(reader, t0, t1)
            acquisition = {
                source: Percentiles.of(await _acquisition_latencies(reader, prefix, t0, t1))
                for source, prefix in SOURCES.items()
            }
            recompute_s = (
                await _time_recompute(http, stack, t0, t1) if timing.kpi_recompute else None
            )
        produced, produced_total = await asyncio.to_thread(
            _count_ledger, ledger, t0, t1, ledger_in_time
        )
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"end-to-end run failed: {exc!r}\n{stack.logs()}") from exc
    finally:
        await reader.close()
        await asyncio.to_thread(stack.stop_all)
        if not keep_database:
            # Its compactions would otherwise take CPU from the next run.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(influx.drop_database, database)

    health_after = _edge_health(edges_after)
    buffer = health_after.get("buffer") or {}
    return PipelineResult(
        size=size,
        seconds=wall,
        produced=produced,
        produced_total=produced_total,
        stored_in_time=stored_in_time,
        stored_final=stored_final,
        written=int(stats_after["samples_written"]) - int(stats_before["samples_written"]),
        grace_s=timing.grace,
        acquisition_ms=acquisition,
        freshness_ms={source: Percentiles.of(values) for source, values in ages.items()},
        cpu=usage(cpu_before, cpu_after, wall),
        collector_queue_end=int(stats_after["queue_depth"]),
        edge_received_per_s=_received_rates(_edge_health(edges_before), health_after),
        edge_buffer_end=buffer.get("depth"),
        edge_dropped=buffer.get("dropped"),
        write_failures=dict(stats_after.get("write_failures") or {}),
        kpi_recompute_s=recompute_s,
        kpi_recompute_samples=sum(stored_final.values()),
    )


def _pid(server: MosquittoServer | InfluxServer) -> int:
    if server.pid is None:
        raise BenchError(f"{server.name} is not running")
    return server.pid


async def _api(http: httpx.AsyncClient, stack: PlantStack, path: str) -> dict[str, Any]:
    response = await http.get(f"{stack.api_url}{path}")
    if response.status_code != 200:
        raise BenchError(f"GET {path}: HTTP {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def _edge_health(edges: dict[str, Any]) -> dict[str, Any]:
    for key, seen in edges.get("edges", {}).items():
        if key.endswith(f"/{EDGE}") and isinstance(seen.get("health"), dict):
            health: dict[str, Any] = seen["health"]
            return health
    return {}


_RECEIVED_COUNTERS = {OPCUA_SOURCE: "notifications", MQTT_SOURCE: "messages"}


def _received_rates(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float | None]:
    """Per source, what the edge received per second between two of its health reports."""
    rates: dict[str, float | None] = {source: None for source in SOURCES}
    span_s = (int(after.get("ts", 0)) - int(before.get("ts", 0))) / 1e9
    if span_s <= 0:
        return rates
    for source, counter in _RECEIVED_COUNTERS.items():
        try:
            got = after["sources"][source][counter] - before["sources"][source][counter]
        except (KeyError, TypeError):
            continue
        rates[source] = got / span_s
    return rates


def _probes(size: PlantSize) -> dict[str, tuple[str, str]]:
    """Source id → (process, signal) watched for freshness: the first process of each."""
    del size  # every size has processes 0 (OPC UA) and 1 (MQTT)
    return {
        OPCUA_SOURCE: (process_id(0), parameter_id(0)),
        MQTT_SOURCE: (process_id(1), parameter_id(0)),
    }


async def _newest_age_ms(reader: InfluxQLReader, process: str, signal: str) -> float | None:
    """Now minus the source time of the newest stored sample of one signal (None: none)."""
    query = (
        f"SELECT last({quote_ident('status')}) FROM {quote_ident(SAMPLE.name)} "
        f"WHERE {quote_ident('process')} = {quote_literal(process)} "
        f"AND {quote_ident('signal')} = {quote_literal(signal)} AND time > now() - 5m"
    )
    series = await reader.query(query)
    now = time.time_ns()
    for one in series:
        for row in one.values:
            return (now - int(row[0])) / 1e6
    return None


async def _wait_for_data(
    stack: PlantStack, reader: InfluxQLReader, size: PlantSize, timeout: float
) -> None:
    """Until a fresh sample of every probe is stored (both sources are flowing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        ages = [await _newest_age_ms(reader, p, s) for p, s in _probes(size).values()]
        if all(age is not None and age < 5000 for age in ages):
            return
        await asyncio.sleep(0.5)
    raise BenchError(f"no fresh data from both sources within {timeout:.0f} s\n{stack.logs()}")


async def _probe_freshness(
    stack: PlantStack, reader: InfluxQLReader, size: PlantSize, seconds: float
) -> dict[str, list[float]]:
    """Poll the probes about once a second for ``seconds``; return their ages in ms.

    The pause between polls is random (0.5-1.5 s): a fixed 1 s would lock onto the phase
    of the pipeline's 500 ms cycles and see the same age every time.
    """
    ages: dict[str, list[float]] = {source: [] for source in SOURCES}
    rng = random.Random(0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    next_poll = loop.time()
    while True:
        stack.check_alive()
        for source, (process, signal) in _probes(size).items():
            age = await _newest_age_ms(reader, process, signal)
            # Nothing stored in the last 5 minutes counts as 5 minutes old.
            ages[source].append(age if age is not None else 300_000.0)
        next_poll += rng.uniform(0.5, 1.5)
        if next_poll >= deadline:
            break
        await asyncio.sleep(max(0.0, next_poll - loop.time()))
    await asyncio.sleep(max(0.0, deadline - loop.time()))
    return ages


async def _count_by_source(reader: InfluxQLReader, start_ns: int, end_ns: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for source, prefix in SOURCES.items():
        query = (
            f"SELECT count({quote_ident('status')}) FROM {quote_ident(SAMPLE.name)} "
            f"WHERE {time_range(start_ns, end_ns)} AND {quote_ident('process')} =~ /^{prefix}/"
        )
        series = await reader.query(query)
        counts[source] = sum(int(row[1]) for one in series for row in one.values)
    return counts


async def _acquisition_latencies(
    reader: InfluxQLReader, prefix: str, start_ns: int, end_ns: int
) -> list[float]:
    query = (
        f"SELECT {quote_ident('recv_ns')} FROM {quote_ident(SAMPLE.name)} "
        f"WHERE {time_range(start_ns, end_ns)} AND {quote_ident('process')} =~ /^{prefix}/"
    )
    return [
        (int(row[1]) - int(row[0])) / 1e6
        for one in await reader.query(query)
        for row in one.values
        if row[1] is not None
    ]


async def _wait_for_drain(http: httpx.AsyncClient, stack: PlantStack, timeout: float) -> None:
    """Until the collector has written nothing new for 3 s with an empty queue."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        stats = await _api(http, stack, "/api/v1/stats")
        if stats["samples_written"] != last:
            last, since = stats["samples_written"], time.monotonic()
        elif time.monotonic() - since > 3.0 and stats["queue_depth"] == 0:
            return
        await asyncio.sleep(0.5)
    raise BenchError(f"the collector did not drain within {timeout:.0f} s\n{stack.logs()}")


async def _time_recompute(
    http: httpx.AsyncClient, stack: PlantStack, start_ns: int, end_ns: int
) -> float | None:
    """Seconds ``/api/v1/recompute`` takes over the window (None if it failed)."""
    params = {"start": _iso(start_ns), "end": _iso(end_ns)}
    started = time.monotonic()
    with contextlib.suppress(httpx.HTTPError):
        response = await http.get(f"{stack.api_url}/api/v1/recompute", params=params, timeout=300)
        if response.status_code == 200:
            return time.monotonic() - started
    return None


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def _count_ledger(
    path: Path, start_ns: int, end_ns: int, prefix_bytes: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Ledger records with a source time in the window, per source: (those within the first
    ``prefix_bytes`` of the file, all of them). Records are ``simulators.ledger`` JSON lines."""
    in_time: Counter[str] = Counter({source: 0 for source in SOURCES})
    total: Counter[str] = Counter({source: 0 for source in SOURCES})
    offset = 0
    with path.open("rb") as file:
        for number, line in enumerate(file, 1):
            offset += len(line)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                source, ts = str(record["source"]), int(record["ts"])
            except (ValueError, KeyError, TypeError) as exc:
                raise BenchError(f"{path}:{number}: not a ledger record: {exc}") from None
            if start_ns <= ts < end_ns:
                total[source] += 1
                # A line the earlier size cut in half was not complete then: not in time.
                if offset <= prefix_bytes:
                    in_time[source] += 1
    return dict(in_time), dict(total)
