"""Modbus path: samples/s the edge's Modbus reader delivers, against a bare pymodbus client.

    .venv/bin/python bench/modbus_path.py [--signals 1000 250] [--seconds S] [--runs R] [--out FILE]

For each size, the simulator runs one Modbus TCP device as its own process (``python -m
simulators run``: pymodbus's server) holding ``N`` holding registers (a quarter float32,
the rest uint16). In the same run, against that same device, polled back to back (no
pause between polls), alternating ``--runs`` times:

1. **baseline**: a bare ``AsyncModbusTcpClient``, sending the same requests the edge plans
   (neighbours merged, 125 registers at most) one at a time and converting each signal's
   registers with pymodbus's ``convert_from_registers`` (values computed and dropped);
2. **edge**: the edge's ``ModbusTcpSource`` as the agent builds it (``poll_interval``
   1 µs: back to back too) delivering into a sink that only counts.

The ratio edge / baseline is the figure (target ≥ 90 %; medians of the runs); absolute
rates move with the machine and are bounded by the device's answers. Writes the "Modbus
path" section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402
from pymodbus.client.mixin import ModbusClientMixin  # noqa: E402

from bench.opcua_path import BenchError, Timing, measure_window  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from common.protocols.modbus import ModbusSource  # noqa: E402
from common.register_loader import load_register  # noqa: E402
from common.wire import Sample  # noqa: E402
from edge.sources import SignalKey  # noqa: E402
from edge.sources.modbus.build import point  # noqa: E402
from edge.sources.modbus.plan import Point, plan_reads  # noqa: E402
from edge.sources.modbus.source import ModbusTcpSource  # noqa: E402
from harness.servers import free_port  # noqa: E402

SECTION = "Modbus path"
SOURCE = "bench-plc"
SIGNALS_PER_MACHINE = 10


@dataclass
class SizeResult:
    signals: int
    requests: int
    baseline: list[float]
    edge: list[float]

    @property
    def ratios(self) -> list[float]:
        return [e / b for e, b in zip(self.edge, self.baseline, strict=True)]


def register_document(signals: int) -> dict[str, Any]:
    machines = []
    address = 0
    for m in range(signals // SIGNALS_PER_MACHINE):
        items = []
        for s in range(SIGNALS_PER_MACHINE):
            kind = "float32" if s % 4 == 0 else "uint16"
            items.append(
                {
                    "id": f"r{s}",
                    "role": "parameter",
                    "source": SOURCE,
                    "address": address,
                    "type": kind,
                }
            )
            address += 2 if kind == "float32" else 1
        machines.append(
            {"id": f"m{m}", "name": f"M{m}", "key": True, "industry": "discrete", "signals": items}
        )
    source = {
        "id": SOURCE,
        "kind": "modbus",
        "endpoint": "modbus://127.0.0.1:502",
        "poll_interval": 1e-6,
    }
    return {
        "enterprise": {"id": "bench", "region": "Bench", "above_designated_size": True},
        "plants": [
            {"id": "p1", "sources": [source], "lines": [{"id": "l1", "processes": machines}]}
        ],
    }


class CountingSink:
    def __init__(self) -> None:
        self.count = 0

    def sample(self, sample: Sample) -> None:
        self.count += 1

    def liveness(self, source: str, up: bool, detail: str = "") -> None:
        if not up and detail != "stopped":
            raise BenchError(f"edge source down: {detail}")

    def after_durable(self, callback: Callable[[], None]) -> None:
        callback()

    def rejected(
        self, source: str, culprit: str, reason: str, signals: Collection[SignalKey] = ()
    ) -> None:
        raise BenchError(f"rejected {culprit}: {reason}")


async def bare_client(
    endpoint: str, config: ModbusSource, points: list[Point], timing: Timing
) -> float:
    host, port = endpoint.removeprefix("modbus://").split(":")
    client = AsyncModbusTcpClient(host, port=int(port), timeout=config.timeout, retries=0)
    if not await client.connect():
        raise BenchError(f"bare client: cannot connect to {endpoint}")
    reads = plan_reads(points, config)
    convert = AsyncModbusTcpClient.convert_from_registers
    datatype = ModbusClientMixin.DATATYPE
    types = {"uint16": datatype.UINT16, "float32": datatype.FLOAT32}
    layouts = {
        id(read): [
            (
                p.binding.address - read.address,
                p.binding.address - read.address + p.binding.registers,
                types[p.binding.data_type],
            )
            for p in read.points
        ]
        for read in reads
    }
    done = 0

    async def poll() -> None:
        nonlocal done
        task = asyncio.current_task()
        assert task is not None
        while not task.cancelling():  # see _request in edge/sources/modbus/source.py
            for read in reads:
                response = await client.read_holding_registers(
                    read.address, count=read.count, device_id=read.device_id
                )
                if response.isError():
                    raise BenchError(f"bare client: {read.describe()}: {response}")
                registers = response.registers
                for start, end, datatype in layouts[id(read)]:
                    convert(registers[start:end], datatype, word_order="big")
                done += len(read.points)

    task = asyncio.create_task(poll())
    try:
        return await measure_window(lambda: done, timing)
    finally:
        await stop(task)
        client.close()


async def edge_source(
    endpoint: str, config: ModbusSource, points: list[Point], timing: Timing
) -> float:
    source = ModbusTcpSource(config, points, endpoint=endpoint)
    sink = CountingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        return await measure_window(lambda: sink.count, timing)
    finally:
        await stop(task)


def write_plant(document: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    register = folder / "register.yaml"
    register.write_text(yaml.safe_dump(document, sort_keys=False))
    scenario = folder / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"seed": 1, "register": "register.yaml"}))
    return register, scenario


async def stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def device_process(
    scenario: Path, endpoint: str, log_path: Path, source: str = SOURCE
) -> AsyncIterator[None]:
    """The simulator serving ``source`` of ``scenario`` at ``endpoint``, as its own process,
    until the block ends."""
    log = await asyncio.to_thread(log_path.open, "wb")
    arguments = ["-m", "simulators", "run", "--scenario", str(scenario), "--log-level", "WARNING"]
    arguments += ["--endpoint", f"{source}={endpoint}"]
    device = await asyncio.create_subprocess_exec(
        sys.executable, *arguments, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        parts = urlsplit(endpoint)
        host, port = parts.hostname, parts.port
        for _ in range(300):
            if device.returncode is not None:
                raise BenchError(f"the simulator exited with {device.returncode} ({log_path})")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(host, port)
                writer.close()
                break
            await asyncio.sleep(0.2)
        yield
    finally:
        device.terminate()
        try:
            await asyncio.wait_for(device.wait(), 15)
        except TimeoutError:
            device.kill()
            await device.wait()
        log.close()


async def run_size(
    signals: int, runs: int, timing: Timing, folder: Path, say: Callable[[str], None]
) -> SizeResult:
    register_path, scenario = await asyncio.to_thread(
        write_plant, register_document(signals), folder
    )
    register = await asyncio.to_thread(load_register, register_path)
    config = register.plant("p1").sources[0]
    assert isinstance(config, ModbusSource)
    points = [point(config, ref.process.id, ref.signal) for ref in register.signals()]
    endpoint = f"modbus://127.0.0.1:{free_port()}"
    result = SizeResult(signals, len(plan_reads(points, config)), [], [])
    async with device_process(scenario, endpoint, folder / "simulator.log"):
        for run in range(runs):
            result.baseline.append(await bare_client(endpoint, config, points, timing))
            result.edge.append(await edge_source(endpoint, config, points, timing))
            say(
                f"{signals} signals, run {run + 1}: baseline {result.baseline[-1]:,.0f}/s, "
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
        "| signals (registers) | requests per poll | bare pymodbus client samples/s | edge ModbusTcpSource samples/s | edge / bare (median; runs) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        registers = r.signals + r.signals // 4
        runs_text = ", ".join(f"{x:.0%}" for x in r.ratios)
        lines.append(
            f"| {r.signals:,} ({registers:,}) | {r.requests} | {statistics.median(r.baseline):,.0f} | "
            f"{statistics.median(r.edge):,.0f} | **{statistics.median(r.ratios):.0%}** ({runs_text}) |"
        )
    lines += [
        "",
        "Both poll the same device process (the simulator: pymodbus's own server) back to back "
        "with the same requests, one at a time; the bare client converts each signal's "
        "registers and drops the value, the edge makes each a sample (value, GOOD status, the "
        "answer's arrival time) into a sink that counts. The device's answers bound both: the "
        "ratio is what the edge's reader costs on top.",
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
        with tempfile.TemporaryDirectory(prefix="modbus-bench-") as tmp:
            return [
                await run_size(n, args.runs, timing, Path(tmp) / f"n{n}", say) for n in args.signals
            ]

    results = asyncio.run(run_all())
    command = "python bench/modbus_path.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = render_section(results, command.strip(), timing, args.runs)
    print(section)
    if args.out:
        replace_section(args.out, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
