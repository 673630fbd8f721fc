"""S7 path: samples/s the edge's S7 reader delivers, against a bare python-snap7 client.

    .venv/bin/python bench/s7_path.py [--signals 1000 250] [--seconds S] [--runs R] [--out FILE]

For each size, the simulator runs one S7 PLC as its own process (``python -m simulators
run``: python-snap7's server) holding ``N`` values in data block 1 (a quarter REAL, the
rest INT). In the same run, against that same PLC, polled back to back (no pause between
polls), alternating ``--runs`` times:

1. **baseline**: a bare ``snap7.AsyncClient``, reading the same byte ranges the edge plans
   (neighbours merged, one answer's worth at most) with ``read_area``, one at a time, and
   converting each signal with python-snap7's ``get_real`` / ``get_int`` (values computed
   and dropped);
2. **edge**: the edge's ``S7Source`` as the agent builds it (``poll_interval`` 1 µs: back
   to back too) delivering into a sink that only counts.

The ratio edge / baseline is the figure (target ≥ 90 %; medians of the runs); absolute
rates move with the machine and are bounded by the PLC's answers. Writes the "S7 path"
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from snap7.async_client import AsyncClient  # noqa: E402
from snap7.type import Area  # noqa: E402
from snap7.util.getters import get_int, get_real  # noqa: E402

from bench.modbus_path import CountingSink, SizeResult, device_process, stop, write_plant  # noqa: E402
from bench.opcua_path import BenchError, Timing, measure_window  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from common.protocols.s7 import S7Source  # noqa: E402
from common.register_loader import load_register  # noqa: E402
from edge.sources.s7.build import point  # noqa: E402
from edge.sources.s7.plan import Point  # noqa: E402
from edge.sources.s7.source import S7Source as S7Reader  # noqa: E402
from harness.servers import free_port  # noqa: E402

SECTION = "S7 path"
SOURCE = "bench-plc"
SIGNALS_PER_MACHINE = 10


def register_document(signals: int) -> dict[str, Any]:
    machines = []
    byte = 0
    for m in range(signals // SIGNALS_PER_MACHINE):
        items = []
        for s in range(SIGNALS_PER_MACHINE):
            real = s % 4 == 0
            items.append(
                {
                    "id": f"v{s}",
                    "role": "parameter",
                    "source": SOURCE,
                    "address": f"DB1.DBD{byte}" if real else f"DB1.DBW{byte}",
                    **({"type": "real"} if real else {}),
                }
            )
            byte += 4 if real else 2
        machines.append(
            {"id": f"m{m}", "name": f"M{m}", "key": True, "industry": "discrete", "signals": items}
        )
    source = {"id": SOURCE, "kind": "s7", "endpoint": "s7://127.0.0.1", "poll_interval": 1e-6}
    return {
        "enterprise": {"id": "bench", "region": "Bench", "above_designated_size": True},
        "plants": [
            {"id": "p1", "sources": [source], "lines": [{"id": "l1", "processes": machines}]}
        ],
    }


def planned(config: S7Source, points: list[Point], pdu_size: int) -> S7Reader:
    reader = S7Reader(config, points)
    reader.plan(pdu_size)
    return reader


async def bare_client(
    endpoint: str, config: S7Source, points: list[Point], timing: Timing
) -> float:
    host, port = endpoint.removeprefix("s7://").split(":")
    client = AsyncClient()
    await client.connect(host, config.rack, config.slot, int(port))
    items = planned(config, points, client.pdu_length).items
    layouts = [
        [
            (p.where.byte - item.start, get_real if p.binding.data_type == "real" else get_int)
            for p in item.points
        ]
        for item in items
    ]
    done = 0

    async def poll() -> None:
        nonlocal done
        task = asyncio.current_task()
        assert task is not None
        while not task.cancelling():  # see _not_cancelled in edge/sources/s7/link.py
            for item, layout in zip(items, layouts, strict=True):
                data = await client.read_area(Area.DB, item.db, item.start, item.length)
                for at, get in layout:
                    get(data, at)
                done += len(item.points)

    task = asyncio.create_task(poll())
    try:
        return await measure_window(lambda: done, timing)
    finally:
        await stop(task)
        await client.disconnect()


async def edge_source(
    endpoint: str, config: S7Source, points: list[Point], timing: Timing
) -> float:
    source = S7Reader(config, points, endpoint=endpoint)
    sink = CountingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        return await measure_window(lambda: sink.count, timing)
    finally:
        await stop(task)


async def run_size(
    signals: int, runs: int, timing: Timing, folder: Path, say: Callable[[str], None]
) -> SizeResult:
    register_path, scenario = await asyncio.to_thread(
        write_plant, register_document(signals), folder
    )
    register = await asyncio.to_thread(load_register, register_path)
    config = register.plant("p1").sources[0]
    assert isinstance(config, S7Source)
    points = [point(ref.process.id, ref.signal) for ref in register.signals()]
    endpoint = f"s7://127.0.0.1:{free_port()}"
    requests = planned(config, points, 480).stats.requests_per_cycle
    result = SizeResult(signals, requests, [], [])
    async with device_process(scenario, endpoint, folder / "simulator.log", SOURCE):
        for run in range(runs):
            result.baseline.append(await bare_client(endpoint, config, points, timing))
            result.edge.append(await edge_source(endpoint, config, points, timing))
            say(
                f"{signals} signals, run {run + 1}: baseline {result.baseline[-1]:,.0f}/s, "
                f"edge {result.edge[-1]:,.0f}/s ({result.ratios[-1]:.1%})"
            )
    if not all(result.baseline) or not all(result.edge):
        raise BenchError("a client read nothing")
    return result


def render_section(results: list[SizeResult], command: str, timing: Timing, runs: int) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} with `{command}` (window {timing.seconds:g} s after {timing.warmup:g} s "
        f"of warm-up per client, {runs} alternating runs each; medians).",
        "",
        *machine_description(),
        "",
        "| signals (bytes of DB1) | requests per poll (PDU 480) | bare python-snap7 client samples/s | edge S7Source samples/s | edge / bare (median; runs) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        size = r.signals // 4 * 4 + (r.signals - r.signals // 4) * 2
        runs_text = ", ".join(f"{x:.0%}" for x in r.ratios)
        lines.append(
            f"| {r.signals:,} ({size:,}) | {r.requests} | {statistics.median(r.baseline):,.0f} | "
            f"{statistics.median(r.edge):,.0f} | **{statistics.median(r.ratios):.0%}** ({runs_text}) |"
        )
    lines += [
        "",
        "Both poll the same PLC process (the simulator: python-snap7's own server) back to "
        "back, the same byte ranges, one request at a time (the edge packs several ranges into "
        "one request when they fit the PDU; here each range fills an answer, so the requests "
        "are the same). The bare client converts each signal and drops the value, the edge "
        "makes each a sample (value, GOOD status, the answer's arrival time) into a sink that "
        "counts. The PLC's answers bound both: the ratio is what the edge's reader costs on "
        "top.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, nargs="+", default=[1000, 250])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per client")
    parser.add_argument("--warmup", type=float, default=2.0, help="before the window opens")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    timing = Timing(args.seconds, args.warmup)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    async def run_all() -> list[SizeResult]:
        with tempfile.TemporaryDirectory(prefix="s7-bench-") as tmp:
            return [
                await run_size(n, args.runs, timing, Path(tmp) / f"n{n}", say) for n in args.signals
            ]

    results = asyncio.run(run_all())
    command = "python bench/s7_path.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = render_section(results, command.strip(), timing, args.runs)
    print(section)
    if args.out:
        replace_section(args.out, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
