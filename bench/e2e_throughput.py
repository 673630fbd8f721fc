"""End-to-end throughput: how many samples/s reach InfluxDB, against InfluxDB's own rate.

    .venv/bin/python bench/e2e_throughput.py [--signals N ...] [--seconds S] [--out FILE]

Starts a real mosquitto and influxd, measures InfluxDB's raw ``/write`` rate (the
baseline, same run, same machine), then runs a synthetic plant of each size through the
whole pipeline (simulators → edge → MQTT → collector → InfluxDB, each a real process) and
writes the "End-to-end throughput" section of ``docs/benchmarks.md``. Absolute rates on a
noisy 2-core machine move between runs; the ratios against the baseline are the figures
to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.pipeline_run import (  # noqa: E402
    SOURCE_LABELS,
    SOURCES,
    BenchError,
    Percentiles,
    PipelineResult,
    RunTiming,
    run_pipeline,
)
from bench.raw_write import RawWriteResult, make_bodies, send_bodies  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from bench.scaled_plant import PlantSize  # noqa: E402
from harness.servers import InfluxServer, MosquittoServer  # noqa: E402

SECTION = "End-to-end throughput"
DEFAULT_SIGNALS = (100, 500)
"""Periodic signals at 100 ms: ~1,000 and ~5,000 samples/s offered."""
_SATURATED = 0.85
"""A single-event-loop Python process above this share of one core is at its limit."""


@dataclass(frozen=True)
class BenchResults:
    baseline: list[RawWriteResult]
    runs: list[PipelineResult]
    started: datetime
    command: str
    settings: str
    machine: list[str]

    @property
    def sequential_baseline(self) -> float:
        for result in self.baseline:
            if result.concurrency == 1:
                return result.points_per_s
        return math.nan


async def measure_baseline(
    influx: InfluxServer, *, batches: int, concurrency: Sequence[int] = (1, 2)
) -> list[RawWriteResult]:
    """Raw ``/write`` rate per concurrency, each into a fresh database dropped afterwards."""
    results = []
    start = time.time_ns() - 3600 * 10**9  # an hour back: realistic, and never in the future
    for index, n in enumerate(concurrency):
        database = f"bench_raw_{n}_{time.time_ns() // 1_000_000}"
        bodies = await asyncio.to_thread(make_bodies, batches, start_ns=start, seed=index)
        await asyncio.to_thread(influx.create_database, database)
        try:
            results.append(await send_bodies(influx.url, database, bodies, concurrency=n))
        finally:
            # Its compactions would otherwise take CPU from what is measured next.
            await asyncio.to_thread(influx.drop_database, database)
    return results


async def run_benchmark(
    sizes: Sequence[PlantSize],
    timing: RunTiming,
    *,
    baseline_batches: int,
    command: str,
    settings: str,
    workdir: Path | None = None,
    log: bool = True,
) -> BenchResults:
    """Start mosquitto and influxd, measure the baseline, then every size; stop all."""
    started = datetime.now(UTC)
    own_dir = workdir is None
    base = workdir or Path(tempfile.mkdtemp(prefix="plantkpi-bench-"))
    mosquitto = MosquittoServer(base / "mosquitto")
    influx = InfluxServer(base / "influxdb")
    try:
        await mosquitto.start_async()
        await influx.start_async()
        _say(log, f"servers up: {mosquitto.url}, {influx.url}; data in {base}")
        baseline = await measure_baseline(influx, batches=baseline_batches)
        for raw in baseline:
            _say(log, f"baseline {raw.mode}: {raw.points_per_s:,.0f} points/s")
        runs = []
        for size in sizes:
            _say(log, f"pipeline: {size.periodic_signals} signals, {size.offered_per_s:,.0f}/s")
            result = await run_pipeline(
                mosquitto,
                influx,
                size,
                base / f"run-{size.periodic_signals}",
                timing,
                keep_database=not own_dir,
            )
            _say(
                log,
                f"  produced {result.produced_per_s:,.0f}/s, stored {result.stored_per_s:,.0f}/s "
                f"({result.stored_ratio:.3f}), after drain {result.completeness:.4f}",
            )
            runs.append(result)
    finally:
        await influx.stop_async()
        await mosquitto.stop_async()
        if own_dir:
            await asyncio.to_thread(shutil.rmtree, base, True)
    return BenchResults(
        baseline, runs, started, command, settings, await asyncio.to_thread(machine_description)
    )


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(f"bench: {text}", flush=True)


# -- the report -----------------------------------------------------------------------------


def _num(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def _ms(p: Percentiles) -> str:
    return "n/a" if p.count == 0 else f"{p.p50:,.0f} / {p.p95:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


_COMPONENTS = ("simulators", "edge", "collector", "mosquitto", "influxd", "bench")
_PIPELINE = ("edge", "mosquitto", "collector", "influxd")


def pipeline_rows(results: BenchResults) -> list[list[str]]:
    """One row per figure, one column per plant size."""
    runs = results.runs
    base = results.sequential_baseline

    def row(label: str, values: list[str]) -> list[str]:
        return [label, *values]

    rows = [
        row(
            "periodic signals (at interval)",
            [f"{r.size.periodic_signals} ({r.size.interval_ms} ms)" for r in runs],
        ),
        row("offered samples/s", [_num(r.size.offered_per_s) for r in runs]),
        row("**produced samples/s** (ledger)", [_num(r.produced_per_s) for r in runs]),
        row(
            "**stored samples/s** (rows in window)",
            [_num(r.stored_per_s) for r in runs],
        ),
        row("**stored / produced**", [_num(r.stored_ratio, 4) for r in runs]),
        row(
            "produced late (handed over after the count), samples",
            [_num(r.produced_late) for r in runs],
        ),
        row("stored after drain / all produced", [_num(r.completeness, 4) for r in runs]),
        row(
            "**stored / raw sequential /write**",
            [_num(r.stored_per_s / base, 4) if base else "n/a" for r in runs],
        ),
        row("collector writes acknowledged/s", [_num(r.written_per_s) for r in runs]),
    ]
    for source in SOURCES:
        label = SOURCE_LABELS[source]
        rows.append(
            row(
                f"{label}: produced / stored per s",
                [
                    f"{_num(r.produced[source] / r.seconds)} / "
                    f"{_num(r.stored_in_time[source] / r.seconds)}"
                    for r in runs
                ],
            )
        )
    rows.append(
        row(
            "edge received/s, OPC UA / MQTT (its health reports)",
            [
                " / ".join(
                    "n/a" if (rate := r.edge_received_per_s[source]) is None else _num(rate)
                    for source in SOURCES
                )
                for r in runs
            ],
        )
    )
    for source in SOURCES:
        rows.append(
            row(
                f"{SOURCE_LABELS[source]} acquisition latency p50 / p95 (ms)",
                [_ms(r.acquisition_ms[source]) for r in runs],
            )
        )
    for source in SOURCES:
        rows.append(
            row(
                f"{SOURCE_LABELS[source]} freshness p50 / p95 (ms)",
                [_ms(r.freshness_ms[source]) for r in runs],
            )
        )
    for name in _COMPONENTS:
        rows.append(
            row(
                f"CPU {name}: % of one core (ms per 1,000 stored)",
                [
                    f"{r.cpu.core_share(name) * 100:.0f} % "
                    f"({_num(1e6 * r.cpu.seconds[name] / max(r.stored_total, 1), 1)})"
                    for r in runs
                ],
            )
        )
    rows += [
        row("machine busy (all cores)", [f"{r.cpu.machine_busy * 100:.0f} %" for r in runs]),
        row(
            "edge buffer / collector queue at window end",
            [
                f"{'n/a' if r.edge_buffer_end is None else r.edge_buffer_end} samples / "
                f"{r.collector_queue_end} batches"
                for r in runs
            ],
        ),
        row(
            "KPI recompute of the window: s (stored samples/s read+evaluated)",
            [_recompute(r) for r in runs],
        ),
    ]
    return rows


def _recompute(r: PipelineResult) -> str:
    if r.kpi_recompute_s is None:
        return "n/a"
    return f"{r.kpi_recompute_s:.2f} ({_num(r.kpi_recompute_samples / r.kpi_recompute_s)})"


def reading(results: BenchResults) -> list[str]:
    """A few sentences generated from the figures: where the limit is."""
    out = []
    cores = _cores(results.machine)
    for r in results.runs:
        shares = {name: r.cpu.core_share(name) for name in _COMPONENTS if name != "bench"}
        busiest = max(shares, key=lambda name: shares[name])
        parts = [
            f"At {_num(r.size.offered_per_s)} samples/s offered, "
            f"{_num(r.produced_per_s)}/s were produced and {_num(r.stored_per_s)}/s stored "
            f"(stored/produced {r.stored_ratio:.3f}; "
            f"{r.stored_per_s / results.sequential_baseline:.1%} of InfluxDB's raw "
            "sequential rate)."
        ]
        pipeline = {name: shares[name] for name in _PIPELINE}
        heaviest = max(pipeline, key=lambda name: pipeline[name])
        parts.append(
            f"The busiest process was {busiest} at {shares[busiest]:.0%} of a core"
            + (
                f" (the load generator; of the pipeline: {heaviest} at {pipeline[heaviest]:.0%})"
                if busiest == "simulators"
                else ""
            )
            + f"; the machine was {r.cpu.machine_busy:.0%} busy over its {cores} cores."
        )
        saturated = [
            name for name in ("simulators", "edge", "collector") if shares[name] >= _SATURATED
        ]
        if r.produced_per_s < 0.95 * r.size.offered_per_s:
            parts.append(
                "The simulators could not produce the offered load, so the load generator, "
                "not the pipeline, set the rate."
            )
        # Stored after the count, less what the simulators themselves handed over late.
        late = r.stored_final_total - r.stored_total - r.produced_late
        if late > 0.02 * r.produced_count:
            where = []
            if r.edge_buffer_end:
                where.append(f"{r.edge_buffer_end:,} samples in the edge buffer")
            if r.collector_queue_end:
                where.append(f"{r.collector_queue_end} batches in the collector queue")
            parts.append(
                f"The pipeline fell behind: {late:,} samples of the window were stored only "
                f"after the {r.grace_s:g} s grace"
                + (f" (at the window's end: {', '.join(where)})" if where else "")
                + "."
            )
        elif r.stored_ratio >= 0.98:
            parts.append(
                "The pipeline kept up: what was produced was stored within the grace time."
            )
        if saturated:
            parts.append(
                f"{', '.join(saturated)} used at least {_SATURATED:.0%} of a core: a single "
                "Python event loop cannot go much further."
            )
        late_share = r.produced_late / max(r.produced_count, 1)
        if late_share > 0.01:
            parts.append(
                f"The simulators handed {r.produced_late:,} samples of the window over only "
                "after it was counted (their MQTT publisher fell behind): those count against "
                "the load generator, not the pipeline."
            )
        losses = {
            source: 1 - r.stored_final[source] / total
            for source in SOURCES
            if (total := r.produced_total[source])
        }
        if any(loss > 0.001 for loss in losses.values()):
            lost = ", ".join(
                f"{SOURCE_LABELS[source]} {loss:.2%}" for source, loss in losses.items() if loss > 0
            )
            parts.append(
                f"After draining, samples of the window were still missing ({lost}): lost, "
                "not late. Compare the edge's received rate with what was produced to see "
                "whether they were lost before the edge or after it."
            )
        out.append(" ".join(parts))
    if results.runs:
        last = results.runs[-1]
        capacity = []
        for name in ("edge", "collector"):
            per_sample = last.cpu.seconds[name] / max(last.stored_total, 1)
            if per_sample > 0:
                capacity.append(f"{name} ≈ {_num(1 / per_sample)} samples/s")
        pipeline_s = sum(last.cpu.seconds[name] for name in _PIPELINE)
        per_1000 = 1000 * pipeline_s / max(last.stored_total, 1)
        if capacity and per_1000 > 0:
            out.append(
                "CPU cost per sample at the largest size extrapolates to one full core at: "
                + ", ".join(capacity)
                + f". The whole pipeline ({', '.join(_PIPELINE)}) spent "
                f"{per_1000 * 1000:,.0f} ms of CPU per 1,000 samples stored, about "
                f"{_num(1000 / per_1000)} samples/s per core if nothing else ran (estimates: "
                "they ignore fixed costs and contention for the cores)."
            )
    return out


def _cores(machine: list[str]) -> str:
    for line in machine:
        if line.startswith("- cores"):
            return line.rsplit(":", 1)[1].strip()
    return "?"


def render_section(results: BenchResults) -> str:
    baseline_rows = [
        [
            r.mode,
            _num(r.batches),
            _num(r.points),
            f"{r.seconds:.2f}",
            _num(r.points_per_s),
            _num(r.points_per_s / results.sequential_baseline, 2),
        ]
        for r in results.baseline
    ]
    sizes = [f"{_num(r.size.offered_per_s)}/s offered" for r in results.runs]
    grace = results.runs[0].grace_s if results.runs else 0.0
    window = results.runs[0].seconds if results.runs else 0.0
    lines = [
        f"Run {results.started:%Y-%m-%d %H:%M} UTC with:",
        "",
        "```",
        results.command,
        "```",
        "",
        f"Settings: {results.settings}.",
        "",
        "Machine:",
        "",
        *results.machine,
        "",
        "### Baseline: InfluxDB raw `/write` (same run)",
        "",
        "5,000-line gzip bodies of `sample` points shaped like the pipeline's (500 series, "
        "100 ms apart, fields value, status, recv_ns, server_ns, edge, seq), built before "
        "the clock starts and POSTed with aiohttp.",
        "",
        *_table(
            ["mode", "batches", "points", "seconds", "points/s", "vs sequential"], baseline_rows
        ),
        "",
        "### Pipeline: simulators → edge → mosquitto → collector → InfluxDB",
        "",
        "One plant, one OPC UA source (subscription) and one MQTT device source, processes "
        "split evenly between them, each with an on-change `state` and 5 periodic "
        "parameters; every component a real process (`harness.plant.PlantStack`); "
        f"collector in v1 mode; the KPI loop idle during the window. Window ≈ {window:.0f} s "
        "after warm-up.",
        "",
        *_table(["figure", *sizes], pipeline_rows(results)),
        "",
        "### What is measured, and what is not",
        "",
        "- *produced*: simulator ledger records with a source time inside the window that "
        "the simulators had handed over (OPC UA: written to the server; MQTT: publish "
        "acknowledged by the broker) by the time the stored rows were counted. *Produced "
        "late*: records of the window handed over after that (a backlog in the simulators' "
        "MQTT publisher). *All produced* counts both; MQTT publishes cut off while the "
        "simulators stop can be stored without a ledger record, so *after drain / all "
        "produced* may exceed 1 slightly.",
        f"- *stored*: `sample` rows with a point time (the source time) inside the window, "
        f"counted {grace:.0f} s after it closed; a pipeline that falls behind by more than "
        "that shows stored < produced. *After drain*: the same count once the collector "
        "had been idle for 3 s (samples lost for good).",
        "- *acquisition latency*: the edge's `recv_ns` minus the source time: simulator "
        "tick (≤ 100 ms) plus, for OPC UA, the subscription's publishing interval (500 ms).",
        "- *edge received/s*: the edge's own counters (OPC UA notifications, MQTT "
        "messages) between the two of its health reports (every 5 s) nearest the window; "
        "below *produced* means samples were lost before reaching the edge.",
        "- *freshness*: about once a second (random pauses), now minus the source time of "
        "the newest stored sample of one probe signal per source. It includes the edge's "
        "uplink batching (`EDGE_FLUSH_INTERVAL`) and the collector's write grouping "
        "(≤ 200 ms), and is an upper estimate of end-to-end latency. The true end-to-end "
        "latency (source time → written) is the collector's histogram "
        '`plantkpi_sample_age_at_write_seconds`, measured at paced rates in "Device path '
        'latency".',
        "- *CPU*: utime + stime from `/proc/<pid>/stat` over the window (all threads). "
        "The simulators' share includes writing the ledger; *bench* is this script "
        "(two InfluxQL probe queries per second). *Machine busy* counts every process on "
        "the machine, including any outside the benchmark.",
        "- *KPI recompute*: `GET /api/v1/recompute` over the window after the run: the "
        "KPI's read path (InfluxQL → evaluate) in stored samples per second. The live KPI "
        "loop reads its whole window every period, so this rate bounds the window × "
        "sample-rate it can sustain.",
        "",
        "### Reading",
        "",
        *(f"- {text}" for text in reading(results)),
    ]
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="End-to-end throughput benchmark (see docs/benchmarks.md)."
    )
    parser.add_argument(
        "--signals",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIGNALS),
        metavar="N",
        help="periodic signals per run, one run per value (default: 100 500)",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before the window")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds before counting")
    parser.add_argument("--interval-ms", type=int, default=100, help="periodic signal interval")
    parser.add_argument("--params-per-process", type=int, default=5)
    parser.add_argument(
        "--baseline-batches", type=int, default=100, help="5,000-line batches per baseline mode"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report file"
    )
    parser.add_argument("--no-kpi", action="store_true", help="skip the KPI recompute timing")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep server data, databases, logs and ledgers in this new folder "
        "(default: a temp folder, deleted)",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.grace < 0 or args.baseline_batches < 1:
        parser.error("--seconds must be positive, --warmup/--grace not negative, batches ≥ 1")
    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"--workdir {args.workdir} is not empty (servers would reuse old data)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sizes = [PlantSize(n, args.params_per_process, args.interval_ms) for n in args.signals]
    except ValueError as exc:
        print(f"e2e_throughput: {exc}", file=sys.stderr)
        return 2
    timing = RunTiming(
        seconds=args.seconds, warmup=args.warmup, grace=args.grace, kpi_recompute=not args.no_kpi
    )
    given = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join([".venv/bin/python", "bench/e2e_throughput.py", *given])
    settings = (
        f"signals {' '.join(map(str, args.signals))}, window {args.seconds:g} s, warm-up "
        f"{args.warmup:g} s, grace {args.grace:g} s, interval {args.interval_ms} ms, "
        f"{args.params_per_process} parameters per process, baseline "
        f"{args.baseline_batches} × 5,000 lines per mode"
    )
    try:
        results = asyncio.run(
            run_benchmark(
                sizes,
                timing,
                baseline_batches=args.baseline_batches,
                command=command,
                settings=settings,
                workdir=args.workdir,
            )
        )
    except BenchError as exc:
        print(f"e2e_throughput: {exc}", file=sys.stderr)
        return 1
    section = render_section(results)
    replace_section(args.out, SECTION, section)
    print(section)
    print(f"\nbench: wrote section {SECTION!r} of {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
