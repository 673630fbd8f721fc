"""MTConnect path: samples/s the edge's MTConnect reader delivers, against a bare httpx client.

    .venv/bin/python bench/mtconnect_path.py [--counts 1000 100] [--signals 100] [--seconds S] [--runs R] [--out FILE]

For each ``count`` (observations per ``/sample`` request), the simulated agent runs as its
own process (``python -m simulators.mtconnect_agent --refill``: aiohttp) serving ``N`` data
items of one register source, with every ``/sample`` that reaches the end of its buffer
finding it filled: a device as fast as its reader, so both clients are bounded by their own
work and the agent's answers, never by waiting for data. In the same run, against that same
agent, back to back (no pause between requests), alternating ``--runs`` times:

1. **baseline**: a bare ``httpx.AsyncClient``: ``/current`` once, then
   ``/sample?from=<nextSequence>&count=<count>`` in a loop, each answer parsed with
   ElementTree and every observation's sequence, time stamp (``datetime.fromisoformat``)
   and value (``float``) taken and dropped;
2. **edge**: the edge's ``MtconnectAgentSource`` as the agent builds it (``poll_interval``
   1 µs: back to back too) making the same requests, delivering into a sink that only
   counts.

The ratio edge / baseline is the figure (target ≥ 90 %; medians of the runs, by default
nine pairs of 4 s windows); absolute rates move with the machine and are bounded by the
agent's answers. Writes the "MTConnect
path" section of ``docs/benchmarks.md`` with ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.modbus_path import CountingSink  # noqa: E402
from bench.opcua_path import BenchError, Timing, measure_window  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from common.protocols.mtconnect import MtconnectSource  # noqa: E402
from common.register_loader import load_register  # noqa: E402
from edge.sources.mtconnect.build import bound_item  # noqa: E402
from edge.sources.mtconnect.source import BoundItem, MtconnectAgentSource  # noqa: E402
from harness.servers import free_port  # noqa: E402

SECTION = "MTConnect path"
SOURCE = "bench-agent"
SIGNALS_PER_MACHINE = 10
BUFFER_SIZE = 131_072


@dataclass
class SizeResult:
    count: int
    signals: int
    baseline: list[float]
    edge: list[float]

    @property
    def ratios(self) -> list[float]:
        return [e / b for e, b in zip(self.edge, self.baseline, strict=True)]


def register_document(signals: int, count: int) -> dict[str, Any]:
    machines = []
    for m in range(max(1, signals // SIGNALS_PER_MACHINE)):
        items = [
            {
                "id": f"r{s}",
                "role": "parameter",
                "source": SOURCE,
                "data_item": f"m{m}_r{s}",
                "update": "on_change",
            }
            for s in range(SIGNALS_PER_MACHINE)
        ]
        machines.append(
            {"id": f"m{m}", "name": f"M{m}", "key": True, "industry": "discrete", "signals": items}
        )
    source = {
        "id": SOURCE,
        "kind": "mtconnect",
        "endpoint": "http://127.0.0.1:5000",
        "poll_interval": 1e-6,
        "sample_count": count,
    }
    return {
        "enterprise": {"id": "bench", "region": "Bench", "above_designated_size": True},
        "plants": [
            {"id": "p1", "sources": [source], "lines": [{"id": "l1", "processes": machines}]}
        ],
    }


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


async def bare_client(url: str, count: int, timing: Timing) -> float:
    done = 0

    async def poll(client: httpx.AsyncClient) -> None:
        nonlocal done
        task = asyncio.current_task()
        assert task is not None
        current = ET.fromstring((await client.get(f"{url}/current")).content)  # noqa: S314
        header = next(e for e in current if _local(e.tag) == "Header")
        sequence = int(header.attrib["nextSequence"])
        while not task.cancelling():  # see _get in edge/sources/mtconnect/source.py
            response = await client.get(f"{url}/sample?from={sequence}&count={count}")
            if response.status_code != 200:
                raise BenchError(f"bare client: {response.status_code} {response.text[:200]}")
            root = ET.fromstring(response.content)  # noqa: S314 - the bench's own agent
            for part in root:
                name = _local(part.tag)
                if name == "Header":
                    sequence = int(part.attrib["nextSequence"])
                    continue
                for device in part:
                    for component in device:
                        for group in component:
                            for observation in group:
                                attributes = observation.attrib
                                int(attributes["sequence"])
                                datetime.fromisoformat(attributes["timestamp"])
                                float(observation.text or "")
                                done += 1

    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        task = asyncio.create_task(poll(client))
        try:
            return await measure_window(lambda: done, timing)
        finally:
            await stop(task)


async def edge_source(
    url: str, config: MtconnectSource, items: list[BoundItem], timing: Timing
) -> float:
    source = MtconnectAgentSource(config, items, endpoint=url)
    sink = CountingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        return await measure_window(lambda: sink.count, timing)
    finally:
        await stop(task)


async def stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def write_register(signals: int, count: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    register = folder / "register.yaml"
    register.write_text(yaml.safe_dump(register_document(signals, count), sort_keys=False))
    return register


@contextlib.asynccontextmanager
async def agent_process(register: Path, url: str, log_path: Path) -> AsyncIterator[None]:
    log = await asyncio.to_thread(log_path.open, "wb")
    arguments = ["-m", "simulators.mtconnect_agent", "--register", str(register)]
    arguments += ["--source", SOURCE, "--endpoint", url, "--refill"]
    arguments += ["--buffer-size", str(BUFFER_SIZE)]
    agent = await asyncio.create_subprocess_exec(
        sys.executable, *arguments, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            for _ in range(300):
                if agent.returncode is not None:
                    raise BenchError(f"the agent exited with {agent.returncode} ({log_path})")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/probe")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        yield
    finally:
        agent.terminate()
        try:
            await asyncio.wait_for(agent.wait(), 15)
        except TimeoutError:
            agent.kill()
            await agent.wait()
        log.close()


async def run_size(
    count: int,
    signals: int,
    runs: int,
    timing: Timing,
    folder: Path,
    say: Callable[[str], None],
) -> SizeResult:
    register_path = await asyncio.to_thread(write_register, signals, count, folder)
    register = await asyncio.to_thread(load_register, register_path)
    config = register.plant("p1").sources[0]
    assert isinstance(config, MtconnectSource)
    items = [bound_item(config, ref.process.id, ref.signal) for ref in register.signals()]
    url = f"http://127.0.0.1:{free_port()}"
    result = SizeResult(count, len(items), [], [])
    async with agent_process(register_path, url, folder / "agent.log"):
        for run in range(runs):
            result.baseline.append(await bare_client(url, count, timing))
            result.edge.append(await edge_source(url, config, items, timing))
            say(
                f"count {count}, run {run + 1}: baseline {result.baseline[-1]:,.0f}/s, "
                f"edge {result.edge[-1]:,.0f}/s ({result.ratios[-1]:.1%})"
            )
    return result


def render_section(results: list[SizeResult], command: str, timing: Timing, runs: int) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} with `{command}` (window {timing.seconds:g} s after {timing.warmup:g} s "
        f"of warm-up per client, {runs} alternating runs each; medians).",
        "",
        *machine_description(),
        "",
        "| observations per /sample (data items) | bare httpx + ElementTree samples/s | edge MtconnectAgentSource samples/s | edge / bare (median; runs) |",
        "|---|---|---|---|",
    ]
    for r in results:
        runs_text = ", ".join(f"{x:.0%}" for x in r.ratios)
        lines.append(
            f"| {r.count:,} ({r.signals:,}) | {statistics.median(r.baseline):,.0f} | "
            f"{statistics.median(r.edge):,.0f} | **{statistics.median(r.ratios):.0%}** ({runs_text}) |"
        )
    lines += [
        "",
        "Both read the same agent process (the simulator's, aiohttp, its buffer refilled as "
        "it is read) back to back with the same `/sample?from=&count=` requests, one at a "
        "time; the bare client parses each answer with ElementTree and takes every "
        "observation's sequence, time stamp and value, the edge makes each a sample (value, "
        "status, source time, sequence order) into a sink that counts. The agent's answers "
        "bound both: the ratio is what the edge's reader costs on top.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 100])
    parser.add_argument("--signals", type=int, default=100, help="data items served")
    # Many short alternating windows: on a shared 2-core machine one window's ratio moves by
    # ±15 %, and the median of nine pairs is steadier than that of three long ones.
    parser.add_argument("--seconds", type=float, default=4.0, help="measured window per client")
    parser.add_argument("--warmup", type=float, default=1.0, help="before the window opens")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    timing = Timing(args.seconds, args.warmup)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    async def run_all() -> list[SizeResult]:
        with tempfile.TemporaryDirectory(prefix="mtconnect-bench-") as tmp:
            return [
                await run_size(n, args.signals, args.runs, timing, Path(tmp) / f"c{n}", say)
                for n in args.counts
            ]

    results = asyncio.run(run_all())
    command = "python bench/mtconnect_path.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    section = render_section(results, command.strip(), timing, args.runs)
    print(section)
    if args.out:
        replace_section(args.out, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
