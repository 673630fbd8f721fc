"""A year of daily reports for one enterprise, from the stored hourly partials.

    .venv/bin/python bench/report_year.py [--processes 50] [--days 365] [--out docs/benchmarks.md]

Starts its own influxd, stores what the live loop would have stored for a year of an
enterprise of ``processes`` key processes (a state and four parameters each): one
``kpi_partial`` point per process and hour, a few hours a day with a gap or bad values so
the partials differ, and times ``KpiService.report`` of every day (what ``/report``
calls). No raw sample is stored: every day must come from the partials.
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

from bench.kpi_scale import register_yaml  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from collector.kpi.evaluator import required_signals  # noqa: E402
from collector.kpi.inputs import Window  # noqa: E402
from collector.kpi.partials import ProcessPartial, SignalPartial  # noqa: E402
from collector.kpi.service import KpiService  # noqa: E402
from collector.kpi.stored_partials import HOUR_NS, partial_line  # noqa: E402
from collector.kpi.thresholds import Thresholds  # noqa: E402
from collector.storage.reader import InfluxQLReader  # noqa: E402
from collector.storage.settings import InfluxSettings  # noqa: E402
from collector.storage.writer import make_writer  # noqa: E402
from common.register_loader import parse_register  # noqa: E402
from harness.servers import InfluxServer  # noqa: E402

TITLE = "A year of daily reports from stored hourly partials"
DAY_NS = 24 * HOUR_NS


@dataclass(frozen=True)
class YearResult:
    processes: int
    days: int
    points: int
    write_s: float
    report_s: float
    cpu_s: float
    from_partials: int
    peak_rss_mb: float


def _partial(signals: int, hour: int, process: int) -> ProcessPartial:
    good = HOUR_NS
    if (hour * 7 + process) % 23 == 0:  # now and then a 10 min gap in the first signal
        gap = 600 * 1_000_000_000
        first = SignalPartial(good - gap, 0, 0, 0, 3000, 0, gap, gap, False, 0)
    else:
        first = SignalPartial(good, 0, 0, 0, 3600, 0, 0, 0, False, 0)
    rest = SignalPartial(good, 0, 0, 0, 3600, 0, 0, 0, False, 0)
    return ProcessPartial((first, *([rest] * (signals - 1))), None)


async def run(influx_url: str, processes: int, days: int) -> YearResult:
    register = parse_register(register_yaml(processes).encode(), Path("bench-year.yaml"))
    settings = InfluxSettings(
        url=influx_url, database=f"bench_year_{int(time.time())}", timeout=600
    )
    writer, reader = make_writer(settings), InfluxQLReader(settings)
    thresholds = Thresholds()
    service = KpiService(
        [register], reader, writer, thresholds, window_s=3600, period_s=60, lag_s=0
    )
    try:
        await writer.ensure_database()
        start = (time.time_ns() - (days + 2) * DAY_NS) // DAY_NS * DAY_NS
        refs = [
            (plant.id, process.id, len(required_signals(process)))
            for plant in register.model.plants
            for line in plant.lines
            for process in line.processes
        ]
        began = time.perf_counter()
        points = 0
        fingerprint = thresholds.fingerprint()
        for day in range(days):
            lines = [
                partial_line(
                    register.enterprise_id,
                    plant,
                    process,
                    start + day * DAY_NS + h * HOUR_NS,
                    _partial(signals, day * 24 + h, i),
                    register.digest,
                    fingerprint,
                )
                for h in range(24)
                for i, (plant, process, signals) in enumerate(refs)
            ]
            points += len(lines)
            await writer.write(lines)
        write_s = time.perf_counter() - began
        windows = [Window(start + d * DAY_NS, start + (d + 1) * DAY_NS) for d in range(days)]
        cpu, began = time.process_time(), time.perf_counter()
        results = await service.report(windows)
        report_s, cpu_s = time.perf_counter() - began, time.process_time() - cpu
        assert len(results) == days
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return YearResult(
            processes, days, points, write_s, report_s, cpu_s, service.report_from_partials, peak
        )
    finally:
        await writer.close()
        await reader.close()


def render(r: YearResult, command: str) -> str:
    return "\n".join(
        [
            f"Measured {datetime.now(UTC):%Y-%m-%d}; command: `{command}`. One enterprise of "
            f"{r.processes} key processes (5 required signals each), {r.days} daily windows "
            "asked in one call of `KpiService.report` (the API splits a year into requests of "
            "at most `COLLECTOR_API__MAX_RANGE`, 31 d).",
            "",
            *machine_description(),
            "",
            "| key processes | days | `kpi_partial` points read | report wall s | collector "
            "CPU s | days from partials | peak RSS |",
            "|---|---|---|---|---|---|---|",
            f"| {r.processes} | {r.days} | {r.points:,} | {r.report_s:.1f} | {r.cpu_s:.1f} "
            f"| {r.from_partials} | {r.peak_rss_mb:,.0f} MB |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, InfluxServer(Path(folder) / "influx") as influx:
        result = asyncio.run(run(influx.url, args.processes, args.days))
    print(json.dumps(asdict(result)), file=sys.stderr)
    command = "python bench/report_year.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = render(result, command)
    print(body)
    if args.out:
        replace_section(args.out, TITLE, body)


if __name__ == "__main__":
    main()
