"""End-to-end latency of the device path: source time → stored, at a paced offered rate.

    .venv/bin/python bench/mqtt_latency.py [--rates 1000,10000,20000] [--seconds 20]
        [--qos 1] [--topics 50] [--publishers 2] [--out docs/benchmarks.md]

Per QoS and offered rate, a fresh plantkpi pipeline (device mosquitto → edge agent, every
sample on disk before the device's message is acknowledged → central mosquitto →
collector → influxd, default settings) takes ``--seconds`` of paced JSON samples from
``--publishers`` processes (``bench/paced_publisher.py``), each sample stamped with its
send time. The collector observes every stored sample's age when its write is
acknowledged (``plantkpi_sample_age_at_write_seconds``, collector/ingest/ages.py); the
percentiles are read from that histogram (interpolated within its buckets, as Prometheus'
``histogram_quantile``). *Written samples/s* is what was sent over the time from the
first publish to the last write: below the offered rate, the pipeline was the limit and
the ages are mostly its queue. Also: how far the publishers ever fell behind their pace (the
load generator must not be the limit), what was stored against what was sent, CPU per
process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bench.cpu import snapshot, usage  # noqa: E402
from bench.mqtt_burst import _written, count, running_plantkpi  # noqa: E402
from bench.mqtt_burst import register_yaml as burst_register  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from collector.ingest.ages import AGE_BUCKETS, SampleAges  # noqa: E402
from harness.servers import InfluxServer, MosquittoServer  # noqa: E402

SECTION = "Device path latency (source time to stored)"
AGES = "plantkpi_sample_age_at_write_seconds"


class LatencyError(RuntimeError):
    """A run could not be measured."""


@dataclass(frozen=True)
class Run:
    qos: int
    offered: int
    sent: int
    stored: int
    written: int
    seconds: float
    """First publish → last sample written."""
    behind_max_s: float
    ages: SampleAges
    cpu_s: dict[str, float]
    peak_rss_mb: dict[str, float]


async def scraped_ages(http: httpx.AsyncClient, api_url: str) -> SampleAges:
    """The collector's histogram of sample ages, from ``/metrics``."""
    text = (await http.get(f"{api_url}/metrics", timeout=5)).text
    cumulative: dict[float, float] = {}
    ages = SampleAges()
    for family in text_string_to_metric_families(text):
        if family.name == AGES:
            for sample in family.samples:
                if sample.name == f"{AGES}_bucket":
                    cumulative[float(sample.labels["le"])] = sample.value
                elif sample.name == f"{AGES}_sum":
                    ages.sum_s = sample.value
    below = 0
    for k, bound in enumerate((*AGE_BUCKETS, float("inf"))):
        running = int(cumulative.get(bound, below))
        ages.counts[k] = running - below
        below = running
    ages.total = below
    return ages


async def measure(
    device: MosquittoServer,
    central: MosquittoServer,
    influx: InfluxServer,
    args: argparse.Namespace,
    qos: int,
    rate: int,
    workdir: Path,
) -> Run:
    register_text = burst_register(args.topics, qos)
    edge_env = dict(args.edge_env)
    async with running_plantkpi(
        device, central, influx, register_text, workdir, edge_env=edge_env
    ) as pipeline:
        stack, pids = pipeline.stack, pipeline.pids
        async with httpx.AsyncClient() as http:
            before = snapshot(pids)
            started = time.monotonic()
            share = rate / args.publishers
            publishers = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(ROOT / "bench" / "paced_publisher.py"),
                    *(device.host, str(device.port), str(qos), f"{share}", str(args.seconds)),
                    *("burst", str(args.topics), str(k), str(args.publishers)),
                    stdout=asyncio.subprocess.PIPE,
                )
                for k in range(args.publishers)
            ]
            results = []
            for proc in publishers:
                out, _ = await proc.communicate()
                if proc.returncode:
                    raise LatencyError(f"a publisher failed ({proc.returncode})")
                results.append(json.loads(out.decode().strip().splitlines()[-1]))
            sent = sum(r["sent"] for r in results)
            # A pipeline slower than the offered rate drains its queue afterwards: its
            # latency is then mostly that queue (the table's stored/s says so).
            drain_s = 120 + 10 * args.seconds
            deadline = time.monotonic() + drain_s
            while (written := await _written(http, stack.api_url)) < sent:
                stack.check_alive()
                if time.monotonic() > deadline:
                    raise LatencyError(f"{written} of {sent} written after {drain_s:.0f} s")
                await asyncio.sleep(0.1)
            seconds = time.monotonic() - started
            cpu = usage(before, snapshot(pids), seconds).seconds
            rss = pipeline.peak_rss_mb()
            ages = await scraped_ages(http, stack.api_url)
        stored = await count(influx, pipeline.database, "sample")
    behind = max(r["behind_max_s"] for r in results)
    return Run(qos, rate, sent, stored, written, seconds, behind, ages, cpu, rss)


async def run_all(args: argparse.Namespace) -> list[Run]:
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with (
            MosquittoServer(root / "device") as device,
            MosquittoServer(root / "central") as central,
            InfluxServer(root / "influx") as influx,
        ):
            for qos in args.qos:
                for rate in args.rates:
                    workdir = root / f"q{qos}-{rate}"
                    run = await measure(device, central, influx, args, qos, rate, workdir)
                    print(
                        f"QoS {qos} at {rate:,}/s: p50 {_ms(run.ages.quantile(0.5))}, "
                        f"p99 {_ms(run.ages.quantile(0.99))}, stored {run.stored:,} of "
                        f"{run.sent:,}, publishers behind at most {run.behind_max_s:.3f} s",
                        file=sys.stderr,
                    )
                    runs.append(run)
    return runs


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.0f} ms"


def render(runs: list[Run], args: argparse.Namespace, command: str) -> str:
    day = datetime.now(UTC).date().isoformat()
    out = [
        f"Measured {day}; command: `{command}`. Per QoS and offered rate, a fresh pipeline "
        "with default settings; the publishers send for "
        f"{args.seconds} s on {args.topics} topics from {args.publishers} processes, every "
        "sample stamped with its send time"
        + "".join(f"; `{k}={v}`" for k, v in args.edge_env)
        + ". The ages are the collector's histogram "
        "`plantkpi_sample_age_at_write_seconds` (percentiles interpolated within its "
        "buckets).",
        "",
        *machine_description(),
        "",
        "| QoS | offered samples/s | written samples/s | p50 | p90 | p99 | mean | stored / sent "
        "| publishers behind at most | CPU s per 10k samples | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        mean = run.ages.sum_s / run.ages.total if run.ages.total else None
        per = 10_000 / run.sent if run.sent else 0.0
        cpu = ", ".join(f"{name} {s * per:.2f}" for name, s in run.cpu_s.items() if s > 0)
        rss = ", ".join(f"{name} {mb:.0f} MB" for name, mb in run.peak_rss_mb.items())
        out.append(
            f"| {run.qos} | {run.offered:,} | {run.sent / run.seconds:,.0f} "
            f"| {_ms(run.ages.quantile(0.5))} "
            f"| {_ms(run.ages.quantile(0.9))} | {_ms(run.ages.quantile(0.99))} | {_ms(mean)} "
            f"| {run.stored:,} / {run.sent:,} | {run.behind_max_s:.3f} s | {cpu} | {rss} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates", type=lambda s: [int(r) for r in s.split(",")], default=[1000, 10000, 20000]
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--qos", type=lambda s: [int(q) for q in s.split(",")], default=[1])
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument(
        "--edge-env",
        action="append",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        help="an edge setting for every run, e.g. EDGE_FLUSH_INTERVAL=0.2s (repeatable)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs = asyncio.run(run_all(args))
    command = "python bench/mqtt_latency.py " + " ".join(argv or sys.argv[1:])
    body = render(runs, args, command.strip())
    print(body)
    if args.out:
        replace_section(args.out, SECTION, body)


if __name__ == "__main__":
    main()
