"""A burst of MQTT device messages into InfluxDB: plantkpi's device path beside its peers.

    .venv/bin/python bench/mqtt_burst.py [--messages 100000] [--topics 10] [--qos 0,1]
        [--runs 3] [--out docs/benchmarks.md]

One workload, every pipeline, one run: ``messages`` single-sample JSON messages
(``{"value": v, "ts": ms}``, every one a distinct point) published as fast as
``mosquitto_pub -l`` can, one publisher per topic, the ``topics`` in parallel, at each
QoS. Starts its own device mosquitto, central mosquitto and influxd; per QoS and run:

- *broker alone*: ``mosquitto_sub -C messages`` on the device broker: the rate the broker
  and the publishers allow (the ceiling of everything below);
- *Python bridge* (``bench/mqtt_bridge.py``): paho → batched ``/write``, in memory only;
- *Node-RED* (``bench/node_red.py``): ``mqtt in`` → ``join`` → ``influxdb batch``, in
  memory only (installed from ``bench/node_red/package-lock.json`` when missing);
- *plantkpi*: device broker → edge agent (every sample on disk before it counts as read,
  acknowledged after the disk) → central broker (QoS 1) → collector → influxd.

Measured from the first publish until the last sample is written (the bridge's and the
collector's own counts), then counted in InfluxDB (nothing lost); CPU seconds per process;
the edge's and the collector's peak RSS (``VmHWM``). Medians over the runs; the rates are
also given as ratios to the broker alone, the bridge and Node-RED measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiomqtt  # noqa: E402
import httpx  # noqa: E402

from bench.cpu import CpuSnapshot, CpuUsage, peak_rss_mb, snapshot, usage  # noqa: E402
from bench.node_red import MEASUREMENT as NODE_RED_MEASUREMENT  # noqa: E402
from bench.node_red import VERSION as NODE_RED_VERSION  # noqa: E402
from bench.node_red import running_node_red  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from harness.plant import PlantStack  # noqa: E402
from harness.servers import LOOPBACK, InfluxServer, MosquittoServer, free_port  # noqa: E402

SECTION = "MQTT device burst (device path against its peers)"
ENTERPRISE, PLANT, SOURCE = "burst", "burst-plant", "devices"
PIPELINES = ("broker alone", "Python bridge", "Node-RED", "plantkpi")


DEVICE_BROKER_CONFIG = ["max_queued_messages 10000000"]
"""A burst longer than the broker's queue per subscriber (1,000 by default, 100,000 in the
test servers) would be cut by the broker, which drops QoS 1 messages for a subscriber whose
queue is full; a plant's broker sized for bursts holds them all."""
STALL_S = 60.0
"""Seconds without a new sample written before a run is declared stuck."""


class BurstError(RuntimeError):
    """A run could not be measured (a component died, samples never arrived)."""


@dataclass(frozen=True)
class Run:
    pipeline: str
    qos: int
    messages: int
    seconds: float
    """First publish → last message received (broker alone) or written."""
    stored: int
    """Counted in InfluxDB afterwards (the broker alone: messages received)."""
    cpu_s: dict[str, float]
    machine_busy: float
    """Share of the machine's CPU time (both cores) that was busy, whoever used it."""
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    written: int | None = None
    """plantkpi: samples the collector wrote, re-deliveries included (≥ stored)."""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def register_yaml(topics: int, qos: int, stamp: str = "device") -> str:
    """``stamp``: ``device`` takes each sample's time from its message (``ts``), ``edge``
    leaves it to the edge's receive time."""
    timestamp = ", timestamp_path: ts" if stamp == "device" else ", timestamp_path: null"
    lines = [
        "version: bench-mqtt-burst",
        f"enterprise: {{id: {ENTERPRISE}, region: Bench, above_designated_size: true}}",
        "plants:",
        f"- id: {PLANT}",
        "  sources:",
        f"  - {{id: {SOURCE}, kind: mqtt, broker: 'mqtt://127.0.0.1:1883', qos: {qos}}}",
        "  lines:",
        "  - id: l1",
        "    processes:",
    ]
    for t in range(topics):
        lines += [
            f"    - id: t{t}",
            f"      name: Topic {t}",
            "      key: true",
            "      industry: discrete",
            "      signals:",
            f"      - {{id: v, role: parameter, source: {SOURCE}, topic: 'burst/t{t}/v',"
            f" path: value{timestamp}, interval: 1s}}",
        ]
    return "\n".join(lines) + "\n"


def message_files(folder: Path, messages: int, topics: int) -> list[Path]:
    """One file per topic, a JSON message per line; source times 1 ms apart, an hour ago."""
    base_ms = time.time_ns() // 1_000_000 - 3_600_000
    per_topic = [messages // topics + (1 if t < messages % topics else 0) for t in range(topics)]
    files = []
    for t, count in enumerate(per_topic):
        path = folder / f"t{t}.jsonl"
        path.write_text(
            "".join(f'{{"value":{k % 1000 + 0.5},"ts":{base_ms + k}}}\n' for k in range(count))
        )
        files.append(path)
    return files


async def publish(broker: MosquittoServer, files: list[Path], qos: int) -> None:
    """Every file on its topic, the publishers in parallel; returns once all are sent."""
    procs = []
    for t, path in enumerate(files):
        with path.open("rb") as stdin:
            procs.append(
                await asyncio.create_subprocess_exec(
                    "mosquitto_pub",
                    *("-h", broker.host, "-p", str(broker.port), "-q", str(qos)),
                    *("-t", f"burst/t{t}/v", "-l", "-i", f"bench-pub-{t}"),
                    stdin=stdin,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
    for proc in procs:
        _, err = await proc.communicate()
        if proc.returncode:
            raise BurstError(f"mosquitto_pub failed ({proc.returncode}): {err.decode()[-500:]}")


def _cpu(before: CpuSnapshot, after: CpuSnapshot, wall: float) -> CpuUsage:
    return usage(before, after, wall)


async def broker_alone(device: MosquittoServer, files: list[Path], messages: int, qos: int) -> Run:
    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub",
        *("-h", device.host, "-p", str(device.port), "-q", str(qos)),
        *("-t", "burst/#", "-C", str(messages), "-i", "bench-sub"),
        stdout=subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # subscribed
    pids = {"mosquitto (device)": device.pid or 0}
    before = snapshot(pids)
    started = time.monotonic()
    await publish(device, files, qos)
    await asyncio.wait_for(sub.wait(), 600)
    seconds = time.monotonic() - started
    cpu = _cpu(before, snapshot(pids), seconds)
    return Run("broker alone", qos, messages, seconds, messages, cpu.seconds, cpu.machine_busy)


async def python_bridge(
    device: MosquittoServer, influx: InfluxServer, files: list[Path], messages: int, qos: int
) -> Run:
    database = f"bench_burst_bridge_{time.time_ns()}"
    await asyncio.to_thread(influx.create_database, database)
    bridge = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "mqtt_bridge.py"),
        *(device.url, "burst/#", str(qos), influx.url, database, str(messages)),
        stdout=subprocess.PIPE,
    )
    try:
        assert bridge.stdout is not None
        ready = await asyncio.wait_for(bridge.stdout.readline(), 30)
        if ready.strip() != b"ready":
            raise BurstError(f"the bridge did not start: {ready!r}")
        await asyncio.sleep(0.5)  # subscribed
        pids = {
            "mosquitto (device)": device.pid or 0,
            "bridge": bridge.pid,
            "influxd": influx.pid or 0,
        }
        before = snapshot(pids)
        started = time.time()
        await publish(device, files, qos)
        out, _ = await asyncio.wait_for(bridge.communicate(), 600)
        result = json.loads(out.decode().strip().splitlines()[-1])
        seconds = result["done"] - started
        used = _cpu(before, snapshot({k: v for k, v in pids.items() if k != "bridge"}), seconds)
        cpu = {**used.seconds, "bridge": result["cpu_s"]}  # it has exited: its own count
        rss = {"bridge": result["peak_rss_mb"]}
        stored = await count(influx, database, "bridge")
    finally:
        if bridge.returncode is None:
            bridge.kill()
            await bridge.wait()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(influx.drop_database, database)
    return Run("Python bridge", qos, messages, seconds, stored, cpu, used.machine_busy, rss)


async def node_red(
    device: MosquittoServer,
    influx: InfluxServer,
    files: list[Path],
    messages: int,
    qos: int,
    workdir: Path,
) -> Run:
    database = f"bench_burst_node_red_{time.time_ns()}"
    await asyncio.to_thread(influx.create_database, database)
    try:
        async with (
            running_node_red(
                workdir,
                (device.host, device.port),
                "burst/#",
                qos,
                (LOOPBACK, influx.port),
                database,
            ) as red,
            httpx.AsyncClient() as http,
        ):
            pids = {
                "mosquitto (device)": device.pid or 0,
                "Node-RED": red.pid,
                "influxd": influx.pid or 0,
            }
            before = snapshot(pids)
            started = time.time()  # the flow stamps its writes with the wall clock
            publishing = asyncio.create_task(publish(device, files, qos))
            written, progressed_at = 0, time.monotonic()
            while True:
                try:
                    progress = await red.progress(http)
                except httpx.TimeoutException:
                    progress = None  # its one thread is busy with the flow: ask again
                if progress is not None:
                    red.check(progress)
                    if progress.written >= messages:
                        break
                    if progress.written != written:
                        written, progressed_at = progress.written, time.monotonic()
                if time.monotonic() - progressed_at > STALL_S:
                    raise BurstError(
                        f"Node-RED: {written:,} of {messages:,} written, none for "
                        f"{STALL_S:.0f} s\n{red.log_tail()}"
                    )
                await asyncio.sleep(0.05)
            seconds = progress.last_write - started
            await publishing
            used = _cpu(before, snapshot(pids), time.time() - started)
            rss = {"Node-RED": peak_rss_mb(red.pid)}
        stored = await count(influx, database, NODE_RED_MEASUREMENT)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(influx.drop_database, database)
    return Run("Node-RED", qos, messages, seconds, stored, used.seconds, used.machine_busy, rss)


@dataclass(frozen=True)
class RunningPipeline:
    """A started plantkpi device path: its stack, its database and the pids to measure."""

    stack: PlantStack
    database: str
    pids: dict[str, int]
    """edge, collector, both brokers and influxd."""

    def peak_rss_mb(self) -> dict[str, float]:
        return {name: peak_rss_mb(self.pids[name]) for name in ("edge", "collector")}


@contextlib.asynccontextmanager
async def running_plantkpi(
    device: MosquittoServer,
    central: MosquittoServer,
    influx: InfluxServer,
    register_text: str,
    workdir: Path,
    *,
    edge_env: dict[str, str] | None = None,
) -> AsyncIterator[RunningPipeline]:
    """device broker → edge → central broker → collector → influxd, with a database of
    its own, until the edge is subscribed and its uplink connected; stopped afterwards."""
    database = f"bench_plantkpi_{time.time_ns()}"
    await asyncio.to_thread(influx.create_database, database)
    register = workdir / "register.yaml"
    await asyncio.to_thread(_write_register, register, register_text)
    env = {
        "COLLECTOR_INFLUX__URL": influx.url,
        "COLLECTOR_INFLUX__MODE": "v1",
        "COLLECTOR_INFLUX__DATABASE": database,
    }
    stack = PlantStack(register, register, central.url, env, workdir, device_broker_url=device.url)
    try:
        collector = stack.start_collector(period="1h", api_port=free_port())
        await asyncio.to_thread(stack.wait_for_api)
        (edge,) = stack.start_edges(env=edge_env)
        async with httpx.AsyncClient() as http:
            await _edge_ready(http, stack)
        pids = {
            "mosquitto (device)": device.pid or 0,
            "edge": edge.proc.pid,
            "mosquitto (central)": central.pid or 0,
            "collector": collector.proc.pid,
            "influxd": influx.pid or 0,
        }
        yield RunningPipeline(stack, database, pids)
    finally:
        await asyncio.to_thread(stack.stop_all)
        await _forget_device_session(device, f"plantkpi-edge-{PLANT}-{SOURCE}")
        with contextlib.suppress(Exception):
            await asyncio.to_thread(influx.drop_database, database)


async def _forget_device_session(device: MosquittoServer, client_id: str) -> None:
    """Drop the edge's persistent session on the device broker: left there, it would
    collect every message the next pipelines are sent, and the next plantkpi run (same
    client id) would start by taking them all."""
    async with aiomqtt.Client(
        device.host,
        device.port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=True,
    ):
        pass  # a clean start discards the old session; this one expires at disconnect


async def plantkpi(
    device: MosquittoServer,
    central: MosquittoServer,
    influx: InfluxServer,
    files: list[Path],
    messages: int,
    qos: int,
    workdir: Path,
    stamp: str = "device",
) -> Run:
    register_text = register_yaml(len(files), qos, stamp)
    async with running_plantkpi(device, central, influx, register_text, workdir) as pipeline:
        stack, pids = pipeline.stack, pipeline.pids
        async with httpx.AsyncClient() as http:
            before = snapshot(pids)
            started = time.monotonic()
            publishing = asyncio.create_task(publish(device, files, qos))
            progress, progressed_at = 0, started
            while (written := await _written(http, stack.api_url)) < messages:
                stack.check_alive()
                now = time.monotonic()
                if written != progress:
                    progress, progressed_at = written, now
                elif now - progressed_at > STALL_S:
                    raise BurstError(
                        f"{written:,} of {messages:,} samples written, none for {STALL_S:.0f} s"
                        f"\n{await _counters(http, stack)}\n{device.log_tail()}\n{stack.logs()}"
                    )
                await asyncio.sleep(0.05)
            seconds = time.monotonic() - started
            await publishing
            used = _cpu(before, snapshot(pids), seconds)
            rss = pipeline.peak_rss_mb()
            health = (await http.get(stack.edge_health_urls[PLANT], timeout=5)).json()
        # The collector counts every write, re-deliveries included: what is stored is
        # counted once nothing more arrives.
        stored = await _settled_count(influx, pipeline.database)
        async with httpx.AsyncClient() as http:
            written = await _written(http, stack.api_url)
        source = health["sources"][SOURCE]
        if source.get("reconnects") or health["uplink"].get("connects", 1) > 1:
            print(f"plantkpi QoS {qos}: reconnects during the run: {health}", file=sys.stderr)
    return Run(
        "plantkpi", qos, messages, seconds, stored, used.seconds, used.machine_busy, rss, written
    )


def _write_register(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(text)


async def _edge_ready(http: httpx.AsyncClient, stack: PlantStack) -> None:
    url = stack.edge_health_urls[PLANT]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack.check_alive()
        with contextlib.suppress(httpx.HTTPError, ValueError):
            report = (await http.get(url, timeout=2)).json()
            source = report["sources"].get(SOURCE, {})
            if source.get("state") == "subscribed" and report["uplink"]["state"] == "connected":
                return
        await asyncio.sleep(0.2)
    raise BurstError(f"the edge did not subscribe\n{stack.logs()}")


async def _counters(http: httpx.AsyncClient, stack: PlantStack) -> str:
    """The collector's ingest counters and the edge's health, to tell where samples stopped."""
    parts = []
    for name, url in (
        ("collector stats", f"{stack.api_url}/api/v1/stats"),
        ("edge health", stack.edge_health_urls[PLANT]),
    ):
        try:
            parts.append(f"{name}: {(await http.get(url, timeout=5)).text}")
        except httpx.HTTPError as exc:
            parts.append(f"{name}: {exc!r}")
    return "\n".join(parts)


async def _written(http: httpx.AsyncClient, api_url: str) -> int:
    try:
        stats = (await http.get(f"{api_url}/api/v1/stats", timeout=2)).json()
    except (httpx.HTTPError, ValueError):
        return 0
    return int(stats.get("samples_written", 0))


async def _settled_count(influx: InfluxServer, database: str, quiet_s: float = 3.0) -> int:
    """The count of stored samples once it has not changed for ``quiet_s``."""
    last, since = -1, time.monotonic()
    while True:
        now = await count(influx, database, "sample")
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
        await asyncio.sleep(0.5)


async def count(influx: InfluxServer, database: str, measurement: str) -> int:
    field = "status" if measurement == "sample" else "value"
    result = await asyncio.to_thread(
        influx.query, f'SELECT count("{field}") FROM "{measurement}"', database
    )
    return sum(
        int(row[1])
        for statement in result.get("results", [])
        for series in statement.get("series", []) or []
        for row in series["values"]
    )


async def run_all(args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        files = message_files(root, args.messages, args.topics)
        with (
            MosquittoServer(root / "device", extra_config=DEVICE_BROKER_CONFIG) as device,
            MosquittoServer(root / "central") as central,
            InfluxServer(root / "influx") as influx,
        ):
            for qos in args.qos:
                for n in range(args.runs):
                    for name in PIPELINES:
                        if name == "broker alone":
                            run = await broker_alone(device, files, args.messages, qos)
                        elif name == "Python bridge":
                            run = await python_bridge(device, influx, files, args.messages, qos)
                        elif name == "Node-RED":
                            workdir = root / f"node-red-q{qos}-{n}"
                            run = await node_red(device, influx, files, args.messages, qos, workdir)
                        else:
                            workdir = root / f"plantkpi-q{qos}-{n}"
                            run = await plantkpi(
                                device,
                                central,
                                influx,
                                files,
                                args.messages,
                                qos,
                                workdir,
                                args.stamp,
                            )
                        print(
                            f"QoS {qos} run {n + 1} {name}: {run.rate:,.0f} msgs/s, "
                            f"stored {run.stored:,}, RSS {run.peak_rss_mb}",
                            file=sys.stderr,
                        )
                        runs.append(run)
    return runs


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


STAMPS = {
    "device": "plantkpi takes each sample's time from its message: an hour old when "
    "published, so every sample is also stored as a `reconfirm` point (docs/schema.md): "
    "two points per message where the peers write one.",
    "edge": "plantkpi stamps each sample with the edge's receive time (live data: one point "
    "per message, like the peers).",
}
PEERS = ("broker alone", "Python bridge", "Node-RED")
"""The pipelines every other one's rate is also given as a ratio to."""


def render(runs: list[Run], args: argparse.Namespace, command: str) -> str:
    rows = [
        "| QoS | pipeline | msgs/s (median) | vs broker alone | vs Python bridge | vs Node-RED "
        "| stored / sent | CPU s per 100k msgs (median) | machine busy | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for qos in args.qos:
        of = {name: [r for r in runs if r.qos == qos and r.pipeline == name] for name in PIPELINES}
        for name in PIPELINES:
            mine = of[name]
            # Ratios pair by pair (run n against run n of the same QoS): the machine drifts.
            ratios = " | ".join(
                f"{_median([a.rate / b.rate for a, b in zip(mine, of[peer], strict=True)]):.2f}×"
                for peer in PEERS
            )
            stored = min(r.stored for r in mine)
            writes = [r.written for r in mine if r.written is not None]
            rewritten = f" (written {max(writes):,})" if writes and max(writes) > stored else ""
            cpu = {
                proc: _median([r.cpu_s.get(proc, 0.0) * 100_000 / r.messages for r in mine])
                for proc in mine[0].cpu_s
            }
            cpu_text = ", ".join(f"{proc} {s:.1f}" for proc, s in cpu.items())
            busy = _median([r.machine_busy for r in mine])
            rss = ", ".join(
                f"{proc} {_median([r.peak_rss_mb[proc] for r in mine]):.0f} MB"
                for proc in mine[0].peak_rss_mb
            )
            rows.append(
                f"| {qos} | {name} | {_median([r.rate for r in mine]):,.0f} | {ratios} "
                f"| {stored:,} / {args.messages:,}{rewritten} | {cpu_text} | {busy:.0%} "
                f"| {rss or '—'} |"
            )
    return "\n".join(
        [
            f"Measured {datetime.now(UTC):%Y-%m-%d}; command: `{command}`. "
            f"{args.messages:,} single-sample JSON messages on {args.topics} topics, "
            f"published with `mosquitto_pub -l` (one per topic, in parallel); {args.runs} runs "
            "per QoS, each pipeline in turn; ratios are medians of the ratios run by run. "
            f"Node-RED {NODE_RED_VERSION} runs `mqtt in` → `join` (5,000 points or 100 ms) → "
            "`influxdb batch` (`bench/node_red.py`). *Machine busy*: the share of both cores' "
            "time in use during the run, by any process (publishers and the bench included). "
            + STAMPS[args.stamp],
            "",
            *machine_description(),
            "",
            *rows,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--qos", type=lambda s: [int(q) for q in s.split(",")], default=[0, 1])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--stamp",
        choices=("device", "edge"),
        default="device",
        help="plantkpi's sample times: the messages' own (an hour old when published, so "
        "every sample is also stored as a reconfirm point, docs/schema.md) or the edge's "
        "receive time (live data)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs = asyncio.run(run_all(args))
    command = "python bench/mqtt_burst.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = render(runs, args, command)
    print(body)
    if args.out:
        replace_section(args.out, SECTION, body)


if __name__ == "__main__":
    main()
