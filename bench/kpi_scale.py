"""The live KPI loop at plant scale: cost of one period over a 1 h window, before and after.

    .venv/bin/python bench/kpi_scale.py [--signals 600,3000,30000] [--full 600,3000]
        [--window 3600] [--period 60] [--steps 3] [--backlog 3000] [--out docs/benchmarks.md]

Starts its own influxd. For each plant size and way of evaluating, in a child process of
its own (so its peak RSS is its own): a register of ``signals / 5`` key processes, each an
on-change state and four 1 s periodic parameters; the window's samples are written
straight into influxd (line protocol, a few seconds of the plant per write), then the loop
is advanced ``steps`` periods: each step writes one period of new samples and runs one
live evaluation of the window ending at the new period, measuring its wall time, this
process's CPU time, the samples it read, influxd's CPU time, and the peak RSS.

* ``full`` (the loop before issue 12, still ``/api/v1/recompute``): ``KpiService.compute``
  re-reads the whole window every period.
* ``incremental`` (the live loop now): ``KpiService.evaluate`` from slices; its first
  evaluation (a collector starting with an hour of data stored) is reported apart.

``--backlog N``: an N-signal plant's edge is cut off for one window length: the live loop
goes on (its windows provisional), then the whole backlog is written at once with the
watermark past it; measured is the work until every affected window is corrected.
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
from collections.abc import Awaitable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cpu import process_cpu_s  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from collector.kpi.inputs import Window  # noqa: E402
from collector.kpi.service import KpiService, result_lines  # noqa: E402
from collector.kpi.thresholds import Thresholds  # noqa: E402
from collector.storage.lineprotocol import (  # noqa: E402
    StoredSample,
    sample_line,
    watermark_line,
)
from collector.storage.settings import InfluxSettings  # noqa: E402
from collector.storage.writer import InfluxWriter, make_writer  # noqa: E402
from common.garbage import tune_for_service  # noqa: E402
from common.register_loader import LoadedRegister, parse_register  # noqa: E402
from harness.counting_reader import CountingReader  # noqa: E402
from harness.servers import InfluxServer  # noqa: E402

S = 1_000_000_000
HOUR = 3600 * S
PARAMETERS = 4
ENTERPRISE, PLANT = "bench-ent", "bench-plant"
TITLE = "KPI evaluation at plant scale (live loop: full re-read and slices)"
WRITE_LINES = 100_000
"""Samples per benchmark write (the data generator must not dominate the peak RSS)."""


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
    mode: str
    samples_in_window: int
    write_s: float
    first: Step | None
    """incremental: the first evaluation (every slice of the window computed)."""
    steps: list[Step]
    peak_rss_mb: float


@dataclass(frozen=True)
class BacklogResult:
    signals: int
    windows_affected: int
    corrected: int
    correction_calls: int
    """``correct_pending`` calls until none was left (the live loop makes one per period)."""
    wall_s: float
    cpu_s: float
    samples_read: int
    equal_to_recompute: bool
    """The corrected last window equals a one-pass recomputation from the raw samples."""


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


def period_lines(register: LoadedRegister, start_ns: int, seconds: int) -> Iterator[list[str]]:
    """Every parameter sample of ``[start, start + seconds)``, at 1 s, in writes of about
    ``WRITE_LINES`` samples."""
    params = [ref for ref in register.signals() if ref.signal.id != "state"]
    step = max(1, WRITE_LINES // max(1, len(params)))
    for first in range(0, seconds, step):
        yield [
            _sample(ref.line.id, ref.process.id, ref.signal.id, start_ns + s * S, 1.0 + s)
            for s in range(first, min(seconds, first + step))
            for ref in params
        ]


async def _write_period(
    writer: InfluxWriter, register: LoadedRegister, start_ns: int, seconds: int
) -> None:
    for lines in period_lines(register, start_ns, seconds):
        await writer.write(lines)


def _register(signals: int) -> LoadedRegister:
    processes = max(1, signals // (PARAMETERS + 1))
    return parse_register(register_yaml(processes).encode(), Path("bench-kpi-scale.yaml"))


def _grid_start(window_s: int, period_s: int) -> int:
    """The first window's start: recent (corrections look back a day from now), on the grid."""
    return (time.time_ns() - 4 * HOUR) // (period_s * S) * (period_s * S)


async def _measured(
    reader: CountingReader, influxd_pid: int, evaluation: Awaitable[object]
) -> Step:
    reader.read = 0
    influx_before = process_cpu_s(influxd_pid)
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    await evaluation
    return Step(
        time.perf_counter() - wall_before,
        time.process_time() - cpu_before,
        reader.read,
        process_cpu_s(influxd_pid) - influx_before,
    )


async def _prefilled(
    influx_url: str, signals: int, window_s: int, period_s: int, tag: str
) -> tuple[LoadedRegister, InfluxWriter, CountingReader, int, float, int]:
    register = _register(signals)
    database = f"bench_kpi_{tag}_{signals}_{int(time.time())}"
    # The default 10 s request timeout is too short for the larger windows' one read (the
    # live loop then fails, as issue 12 reports): the benchmark measures how long it takes.
    settings = InfluxSettings(url=influx_url, database=database, timeout=600)
    writer = make_writer(settings)
    reader = CountingReader(settings)
    await writer.ensure_database()
    t0 = _grid_start(window_s, period_s)
    started = time.perf_counter()
    states = [
        _sample(ref.line.id, ref.process.id, "state", t0 - 10 * S, "RUNNING")
        for ref in register.signals()
        if ref.signal.id == "state"
    ]
    await writer.write(states)
    await _write_period(writer, register, t0, window_s)
    return register, writer, reader, t0, time.perf_counter() - started, _pid_listening(influx_url)


async def run_size(
    influx_url: str, signals: int, window_s: int, period_s: int, steps: int, mode: str = "full"
) -> SizeResult:
    register, writer, reader, t0, write_s, influxd_pid = await _prefilled(
        influx_url, signals, window_s, period_s, mode
    )
    try:
        service = KpiService(
            [register], reader, writer, Thresholds(), window_s=window_s, period_s=period_s, lag_s=0
        )
        evaluate = service.compute if mode == "full" else service.evaluate
        end = t0 + window_s * S
        first = None
        if mode == "incremental":
            first = await _measured(reader, influxd_pid, evaluate(Window(end - window_s * S, end)))
        result_steps = []
        for _ in range(steps):
            await _write_period(writer, register, end, period_s)
            end += period_s * S
            window = Window(end - window_s * S, end)
            result_steps.append(await _measured(reader, influxd_pid, evaluate(window)))
            service.slices.forget_before(window.start_ns)
        processes = len(register.model.plants[0].lines) and sum(
            len(line.processes) for line in register.model.plants[0].lines
        )
        samples_in_window = processes * PARAMETERS * window_s + processes
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return SizeResult(
            signals,
            processes,
            mode,
            samples_in_window,
            write_s,
            first,
            result_steps,
            peak_kib / 1024,
        )
    finally:
        await reader.close()
        await writer.close()


async def run_backlog(influx_url: str, signals: int, window_s: int, period_s: int) -> BacklogResult:
    """The edge of the plant goes silent for one window length, then delivers it all."""
    register, writer, reader, t0, _, _ = await _prefilled(
        influx_url, signals, window_s, period_s, "backlog"
    )
    try:
        service = KpiService(
            [register], reader, writer, Thresholds(), window_s=window_s, period_s=period_s, lag_s=0
        )
        cut = t0 + window_s * S
        await writer.write([watermark_line(ENTERPRISE, PLANT, "e", cut, 1, 1)])
        end = cut
        for _ in range(window_s // period_s):  # the live loop goes on, nothing arrives
            end += period_s * S
            result = await service.evaluate(Window(end - window_s * S, end))
            await writer.write(result_lines(result))
            service.track_incomplete(result, revision=0)
        affected = len(service.pending)
        await _write_period(writer, register, cut, (end - cut) // S)  # the backlog arrives
        await writer.write([watermark_line(ENTERPRISE, PLANT, "e", end + S, 1, 2)])
        reader.read = 0
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        calls = corrected = 0
        while service.pending and calls < 10 * affected:
            corrected += await service.correct_pending()
            calls += 1
        wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
        read = reader.read
        last = Window(end - window_s * S, end)
        live, reference = await service.evaluate(last), await service.compute(last)
        same = [e.to_dict() for e in live.evaluations] == [
            e.to_dict() for e in reference.evaluations
        ]
        return BacklogResult(signals, affected, corrected, calls, wall, cpu, read, same)
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


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def render(
    results: list[SizeResult],
    backlogs: list[BacklogResult],
    window_s: int,
    period_s: int,
    command: str,
) -> str:
    rows = [
        "| signals (key processes) | evaluation | samples in window | first evaluation: "
        "wall s / CPU s | per period: wall s | collector CPU s | samples read | influxd CPU s "
        "| collector peak RSS | CPU per period vs full |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    full_cpu = {r.signals: _median([s.cpu_s for s in r.steps]) for r in results if r.mode == "full"}
    for r in results:
        cpu = _median([s.cpu_s for s in r.steps])
        first = "—" if r.first is None else f"{r.first.wall_s:.1f} / {r.first.cpu_s:.1f}"
        base = full_cpu.get(r.signals)
        ratio = "—" if base is None or r.mode == "full" else f"{cpu / base:.3f}×"
        rows.append(
            f"| {r.signals:,} ({r.processes:,}) | {r.mode} | {r.samples_in_window:,} | {first} "
            f"| {_median([s.wall_s for s in r.steps]):.2f} | {cpu:.2f} "
            f"| {int(_median([float(s.samples_read) for s in r.steps])):,} "
            f"| {_median([s.influxd_cpu_s for s in r.steps]):.2f} | {r.peak_rss_mb:,.0f} MB "
            f"| {ratio} |"
        )
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d}; command: `{command}`. Window {window_s} s, "
        f"period {period_s} s; each plant has 1 s periodic parameters (4 per key process) "
        "and an on-change state; medians over the steps. *full*: every period re-reads the "
        "whole window (the loop before issue 12; `/api/v1/recompute` still works so). "
        "*incremental*: the live loop now, from slices (docs/kpi.md); its first evaluation "
        "is a collector starting with the window already stored.",
        "",
        *machine_description(),
        "",
        *rows,
    ]
    if backlogs:
        lines += [
            "",
            f"Backlog: the plant's edge delivers nothing for {window_s} s (the live loop goes "
            "on, its windows provisional), then the whole backlog at once and a watermark past "
            "it; then `correct_pending` is called until no window waits (the live loop calls "
            "it once per period, up to `COLLECTOR_KPI__CORRECTIONS_PER_PERIOD`, 10, windows "
            "each).",
            "",
            "| signals | windows affected | corrected | calls (periods) | wall s | collector CPU s "
            "| samples read | corrected = recompute |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {b.signals:,} | {b.windows_affected} | {b.corrected} | {b.correction_calls} "
            f"| {b.wall_s:.1f} | {b.cpu_s:.1f} | {b.samples_read:,} | {b.equal_to_recompute} |"
            for b in backlogs
        ]
    return "\n".join(lines)


def _child(influx_url: str, job: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            influx_url,
            "--job",
            job,
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
        raise SystemExit(f"{job} at {size} signals failed:\n{child.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return data


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", default="600,3000,30000", help="incremental sizes")
    parser.add_argument("--full", default="600,3000", help="sizes also run the old way")
    parser.add_argument("--backlog", default="3000", help="sizes of the backlog scenario")
    parser.add_argument("--window", type=int, default=3600)
    parser.add_argument("--period", type=int, default=60)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # influxd URL: run one job
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        tune_for_service()  # as the collector's `run` does
        size = _sizes(args.signals)[0]
        out: object
        if args.job == "backlog":
            out = asyncio.run(run_backlog(args.child, size, args.window, args.period))
        else:
            out = asyncio.run(
                run_size(args.child, size, args.window, args.period, args.steps, args.job)
            )
        print(json.dumps(asdict(out)))
        return
    results: list[SizeResult] = []
    backlogs: list[BacklogResult] = []
    with tempfile.TemporaryDirectory() as folder, InfluxServer(Path(folder) / "influx") as influx:
        jobs = [("full", n) for n in _sizes(args.full)]
        jobs += [("incremental", n) for n in _sizes(args.signals)]
        jobs += [("backlog", n) for n in _sizes(args.backlog)]
        for job, size in jobs:
            data = _child(influx.url, job, size, args)
            if job == "backlog":
                backlogs.append(BacklogResult(**data))
            else:
                data["steps"] = [Step(**s) for s in data["steps"]]
                data["first"] = None if data["first"] is None else Step(**data["first"])
                results.append(SizeResult(**data))
            print(f"{job} {size}: {data}", file=sys.stderr)
    command = "python bench/kpi_scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = render(results, backlogs, args.window, args.period, command)
    print(body)
    if args.out:
        replace_section(args.out, TITLE, body)


if __name__ == "__main__":
    main()
