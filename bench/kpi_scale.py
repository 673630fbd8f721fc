"""The live KPI loop at plant scale: cost of one period over a 1 h window.

    .venv/bin/python bench/kpi_scale.py [--signals 600,3000] [--window 3600] [--period 60]
        [--steps 3] [--out docs/benchmarks.md]

Starts its own influxd. For each plant size, in a child process of its own (so its peak
RSS is its own): a register of ``signals / 5`` key processes, each an on-change state and
four 1 s periodic parameters; the window's samples are written straight into influxd
(line protocol, in minute-sized chunks), then the loop is advanced ``steps`` periods: each
step writes one period of new samples and runs one live evaluation
(``KpiService.compute`` of the window ending at the new period), measuring its wall time,
this process's CPU time, the samples it read, influxd's CPU time, and the process's peak
RSS after it.

This is today's loop (every period re-reads the whole window): the figures of issue 12's
"before". The incremental evaluation will be measured against them in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

from bench.cpu import process_cpu_s  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from collector.kpi.inputs import Window  # noqa: E402
from collector.kpi.service import KpiService  # noqa: E402
from collector.kpi.thresholds import Thresholds  # noqa: E402
from collector.storage.lineprotocol import StoredSample, sample_line  # noqa: E402
from collector.storage.reader import InfluxQLReader, SignalColumns  # noqa: E402
from collector.storage.settings import InfluxSettings  # noqa: E402
from collector.storage.writer import make_writer  # noqa: E402
from common.register_loader import LoadedRegister, parse_register  # noqa: E402
from tests.support.servers import InfluxServer  # noqa: E402

S = 1_000_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z: the first window's start
PARAMETERS = 4
ENTERPRISE, PLANT = "bench-ent", "bench-plant"
TITLE = "KPI evaluation at plant scale (live loop, full re-read)"
NOTE = (
    "Reading the window is the cost: influxd spends as much CPU answering as the collector "
    "spends decoding and evaluating, both grow with window × rate, and at 3,000 signals one "
    "period's evaluation takes about as long as the 60 s period itself and needs a request "
    "timeout far above the default 10 s (`COLLECTOR_INFLUX__TIMEOUT`; the benchmark sets "
    "600 s). Peak RSS is about 340 bytes per sample read."
)


@dataclass(frozen=True)
class Step:
    wall_s: float
    cpu_s: float
    """This process's CPU seconds during the evaluation (read, decode, evaluate)."""
    samples_read: int
    influxd_cpu_s: float


@dataclass(frozen=True)
class SizeResult:
    signals: int
    processes: int
    samples_in_window: int
    write_s: float
    steps: list[Step]
    peak_rss_mb: float


def register_yaml(processes: int) -> str:
    lines = [
        "version: bench-kpi-scale",
        f"enterprise: {{id: {ENTERPRISE}, region: Bench, above_designated_size: true}}",
        "plants:",
        f"- id: {PLANT}",
        "  sources:",
        "  - {id: plc, kind: opcua, endpoint: 'opc.tcp://127.0.0.1:4840',"
        " security: {policy: None, mode: None}}",
        "  lines:",
    ]
    for line_no in range((processes + 19) // 20):
        lines += [f"  - id: l{line_no}", "    processes:"]
        for p in range(line_no * 20, min(processes, line_no * 20 + 20)):
            lines += [
                f"    - id: m{p}",
                f"      name: M{p}",
                "      key: true",
                "      industry: discrete",
                "      signals:",
                f"      - {{id: state, role: state, source: plc, node: 'ns=2;s=m{p}.state',"
                " interval: 1s, update: on_change}",
            ]
            lines += [
                f"      - {{id: p{k}, role: parameter, source: plc, node: 'ns=2;s=m{p}.p{k}',"
                " interval: 1s}"
                for k in range(PARAMETERS)
            ]
    return "\n".join(lines) + "\n"


def _sample(line: str, process: str, signal: str, ts: int, value: float | str) -> str:
    return sample_line(
        StoredSample(ENTERPRISE, PLANT, line, process, signal, ts, value, 0, ts, None, "e", 1)
    )


def minute_lines(register: LoadedRegister, start_ns: int, seconds: int) -> list[str]:
    """Every parameter sample of ``[start, start + seconds)``, at 1 s."""
    out = []
    for ref in register.signals():
        if ref.signal.id == "state":
            continue
        for s in range(seconds):
            out.append(
                _sample(ref.line.id, ref.process.id, ref.signal.id, start_ns + s * S, 1.0 + s)
            )
    return out


class CountingReader(InfluxQLReader):
    """The project's reader, counting the samples one evaluation reads."""

    read = 0

    async def samples(
        self, start_ns: int, end_ns: int, lookback_ns: int, enterprise: str
    ) -> dict[tuple[str, str], SignalColumns]:
        found = await super().samples(start_ns, end_ns, lookback_ns, enterprise)
        self.read += sum(len(columns) for columns in found.values())
        return found


async def run_size(
    influx_url: str, signals: int, window_s: int, period_s: int, steps: int
) -> SizeResult:
    processes = max(1, signals // (PARAMETERS + 1))
    register = parse_register(register_yaml(processes).encode(), Path("bench-kpi-scale.yaml"))
    database = f"bench_kpi_{signals}_{int(time.time())}"
    # The default 10 s request timeout is too short for the larger windows' one read (the
    # live loop then fails, as issue 12 reports): the benchmark measures how long it takes.
    settings = InfluxSettings(url=influx_url, database=database, timeout=600)
    writer = make_writer(settings)
    reader = CountingReader(settings)
    influxd_pid = _pid_listening(influx_url)
    try:
        await writer.ensure_database()
        started = time.perf_counter()
        states = [
            _sample(ref.line.id, ref.process.id, "state", T0 - 10 * S, "RUNNING")
            for ref in register.signals()
            if ref.signal.id == "state"
        ]
        await writer.write(states)
        for minute in range(window_s // 60):
            await writer.write(minute_lines(register, T0 + minute * 60 * S, 60))
        write_s = time.perf_counter() - started
        service = KpiService(
            [register], reader, writer, Thresholds(), window_s=window_s, period_s=period_s, lag_s=0
        )
        result_steps = []
        end = T0 + window_s * S
        for _ in range(steps):
            await writer.write(minute_lines(register, end, period_s))
            end += period_s * S
            reader.read = 0
            influx_before = process_cpu_s(influxd_pid)
            cpu_before = time.process_time()
            wall_before = time.perf_counter()
            await service.compute(Window(end - window_s * S, end))
            result_steps.append(
                Step(
                    time.perf_counter() - wall_before,
                    time.process_time() - cpu_before,
                    reader.read,
                    process_cpu_s(influxd_pid) - influx_before,
                )
            )
        samples_in_window = processes * PARAMETERS * window_s + processes
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return SizeResult(
            signals, processes, samples_in_window, write_s, result_steps, peak_kib / 1024
        )
    finally:
        await reader.close()
        await writer.close()


def _pid_listening(url: str) -> int:
    """influxd's pid, from the port of ``url`` (the child process did not start it)."""
    port = url.rsplit(":", 1)[1].strip("/")
    out = subprocess.run(["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True)
    marker = "pid="
    at = out.stdout.find(marker)
    if at < 0:
        raise RuntimeError(f"no process listens on {url}: {out.stdout!r} {out.stderr!r}")
    return int(out.stdout[at + len(marker) :].split(",", 1)[0])


def render(results: list[SizeResult], window_s: int, period_s: int, command: str) -> str:
    rows = [
        "| signals (key processes) | samples in window | per period: wall s | collector CPU s | "
        "samples read | influxd CPU s | collector peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:

        def med(values: list[float]) -> float:
            ordered = sorted(values)
            return ordered[len(ordered) // 2]

        rows.append(
            f"| {r.signals:,} ({r.processes:,}) | {r.samples_in_window:,} "
            f"| {med([s.wall_s for s in r.steps]):.1f} | {med([s.cpu_s for s in r.steps]):.1f} "
            f"| {int(med([float(s.samples_read) for s in r.steps])):,} "
            f"| {med([s.influxd_cpu_s for s in r.steps]):.1f} | {r.peak_rss_mb:,.0f} MB |"
        )
    return "\n".join(
        [
            f"Measured {datetime.now(UTC):%Y-%m-%d}; command: `{command}`. Window {window_s} s, "
            f"period {period_s} s; each plant has 1 s periodic parameters (4 per key process) "
            "and an on-change state; medians over the steps. This is the loop as built "
            "(every period re-reads the whole window): the baseline for issue 12.",
            "",
            *machine_description(),
            "",
            *rows,
            "",
            NOTE,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", default="600,3000")
    parser.add_argument("--window", type=int, default=3600)
    parser.add_argument("--period", type=int, default=60)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # influxd URL: run one size
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.signals.split(",")]
    if args.child:
        result = asyncio.run(run_size(args.child, sizes[0], args.window, args.period, args.steps))
        print(json.dumps(asdict(result)))
        return
    results = []
    with tempfile.TemporaryDirectory() as folder, InfluxServer(Path(folder) / "influx") as influx:
        for size in sizes:
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    influx.url,
                    "--signals",
                    str(size),
                    "--window",
                    str(args.window),
                    "--period",
                    str(args.period),
                    "--steps",
                    str(args.steps),
                ],
                capture_output=True,
                text=True,
            )
            if child.returncode:
                raise SystemExit(f"{size} signals failed:\n{child.stderr[-3000:]}")
            data: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
            data["steps"] = [Step(**s) for s in data["steps"]]
            results.append(SizeResult(**data))
            print(f"{size} signals: {results[-1]}", file=sys.stderr)
    command = "python bench/kpi_scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = render(results, args.window, args.period, command)
    print(body)
    if args.out:
        replace_section(args.out, TITLE, body)


if __name__ == "__main__":
    main()
