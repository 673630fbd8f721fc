"""A collector group serving a region: many enterprise registers, one live KPI loop.

    .venv/bin/python bench/region_scale.py [--enterprises 1000] [--processes 50]
        [--window 600] [--period 60] [--steps 3] [--out docs/benchmarks.md]

Starts its own influxd. Generates ``enterprises`` registers of ``processes`` key processes
(an on-change state and a 10 s periodic key parameter each) spread over 10 regions, and
measures in one process:

* start-up: loading every register (parse, validate, digest) and building the service;
* the first live evaluation (every slice of the window, with the window's data stored);
* per period: one period of new samples written, then one live evaluation of every
  enterprise, the roll-up (``aggregate``: line, plant, enterprise and region rates) and
  the sharded region roll-up from the stored enterprise rates (``roll_up_regions``), each
  timed on its own; and the peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import machine_description, replace_section  # noqa: E402
from collector.kpi.aggregate import aggregate  # noqa: E402
from collector.kpi.inputs import Window  # noqa: E402
from collector.kpi.service import KpiService, result_lines  # noqa: E402
from collector.kpi.sharding import Shard  # noqa: E402
from collector.kpi.thresholds import Thresholds  # noqa: E402
from collector.storage.lineprotocol import StoredSample, sample_line  # noqa: E402
from collector.storage.reader import InfluxQLReader  # noqa: E402
from collector.storage.settings import InfluxSettings  # noqa: E402
from collector.storage.writer import InfluxWriter, make_writer  # noqa: E402
from common.register_loader import LoadedRegister, parse_register  # noqa: E402
from harness.servers import InfluxServer  # noqa: E402

S = 1_000_000_000
TITLE = "KPI for a region: many enterprise registers in one collector"
PARAM_INTERVAL_S = 10
REGIONS = 10


@dataclass(frozen=True)
class RegionResult:
    enterprises: int
    processes: int
    load_s: float
    first_evaluation_s: float
    evaluation_s: list[float]
    """Per period: live evaluation of every enterprise (reads and rules)."""
    aggregate_s: list[float]
    """Per period: line/plant/enterprise/region rates of all evaluations."""
    roll_up_s: list[float]
    """Per period: the sharded region roll-up from stored enterprise rates."""
    cpu_s: list[float]
    """Per period: this process's CPU for all of the above."""
    peak_rss_mb: float


def register_yaml(index: int, processes: int) -> str:
    lines = [
        f"version: bench-{index}",
        f"enterprise: {{id: ent{index}, region: R{index % REGIONS}, above_designated_size: true}}",
        "plants:",
        "- id: pl",
        "  sources:",
        "  - {id: plc, kind: opcua, endpoint: 'opc.tcp://127.0.0.1:4840',"
        " security: {policy: None, mode: None}}",
        "  lines:",
        "  - id: l1",
        "    processes:",
    ]
    for p in range(processes):
        lines += [
            f"    - {{id: m{p}, name: M{p}, key: true, industry: discrete, signals: ["
            f"{{id: state, role: state, source: plc, node: 'ns=2;s=m{p}.s', update: on_change}}, "
            f"{{id: speed, role: parameter, source: plc, node: 'ns=2;s=m{p}.v', "
            f"interval: {PARAM_INTERVAL_S}s}}]}}"
        ]
    return "\n".join(lines) + "\n"


def _lines(registers: list[LoadedRegister], start_ns: int, seconds: int) -> list[str]:
    out = []
    for register in registers:
        for ref in register.signals():
            if ref.signal.id != "speed":
                continue
            for s in range(0, seconds, PARAM_INTERVAL_S):
                ts = start_ns + s * S
                out.append(
                    sample_line(
                        StoredSample(
                            register.enterprise_id,
                            "pl",
                            "l1",
                            ref.process.id,
                            "speed",
                            ts,
                            1.0,
                            0,
                            ts,
                            None,
                            "e",
                            1,
                        )
                    )
                )
    return out


async def _write(writer: InfluxWriter, lines: list[str]) -> None:
    for i in range(0, len(lines), 100_000):
        await writer.write(lines[i : i + 100_000])


async def run(
    influx_url: str, enterprises: int, processes: int, window_s: int, period_s: int, steps: int
) -> RegionResult:
    texts = [register_yaml(i, processes).encode() for i in range(enterprises)]
    started = time.perf_counter()
    registers = [parse_register(t, Path(f"ent{i}.yaml")) for i, t in enumerate(texts)]
    settings = InfluxSettings(
        url=influx_url, database=f"bench_region_{int(time.time())}", timeout=600
    )
    writer, reader = make_writer(settings), InfluxQLReader(settings)
    thresholds = Thresholds()
    service = KpiService(
        registers, reader, writer, thresholds, window_s=window_s, period_s=period_s, lag_s=0
    )
    # The same registers as one replica of a sharded group, for the region roll-up.
    shard = KpiService(
        registers,
        reader,
        writer,
        thresholds,
        window_s=window_s,
        period_s=period_s,
        lag_s=0,
        shard=Shard(0, 2),
    )
    load_s = time.perf_counter() - started
    try:
        await writer.ensure_database()
        t0 = (time.time_ns() - 2 * 3600 * S) // (period_s * S) * (period_s * S)
        states = [
            sample_line(
                StoredSample(
                    r.enterprise_id,
                    "pl",
                    "l1",
                    ref.process.id,
                    "state",
                    t0 - 10 * S,
                    "RUN",
                    0,
                    t0 - 10 * S,
                    None,
                    "e",
                    1,
                )
            )
            for r in registers
            for ref in r.signals()
            if ref.signal.id == "state"
        ]
        await _write(writer, states + _lines(registers, t0, window_s))
        end = t0 + window_s * S
        began = time.perf_counter()
        await service.evaluate(Window(end - window_s * S, end), registers)
        first_s = time.perf_counter() - began
        evaluation_s, aggregate_s, roll_up_s, cpu_s = [], [], [], []
        for _ in range(steps):
            await _write(writer, _lines(registers, end, period_s))
            end += period_s * S
            window = Window(end - window_s * S, end)
            cpu = time.process_time()
            began = time.perf_counter()
            result = await service.evaluate(window, registers)  # no region rates yet
            evaluation_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            rates = aggregate(result.evaluations)
            aggregate_s.append(time.perf_counter() - began)
            await writer.write(result_lines(result))
            shard.live_replicas = [0]  # this replica owns every region
            began = time.perf_counter()
            await shard.roll_up_regions(window)
            roll_up_s.append(time.perf_counter() - began)
            cpu_s.append(time.process_time() - cpu)
            service.slices.forget_before(window.start_ns)
            assert len(rates) > 0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return RegionResult(
            enterprises,
            processes,
            load_s,
            first_s,
            evaluation_s,
            aggregate_s,
            roll_up_s,
            cpu_s,
            peak,
        )
    finally:
        await writer.close()
        await reader.close()


def render(r: RegionResult, window_s: int, period_s: int, command: str) -> str:
    def med(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return "\n".join(
        [
            f"Measured {datetime.now(UTC):%Y-%m-%d}; command: `{command}`. {r.enterprises:,} "
            f"enterprise registers of {r.processes} key processes (an on-change state and a "
            f"{PARAM_INTERVAL_S} s key parameter each) in {REGIONS} regions, window "
            f"{window_s} s, period {period_s} s; medians over the periods.",
            "",
            *machine_description(),
            "",
            "| enterprises × processes | load registers | first evaluation | per period: "
            "evaluation | roll-up (aggregate) | sharded region roll-up | collector CPU | "
            "peak RSS |",
            "|---|---|---|---|---|---|---|---|",
            f"| {r.enterprises:,} × {r.processes} | {r.load_s:.1f} s | "
            f"{r.first_evaluation_s:.1f} s | {med(r.evaluation_s):.1f} s | "
            f"{med(r.aggregate_s):.2f} s | {med(r.roll_up_s):.2f} s | {med(r.cpu_s):.1f} s | "
            f"{r.peak_rss_mb:,.0f} MB |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enterprises", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--window", type=int, default=600)
    parser.add_argument("--period", type=int, default=60)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, InfluxServer(Path(folder) / "influx") as influx:
        result = asyncio.run(
            run(influx.url, args.enterprises, args.processes, args.window, args.period, args.steps)
        )
    print(json.dumps(asdict(result)), file=sys.stderr)
    command = "python bench/region_scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = render(result, args.window, args.period, command)
    print(body)
    if args.out:
        replace_section(args.out, TITLE, body)


if __name__ == "__main__":
    main()
