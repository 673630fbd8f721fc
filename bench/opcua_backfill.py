"""OPC UA backfill: an edge outage read back from the server's history, live data beside it.

    .venv/bin/python bench/opcua_backfill.py [--signals 1000] [--interval-ms 1000]
        [--outage 600] [--values-per-request 1000 5000 100] [--baseline 30] [--after 30]

Per run (one per ``--values-per-request``), one OPC UA server process (this file's
``serve`` mode: the simulator's ``OpcUaSourceServer`` with its SQLite history,
``simulators/opcua_history.py``) serves ``--signals`` Double variables. Before it listens,
each variable's history is filled with ``--outage`` seconds (and a margin) of values at
the interval ending at its start, written straight into the history storage with their
past source times; from then on the server writes every variable at every tick (source
time = the tick) through its own write path, which historizes it too. A value is its tick
number, so every sample says which tick it is.

Against that server, in the bench process (the edge's side; the server is separate):

1. **before** (the baseline, same run): the edge's ``OpcUaSource`` as the agent builds it
   (``edge.agent.build_sources``) without marks (no backfill), live data for
   ``--baseline`` seconds after a warm-up;
2. **during**: the same source built with ``edge.buffer.marks.SignalMarks`` whose marks
   are the tick ``--outage`` seconds (+ one interval) before the tick current at the
   reconnect: ``--outage`` / interval values per signal to backfill. From its first
   HistoryRead request to its last backfilled sample;
3. **after**: the same connection once the backfill is done, ``--after`` seconds.

The sink counts, checks and times (it moves the marks as the agent's buffer does); nothing
is stored. Measured: the backfill rate (backfilled samples / seconds from the first
HistoryRead request to the last backfilled sample); the live samples' latency (edge
receive time − source time) in the three windows and its ratios during / before and
during / after; the longest time without a live sample; CPU of the edge (this process)
and of the server, read from a thread (the edge's event loop may be blocked); the longest
event-loop stall on either side; the HistoryRead requests (asyncua's client session
instrumented in this process: count, nodes, values, response bytes, time to the answer
and to decode it). Every backfilled sample is checked: a tick after its signal's mark and
before its first live sample, each once, in order (``BackfillSink``). Writes the "OPC UA
backfill" section of ``docs/benchmarks.md``; exits 1 when a run was not clean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from asyncua import ua  # noqa: E402
from asyncua.client.ua_session import UaSession  # noqa: E402

from bench.cpu import CpuReadError, machine_cpu_s, process_cpu_s  # noqa: E402
from bench.opcua_path import (  # noqa: E402
    SOURCE,
    BenchError,
    CountingSink,
    register_document,
    simulator_process,
)
from bench.report import machine_description, replace_section  # noqa: E402
from common.protocols.opcua import OpcUaSignalBinding  # noqa: E402
from common.register_loader import LoadedRegister, load_register  # noqa: E402
from common.service import run_until_signal, setup_logging  # noqa: E402
from common.timestamps import ns_to_datetime  # noqa: E402
from common.wire import Sample  # noqa: E402
from edge.agent import build_sources  # noqa: E402
from edge.buffer.marks import SignalMarks  # noqa: E402
from edge.settings import EdgeSettings  # noqa: E402
from edge.sources import SignalKey  # noqa: E402
from edge.sources.opcua.source import OpcUaSource  # noqa: E402
from harness.servers import free_port  # noqa: E402

SECTION = "OPC UA backfill"
DEFAULT_VALUES_PER_REQUEST = (1000, 5000, 100)
"""The default, 1,000, and 5,000: a 10-minute gap at 1 s (600 values per node) is one request
per node with either, so the two runs send the same requests (a repeat: the noise between
runs); 100: ten times smaller answers, continuation points between them."""
SETTLE_S = 2.0
"""After the last backfilled sample, before the "after" window opens."""
STALL_S = 120.0
"""No backfill progress for this long: the run is reported incomplete."""
LOOP_PROBE_S = 0.01
STALL_REPORTED_S = 0.02
"""Event-loop stalls longer than this are recorded (on both sides)."""
SAMPLE_EVERY_S = 0.25
"""CPU and RSS are read this often."""


# ---------------------------------------------------------------------------------------
# The server (``serve`` mode, its own process)


def serve_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="the backfill bench's OPC UA server")
    parser.add_argument("--register", type=Path, required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--history-dir", type=Path, required=True)
    parser.add_argument("--history-seconds", type=float, required=True)
    parser.add_argument("--ready", type=Path, required=True, help="JSON written once listening")
    parser.add_argument("--stats", type=Path, required=True, help="JSON written at the stop")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    run_until_signal(lambda stop: serve(args, stop))
    return 0


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    # Imported here: the bench process itself does not need the simulator.
    from simulators.machine import Sample as SimSample
    from simulators.opcua_server import OpcUaBinding, OpcUaSourceServer, parse_node_id
    from simulators.opcua_server import signal_spec as sim_spec

    register = load_register(args.register)
    bindings = []
    for ref in register.signals():
        node = ref.signal.binding
        assert isinstance(node, OpcUaSignalBinding) and node.node is not None
        bindings.append(OpcUaBinding(ref.process.id, sim_spec(ref.signal), node.node))
    server = OpcUaSourceServer(SOURCE, args.endpoint, bindings, history_dir=args.history_dir)
    await server.prepare()
    history = server.history
    assert history is not None
    interval_ns = round(bindings[0].signal.interval * 1e9)

    reads: list[tuple[int, float, int]] = []
    """Per node read from the history: (start ns, seconds, values)."""
    read_node_history = history.read_node_history

    async def timed_read(
        node_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], datetime | None]:
        began, clock = time.time_ns(), time.perf_counter()
        values, point = await read_node_history(node_id, start, end, nb_values)
        reads.append((began, time.perf_counter() - clock, len(values)))
        return values, point

    history.read_node_history = timed_read  # type: ignore[method-assign]

    # The prefill: past ticks straight into the history (in the order of time, as asyncua
    # reads a table in the order written), in transactions of 20 ticks.
    index = {uri: i for i, uri in history.namespaces.items()}
    node_ids = []
    for binding in bindings:
        address = parse_node_id(binding.node)
        node_ids.append(ua.NodeId(ua.String(address.identifier), ua.Int16(index[address.uri])))
    start_ns = -(-time.time_ns() // interval_ns) * interval_ns
    first = -int(args.history_seconds * 1e9 // interval_ns)
    prefill_began = time.monotonic()
    recorded = 0
    for tick in range(first, 0):
        at = ns_to_datetime(start_ns + tick * interval_ns)
        for node_id in node_ids:
            history.record(
                node_id,
                ua.DataValue(
                    ua.Variant(float(tick), ua.VariantType.Double),
                    ua.StatusCode(),
                    SourceTimestamp=at,  # type: ignore[arg-type]
                    ServerTimestamp=at,  # type: ignore[arg-type]
                ),
            )
        recorded += len(node_ids)
        if tick % 20 == 0 or tick == -1:
            while history.saved < recorded:  # noqa: ASYNC110 (the history has no event for it)
                await asyncio.sleep(0.005)
    prefill_s = time.monotonic() - prefill_began

    def batch(tick: int) -> list[tuple[str, SimSample]]:
        ts = start_ns + tick * interval_ns
        return [(b.process, SimSample(b.signal.id, float(tick), 0, ts)) for b in bindings]

    # The ticks due since the start, before listening (the server's own write path): every
    # variable is written before a client can see it (else the server would historize its
    # initial BadWaitingForInitialData, as the simulator does).
    await sleep_until(start_ns)
    tick = 0
    while start_ns + tick * interval_ns <= time.time_ns():
        await server.write(batch(tick))
        tick += 1
    await server.listen()
    ready: dict[str, float] = {"start_ns": start_ns, "interval_ns": interval_ns}
    ready |= {"prefill_s": prefill_s, "prefilled": recorded}
    args.ready.write_text(json.dumps(ready))

    stalls: list[tuple[int, float]] = []
    probe = asyncio.create_task(watch_loop(stalls))
    try:
        while not stop.is_set():
            due = start_ns + tick * interval_ns
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, (due - time.time_ns()) / 1e9)):
                    await stop.wait()
            if stop.is_set():
                break
            await server.write(batch(tick))  # the source time is the tick's, however late
            tick += 1
    finally:
        probe.cancel()
        stats = {"reads": reads, "stalls": stalls}
        temporary = args.stats.with_suffix(".tmp")
        temporary.write_text(json.dumps(stats))
        temporary.replace(args.stats)
        await server.stop()


async def watch_loop(stalls: list[tuple[int, float]]) -> None:
    """Record (end ns, seconds) of every event-loop stall over STALL_REPORTED_S."""
    while True:
        began = time.perf_counter()
        await asyncio.sleep(LOOP_PROBE_S)
        late = time.perf_counter() - began - LOOP_PROBE_S
        if late > STALL_REPORTED_S:
            stalls.append((time.time_ns(), late))


# ---------------------------------------------------------------------------------------
# The edge side (this process)


class BackfillSink(CountingSink):
    """The edge's sink: live samples' times kept, every backfilled sample checked.

    Ticks are ``start_ns + k * interval_ns`` with value ``k``. A backfilled sample must be
    a tick after its signal's mark (else a problem), newer than the signal's previous
    backfilled sample unless a repeat (else a problem: out of order), and before the
    signal's first live sample (else counted in ``also_live``). A tick backfilled again is
    counted in ``repeats``: the backfill is at-least-once (after a connection is rebuilt
    mid-backfill its gap is read again), storage overwrites the same point.
    """

    def __init__(
        self,
        start_ns: int,
        interval_ns: int,
        mark_ns: int | None = None,
        marks: SignalMarks | None = None,
    ) -> None:
        """``marks``: moved by every sample, as the agent's buffer moves them once the
        sample is on disk (a connection rebuilt mid-backfill starts from them)."""
        super().__init__()
        self.marks = marks
        self.start_ns = start_ns
        self.interval_ns = interval_ns
        self.mark_ns = mark_ns
        self.live: list[tuple[int, int, int]] = []
        """Per live sample: (recv, source ts, server ts or 0), ns."""
        self.first_live: dict[SignalKey, int] = {}
        self.last_backfill: dict[SignalKey, int] = {}
        self.seen: dict[SignalKey, bytearray] = {}
        """Per signal, per tick after the mark: backfilled already."""
        self.per_signal: dict[SignalKey, int] = {}
        """Distinct ticks backfilled before the signal's first live sample."""
        self.backfilled = 0
        """Every sample marked backfill (repeats and also-live ones included)."""
        self.fresh = 0
        """Distinct ticks backfilled before their signal's first live sample."""
        self.expected = 0
        """Ticks between the mark and the first live sample, over the signals seen live."""
        self.repeats = 0
        self.also_live = 0
        self.first_backfill_recv = 0
        self.last_backfill_recv = 0
        self.problems: list[str] = []
        self.problem_count = 0

    def sample(self, sample: Sample) -> None:
        self.count += 1
        if self.marks is not None:
            self.marks.update((sample,))
        key = (sample.process, sample.signal)
        if not sample.backfill:
            self.live.append((sample.recv, sample.ts, sample.server_ts or 0))
            if key not in self.first_live:
                self._first_live(key, sample.ts)
            return
        if not self.first_backfill_recv:
            self.first_backfill_recv = sample.recv
        self.last_backfill_recv = sample.recv
        self.backfilled += 1
        mark = self.mark_ns if self.mark_ns is not None else self.start_ns - self.interval_ns
        tick, off = divmod(sample.ts - self.start_ns, self.interval_ns)
        index = (sample.ts - mark) // self.interval_ns - 1
        if sample.ts <= mark or off or sample.value != float(tick):
            self._problem(key, sample.ts, f"not a tick after the mark: {sample.value!r}")
            return
        seen = self.seen.setdefault(key, bytearray())
        if index >= len(seen):
            seen.extend(bytes(index + 1 - len(seen)))
        if seen[index]:
            self.repeats += 1
        elif sample.ts < self.last_backfill.get(key, mark):
            self._problem(key, sample.ts, "out of order: after a newer backfilled value")
        self.last_backfill[key] = sample.ts
        if sample.ts >= self.first_live.get(key, sample.ts + 1):
            self.also_live += 1
        elif not seen[index]:
            self.fresh += 1
            self.per_signal[key] = self.per_signal.get(key, 0) + 1
        seen[index] = 1

    def _first_live(self, key: SignalKey, ts: int) -> None:
        self.first_live[key] = ts
        if self.mark_ns is None:
            return
        expected = max(0, (ts - self.mark_ns) // self.interval_ns - 1)
        self.expected += expected
        late = sum(self.seen.get(key, bytearray())[expected:])  # backfilled, then live
        self.also_live += late
        self.fresh -= late
        if late:
            self.per_signal[key] -= late

    def complete(self, signals: int) -> bool:
        """Every tick of every signal's gap arrived (repeats aside)."""
        return len(self.first_live) == signals and self.fresh >= self.expected

    def _problem(self, key: SignalKey, ts: int, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < 10:
            self.problems.append(f"{key[0]}.{key[1]} at {ts}: {what}")


@dataclass
class HistoryRequest:
    sent_ns: int
    answered_ns: int
    """The answer's last byte received (before it is decoded)."""
    decoded_ns: int
    nodes: int
    values: int
    response_bytes: int


class RequestLog:
    """HistoryRead requests of asyncua's client sessions in this process (while installed)."""

    def __init__(self) -> None:
        self.requests: list[HistoryRequest] = []
        self._answers: dict[int, tuple[int, int]] = {}
        """Per task: (received ns, bytes) of its last HistoryRead answer."""

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        # Instrumentation of the library (not of the edge): time and size per request.
        send = UaSession._send_request  # noqa: SLF001 (the session's transport call)
        read = UaSession.history_read
        answers = self._answers

        async def timed_send(session: UaSession, request: Any, *args: Any, **kwargs: Any) -> Any:
            data = await send(session, request, *args, **kwargs)
            if isinstance(request, ua.HistoryReadRequest):
                answers[id(asyncio.current_task())] = (time.time_ns(), len(data))
            return data

        async def timed_read(
            session: UaSession, params: ua.HistoryReadParameters
        ) -> list[ua.HistoryReadResult]:
            sent = time.time_ns()
            results = await read(session, params)
            decoded = time.time_ns()
            answered, size = answers.pop(id(asyncio.current_task()), (decoded, 0))
            values = sum(len(getattr(r.HistoryData, "DataValues", None) or []) for r in results)
            self.requests.append(
                HistoryRequest(sent, answered, decoded, len(params.NodesToRead), values, size)
            )
            return results

        UaSession._send_request = timed_send  # type: ignore[method-assign,assignment] # noqa: SLF001
        UaSession.history_read = timed_read  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            UaSession._send_request = send  # type: ignore[method-assign] # noqa: SLF001
            UaSession.history_read = read  # type: ignore[method-assign]


@dataclass(frozen=True)
class Usage:
    at_ns: int
    edge_cpu_s: float
    server_cpu_s: float
    edge_rss_mb: float
    machine_busy_s: float
    """All cores, whoever used them (the machine is shared)."""
    machine_total_s: float


def rss_mb(pid: int) -> float:
    """The process's resident set now (``VmRSS``), MB; NaN without /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@contextlib.contextmanager
def sampling_usage(server_pid: int, out: list[Usage]) -> Iterator[None]:
    """Usage appended to ``out`` every SAMPLE_EVERY_S, from a thread: the edge's event loop
    may be blocked for seconds (its CPU then is what is to be seen)."""
    me = os.getpid()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_EVERY_S):
            try:
                busy, total = machine_cpu_s()
                edge, server = process_cpu_s(me), process_cpu_s(server_pid)
            except CpuReadError:
                return  # the server is gone (the run is ending)
            out.append(Usage(time.time_ns(), edge, server, rss_mb(me), busy, total))

    thread = threading.Thread(target=sample, name="usage", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass
class Window:
    """The live samples of the ticks in [start, end] (source times, ns) on one source,
    whenever they arrived; CPU and stalls over the same span of wall-clock time."""

    name: str
    start_ns: int
    end_ns: int
    samples: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_lag_p99_ms: float = 0.0
    """The server's server timestamp − source time: how late the server wrote the tick."""
    edge_cpu: float = 0.0
    """Cores (CPU seconds per second)."""
    server_cpu: float = 0.0
    edge_stall_ms: float = 0.0
    """The longest event-loop stall (beyond the probe's 10 ms sleep)."""
    server_stall_ms: float = 0.0
    silence_ms: float = 0.0
    """The longest time between two live samples received (one per tick when all is well)."""

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure_window(
    window: Window,
    live: Sequence[tuple[int, int, int]],
    usage: Sequence[Usage],
    edge_stalls: Sequence[tuple[int, float]],
    server_stalls: Sequence[tuple[int, float]],
) -> Window:
    a, b = window.start_ns, window.end_ns
    inside = [(recv, ts, server) for recv, ts, server in live if a <= ts <= b]
    received = sorted(recv for recv, _, _ in inside)
    window.silence_ms = max((y - x for x, y in itertools.pairwise(received)), default=0) / 1e6
    latency = [(recv - ts) / 1e6 for recv, ts, _ in inside]
    window.samples = len(inside)
    window.p50_ms = percentile(latency, 0.5)
    window.p99_ms = percentile(latency, 0.99)
    window.max_ms = max(latency, default=0.0)
    window.server_lag_p99_ms = percentile([(s - ts) / 1e6 for _, ts, s in inside if s], 0.99)
    within = [u for u in usage if a <= u.at_ns <= b]
    if len(within) >= 2:
        wall = (within[-1].at_ns - within[0].at_ns) / 1e9
        window.edge_cpu = (within[-1].edge_cpu_s - within[0].edge_cpu_s) / wall
        window.server_cpu = (within[-1].server_cpu_s - within[0].server_cpu_s) / wall
    window.edge_stall_ms = 1000 * max((s for t, s in edge_stalls if a <= t <= b), default=0.0)
    window.server_stall_ms = 1000 * max((s for t, s in server_stalls if a <= t <= b), default=0.0)
    return window


@dataclass
class RunResult:
    signals: int
    interval_ms: int
    outage_s: float
    values_per_request: int
    backfilled: int
    """Every sample marked backfill."""
    fresh: int
    """Distinct ticks of the gap among them."""
    expected: int
    complete: bool
    problems: list[str]
    problem_count: int
    repeats: int
    also_live: int
    first_request_ns: int
    last_backfill_ns: int
    reconnect_ns: int
    """When the backfilling source was started."""
    requests: list[HistoryRequest]
    before: Window
    during: Window
    after: Window
    edge_cpu_s: float
    """The edge's CPU seconds from the first request to the last backfilled sample."""
    server_cpu_s: float
    others_cpu: float
    """Over the backfill: the cores' busy time that was neither the edge's nor the
    server's, per second (other processes on the shared machine)."""
    edge_rss_growth_mb: float
    """The edge's largest resident set during the backfill − just before it."""
    server_node_reads: int
    server_node_read_s: float
    """Sum over the server's history reads of one node (SQLite + building DataValues)."""
    prefill_s: float
    reconnects: int = 0
    """Connections rebuilt while the backfilling source ran."""
    edge_backfill_stats: dict[str, Any] = field(default_factory=dict)
    per_signal: dict[SignalKey, int] = field(default_factory=dict)
    expected_per_signal: dict[SignalKey, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Every tick of the gap, each once (or, after a rebuilt connection, at least once)."""
        once = self.reconnects > 0 or not (self.repeats or self.also_live)
        return self.complete and not self.problem_count and once

    @property
    def backfill_s(self) -> float:
        return (self.last_backfill_ns - self.first_request_ns) / 1e9

    @property
    def rate(self) -> float:
        return self.backfilled / self.backfill_s if self.backfill_s > 0 else 0.0

    @property
    def since_reconnect_s(self) -> float:
        return (self.last_backfill_ns - self.reconnect_ns) / 1e9


@dataclass(frozen=True)
class Timing:
    warmup: float = 5.0
    """After the baseline source is up, before its window opens."""
    baseline: float = 30.0
    after: float = 30.0


def write_register(
    folder: Path, signals: int, interval_ms: int, values_per_request: int
) -> tuple[Path, LoadedRegister]:
    document = register_document(signals, interval_ms)
    document["plants"][0]["sources"][0]["backfill_values_per_request"] = values_per_request
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "register.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path, load_register(path)


def edge_source(
    register_path: Path,
    register: LoadedRegister,
    endpoint: str,
    folder: Path,
    marks: SignalMarks | None,
) -> OpcUaSource:
    """The register's source as the agent builds it (its defaults), with these marks."""
    settings = EdgeSettings(
        register_file=register_path,
        plant="p1",
        endpoints={SOURCE: endpoint},
        opcua_pki_dir=folder / "pki",
    )
    (source,) = build_sources(register, settings, marks)
    assert isinstance(source, OpcUaSource)
    return source


@contextlib.asynccontextmanager
async def running(source: OpcUaSource, sink: BackfillSink) -> AsyncIterator[asyncio.Task[None]]:
    """``source`` run into ``sink`` (entered once it reports up), stopped on exit."""
    task = asyncio.create_task(source.run(sink))
    try:
        async with asyncio.timeout(300):
            await sink.up.wait()
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def sleep_until(ns: int) -> None:
    await asyncio.sleep(max(0.0, (ns - time.time_ns()) / 1e9))


async def run_one(
    signals: int,
    interval_ms: int,
    outage_s: float,
    values_per_request: int,
    timing: Timing,
    folder: Path,
    say: Callable[[str], None],
) -> RunResult:
    register_path, register = await asyncio.to_thread(
        write_register, folder, signals, interval_ms, values_per_request
    )
    # A history left in the folder would be read too (its ticks numbered from another start).
    await asyncio.to_thread(shutil.rmtree, folder / "history", True)
    interval_ns = interval_ms * 1_000_000
    outage_ns = round(outage_s * 1e9) // interval_ns * interval_ns
    # The history reaches back beyond the mark: the baseline and the set-up come first.
    lead = timing.warmup + timing.baseline + 60.0
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    ready_file, stats_file = folder / "ready.json", folder / "server-stats.json"
    server_args = [str(SCRIPT), "serve", "--register", str(register_path)]
    server_args += ["--endpoint", endpoint, "--history-dir", str(folder / "history")]
    server_args += ["--history-seconds", f"{outage_s + lead:g}"]
    server_args += ["--ready", str(ready_file), "--stats", str(stats_file)]
    usage: list[Usage] = []
    edge_stalls: list[tuple[int, float]] = []
    requests = RequestLog()
    say(f"{signals} signals at {interval_ms} ms, {values_per_request} values/request: server…")
    async with simulator_process(server_args, endpoint, folder / "server.log") as server:
        ready = await read_ready(ready_file)
        start_ns = ready["start_ns"]
        probe = asyncio.create_task(watch_loop(edge_stalls))
        try:
            with sampling_usage(server.pid, usage):
                say(
                    f"  {ready['prefilled']:,} values prefilled in {ready['prefill_s']:.1f} s; "
                    "baseline (no backfill)…"
                )
                base_sink = BackfillSink(start_ns, interval_ns)
                baseline = edge_source(register_path, register, endpoint, folder, None)
                async with running(baseline, base_sink):
                    await asyncio.sleep(timing.warmup)
                    before_start = time.time_ns()
                    await asyncio.sleep(timing.baseline)
                    before_end = time.time_ns()
                    await asyncio.sleep(SETTLE_S)  # the window's last ticks arrive

                # Reconnect just after a tick (the server writes it within ~0.1 interval), so
                # the subscription's first values are that tick's: the gap is the whole outage.
                tick = -(-(time.time_ns() - start_ns) // interval_ns)
                current = start_ns + tick * interval_ns
                await sleep_until(current + interval_ns // 6)
                mark = current - outage_ns - interval_ns
                keys = [(ref.process.id, ref.signal.id) for ref in register.signals()]
                marks = SignalMarks(folder / "marks.json", dict.fromkeys(keys, mark), 1.0)
                sink = BackfillSink(start_ns, interval_ns, mark, marks)
                source = edge_source(register_path, register, endpoint, folder, marks)
                say(f"  backfill of {outage_s:g} s over {signals} signals…")
                reconnect = time.time_ns()
                rss_before = rss_mb(os.getpid())
                with requests.installed():
                    async with running(source, sink):
                        await wait_backfilled(sink, source, signals, requests)
                        done = time.time_ns()
                        await sleep_until(done + int(SETTLE_S * 1e9))
                        after_start = time.time_ns()
                        await asyncio.sleep(timing.after)
                        after_end = time.time_ns()
                        await asyncio.sleep(SETTLE_S)
                        backfill_stats = dict(vars(source.stats.backfill))
                        reconnects = source.stats.reconnects
        finally:
            probe.cancel()
    server_stats = json.loads(await asyncio.to_thread(stats_file.read_text))
    server_stalls = [(int(t), float(s)) for t, s in server_stats["stalls"]]
    first_request = requests.requests[0].sent_ns if requests.requests else reconnect
    last = sink.last_backfill_recv or first_request
    during = [u for u in usage if first_request <= u.at_ns <= last]
    edge_cpu = server_cpu = others = 0.0
    if len(during) >= 2:
        edge_cpu = during[-1].edge_cpu_s - during[0].edge_cpu_s
        server_cpu = during[-1].server_cpu_s - during[0].server_cpu_s
        busy = during[-1].machine_busy_s - during[0].machine_busy_s
        wall = (during[-1].at_ns - during[0].at_ns) / 1e9
        others = max(0.0, busy - edge_cpu - server_cpu) / wall
    windows = [
        measure_window(Window(name, a, b), lv, usage, edge_stalls, server_stalls)
        for name, a, b, lv in (
            ("before", before_start, before_end, base_sink.live),
            ("during", first_request, last, sink.live),
            ("after", after_start, after_end, sink.live),
        )
    ]
    reads = [(int(t), float(s), int(n)) for t, s, n in server_stats["reads"]]
    reads = [r for r in reads if reconnect <= r[0] <= last]
    expected_per_signal = {
        key: max(0, (ts - mark) // interval_ns - 1) for key, ts in sink.first_live.items()
    }
    result = RunResult(
        signals=signals,
        interval_ms=interval_ms,
        outage_s=outage_ns / 1e9,
        values_per_request=values_per_request,
        backfilled=sink.backfilled,
        fresh=sink.fresh,
        expected=sink.expected,
        complete=sink.complete(signals),
        problems=sink.problems,
        problem_count=sink.problem_count,
        repeats=sink.repeats,
        also_live=sink.also_live,
        first_request_ns=first_request,
        last_backfill_ns=last,
        reconnect_ns=reconnect,
        requests=list(requests.requests),
        before=windows[0],
        during=windows[1],
        after=windows[2],
        edge_cpu_s=edge_cpu,
        server_cpu_s=server_cpu,
        others_cpu=others,
        edge_rss_growth_mb=max((u.edge_rss_mb for u in during), default=rss_before) - rss_before,
        server_node_reads=len(reads),
        server_node_read_s=sum(s for _, s, _ in reads),
        prefill_s=float(ready["prefill_s"]),
        reconnects=reconnects,
        edge_backfill_stats=backfill_stats,
        per_signal=dict(sink.per_signal),
        expected_per_signal=expected_per_signal,
    )
    say(
        f"  {result.backfilled:,} of {result.expected:,} backfilled in {result.backfill_s:.1f} s "
        f"({result.rate:,.0f}/s), {len(result.requests)} requests; live p99 "
        f"{result.before.p99_ms:,.0f} → {result.during.p99_ms:,.0f} ms"
        + ("" if result.clean else f"; {_defects(result)}: {result.problems}")
    )
    return result


async def read_ready(path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            ready: dict[str, Any] = json.loads(await asyncio.to_thread(path.read_text))
            return ready
        await asyncio.sleep(0.05)
    raise BenchError(f"the server did not write {path}")


async def wait_backfilled(
    sink: BackfillSink, source: OpcUaSource, signals: int, requests: RequestLog
) -> None:
    """Until every tick of the gap arrived, or nothing moved for STALL_S (for 10 s once a
    request failed or the connection was rebuilt: the rest may come by no backfill)."""
    seen = (-1, -1)
    moved = time.monotonic()
    while not sink.complete(signals):
        await asyncio.sleep(0.05)
        now = (sink.backfilled, len(requests.requests))
        if now != seen:
            seen, moved = now, time.monotonic()
        quiet = time.monotonic() - moved
        gave_up = source.stats.backfill.failures or source.stats.reconnects
        if quiet > STALL_S or (gave_up and quiet > 10.0):
            return


def render_section(results: list[RunResult], command: str, settings: str) -> str:
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with:",
        "",
        "```",
        command,
        "```",
        "",
        f"Settings: {settings}.",
        "",
        "Machine:",
        "",
        *machine_description(),
        "",
        "One OPC UA server process per run (asyncua: the simulator's `OpcUaSourceServer` "
        "with its SQLite history, `bench/opcua_backfill.py serve`), `N` Double variables "
        "written every interval through the server's own write path (which historizes "
        "them); before it listens, each variable's history is prefilled with the outage "
        "(and a margin) at the interval, with past source times. The edge side is the bench "
        "process: `OpcUaSource` as the agent builds it (`build_sources`, default settings, "
        "one connection) into a sink that checks every backfilled sample, moves the marks as "
        "the buffer does, and keeps each live sample's latency (edge receive time − source "
        "time). Same run, same server: *before* = the source without marks (no backfill); "
        "*during* = the source with `SignalMarks` one outage (+ one interval) old, from its "
        "first HistoryRead request to its last backfilled sample; *after* = that connection "
        "once the backfill is done.",
        "",
        "### Backfill",
        "",
        "| values/request | backfilled (expected) | seconds | **samples/s** | from reconnect "
        "| requests × nodes | values / response | MB / response | answer p50 / max "
        "| decode p50 / max | server: node reads | edge CPU | server CPU | edge RSS growth |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for number, r in enumerate(results):
        req = r.requests
        nodes = sorted({q.nodes for q in req})
        answer = [(q.answered_ns - q.sent_ns) / 1e6 for q in req]
        decode = [(q.decoded_ns - q.answered_ns) / 1e6 for q in req]
        values = [q.values for q in req]
        size = [q.response_bytes / 1e6 for q in req]
        got = f"{r.backfilled:,} ({r.expected:,})"
        if not r.clean or r.reconnects:
            got += f" **{_defects(r)}**"
        lines.append(
            f"| {r.values_per_request:,} | {got} | {r.backfill_s:.1f} | **{r.rate:,.0f}** "
            f"| {r.since_reconnect_s:.1f} s | {len(req)} × {'/'.join(map(str, nodes)) or '–'} "
            f"| {sum(values) / max(1, len(req)):,.0f} (max {max(values, default=0):,}) "
            f"| {sum(size) / max(1, len(size)):.2f} (max {max(size, default=0):.2f}) "
            f"| {percentile(answer, 0.5):,.0f} / {max(answer, default=0):,.0f} ms "
            f"| {percentile(decode, 0.5):,.0f} / {max(decode, default=0):,.0f} ms "
            f"| {r.server_node_read_s:.1f} s "
            f"| {r.edge_cpu_s:.1f} s ({_ms_per_k(r.edge_cpu_s, r.backfilled)}) "
            f"| {r.server_cpu_s:.1f} s ({_ms_per_k(r.server_cpu_s, r.backfilled)}) "
            f"| {f'{r.edge_rss_growth_mb:,.0f} MB' if number == 0 else '–'} |"
        )
    lines += [
        "",
        "### Live data beside it",
        "",
        "| values/request | window | s | live samples/s | p50 | p99 | max "
        "| **p50 / p99 vs before** | p50 / p99 vs after | longest silence "
        "| server write lag p99 | edge CPU | server CPU | longest loop stall edge / server |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for w in (r.before, r.during, r.after):
            lines.append(
                f"| {r.values_per_request:,} | {w.name} | {w.seconds:.1f} | {w.per_s:,.0f} "
                f"| {w.p50_ms:,.0f} ms | {w.p99_ms:,.0f} ms | {w.max_ms:,.0f} ms "
                f"| **{_ratios(w, r.before)}** | {_ratios(w, r.after)} "
                f"| {w.silence_ms / 1000:.1f} s | {w.server_lag_p99_ms:,.0f} ms "
                f"| {w.edge_cpu:.0%} | {w.server_cpu:.0%} "
                f"| {w.edge_stall_ms:,.0f} / {w.server_stall_ms:,.0f} ms |"
            )
    clean = all(r.clean and not r.reconnects for r in results)
    lines += [
        "",
        "- *backfilled (expected)*: samples marked `backfill`; expected: per signal, the "
        "ticks between its mark and its first live sample. Each was checked: a tick after "
        "the mark with its value, not older than the signal's previous backfilled one "
        "unless a repeat, not also received live"
        + (
            "; in every run each of them arrived, once."
            if clean
            else "; **not in every run** (*rebuilt*: connections rebuilt during the backfill; "
            "after one the backfill reads its gap again, at least once by design)."
        ),
        "- *seconds*, *samples/s*: from the first HistoryRead request sent to the last "
        "backfilled sample received; *from reconnect*: from the source's start (connect, "
        "namespaces, limits, UserAccessLevel, subscription, the backfill's wait for the "
        "first live values).",
        "- *requests*: HistoryRead requests (asyncua's client session instrumented in the "
        "bench process); *answer*: request sent → answer received (the server's work and "
        "the transfer); *decode*: answer received → decoded (asyncua, on the edge's event "
        "loop). *Server: node reads*: the server's time in its history storage's reads of "
        "one node each (SQLite on its thread, then building the DataValues), summed over the "
        "backfill; the rest of its answer time is encoding the answer and waiting.",
        "- *edge / server CPU*: utime + stime from `/proc` over the backfill (and ms per "
        "1,000 backfilled samples), or per window in % of one core; the edge's includes its "
        "live data and the bench's sink and probes. *Edge RSS growth*: its largest resident "
        "set during the backfill − just before it, in the first run only (later runs reuse "
        "the memory the first one freed).",
        "- *live*: the samples of the ticks the server wrote in the window (source time in "
        "it), whenever they arrived; *live samples/s* is the offered rate when none is "
        "missing. Latency: edge receive time − source time; it includes the publishing "
        "interval (500 ms), so its p50 depends on the phase of a connection's publishing "
        "cycle against the ticks: *before* is another connection, *after* the same one as "
        "*during*. *Longest silence*: the longest time between two live samples received. "
        "*Server write lag*: server timestamp − source time (how late the server wrote the "
        "tick). *Loop stall*: the longest time a 10 ms `asyncio.sleep` overslept, in the "
        "edge (bench) process and in the server process.",
        "",
        "### Reading",
        "",
        *[_reading(r) for r in results],
    ]
    return "\n".join(lines)


def _reading(r: RunResult) -> str:
    outcome = (
        "every value of the gap arrived once"
        if r.clean and not r.reconnects
        else f"**{r.fresh:,} of the {r.expected:,} values of the gap arrived; {_defects(r)}**"
    )
    return (
        f"- {r.values_per_request:,} values per request: {r.backfilled:,} samples "
        f"({r.outage_s:g} s × {r.signals:,} signals) backfilled in {r.backfill_s:.1f} s, "
        f"{r.rate:,.0f} samples/s ({r.since_reconnect_s:.1f} s from the reconnect), "
        f"{len(r.requests)} HistoryRead requests; {outcome}. Meanwhile live data arrived with "
        f"p50 / p99 / max {r.during.p50_ms:,.0f} / {r.during.p99_ms:,.0f} / "
        f"{r.during.max_ms:,.0f} ms against {r.before.p50_ms:,.0f} / {r.before.p99_ms:,.0f} "
        f"/ {r.before.max_ms:,.0f} ms before (p99 × {_ratio(r.during.p99_ms, r.before.p99_ms)}"
        f"), with up to {r.during.silence_ms / 1000:.1f} s without any live sample "
        f"({r.before.silence_ms / 1000:.1f} s before). CPU over the backfill: edge "
        f"{r.edge_cpu_s:.1f} s, server {r.server_cpu_s:.1f} s; other processes on the "
        f"machine {r.others_cpu:.0%} of a core."
    )


def _defects(r: RunResult) -> str:
    told = [] if r.complete else [f"incomplete ({r.fresh:,} of {r.expected:,})"]
    for count, what in (
        (r.problem_count, "problems"),
        (r.repeats, "repeats"),
        (r.also_live, "also live"),
        (r.reconnects, "rebuilt"),
    ):
        if count:
            told.append(f"{count:,} {what}")
    return ", ".join(told)


def _ratios(window: Window, base: Window) -> str:
    if window is base:
        return "1.00 / 1.00"
    return f"{_ratio(window.p50_ms, base.p50_ms)} / {_ratio(window.p99_ms, base.p99_ms)}"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "–"


def _ms_per_k(cpu_s: float, samples: int) -> str:
    return f"{cpu_s * 1e6 / samples:.1f} ms/1,000" if samples else "–"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="OPC UA backfill benchmark (docs/benchmarks.md)")
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--interval-ms", type=int, default=1000, help="every signal's period")
    parser.add_argument("--outage", type=float, default=600.0, help="seconds of gap to backfill")
    parser.add_argument(
        "--values-per-request",
        type=int,
        nargs="+",
        default=list(DEFAULT_VALUES_PER_REQUEST),
        help="the source's backfill_values_per_request: one run (server) each",
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="before the baseline window")
    parser.add_argument("--baseline", type=float, default=30.0, help="baseline window seconds")
    parser.add_argument("--after", type=float, default=30.0, help="window after the backfill")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    if args.signals < 1 or args.interval_ms < 1 or min(args.values_per_request) < 1:
        parser.error("--signals, --interval-ms and --values-per-request must be ≥ 1")
    if args.outage < 2 * args.interval_ms / 1000:
        parser.error("--outage must be at least two intervals")
    if args.baseline <= 0 or args.after <= 0 or args.warmup < 0:
        parser.error("--baseline and --after must be positive, --warmup not negative")
    return args


async def run_all(args: argparse.Namespace, say: Callable[[str], None]) -> list[RunResult]:
    timing = Timing(args.warmup, args.baseline, args.after)
    results = []
    with tempfile.TemporaryDirectory(prefix="opcua-backfill-") as tmp:
        for n in args.values_per_request:
            folder = Path(tmp) / f"vpr-{n}"
            results.append(
                await run_one(args.signals, args.interval_ms, args.outage, n, timing, folder, say)
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] == ["serve"]:
        return serve_main(given[1:])
    args = parse_args(given)
    command = shlex.join([".venv/bin/python", "bench/opcua_backfill.py", *given])
    settings = (
        f"{args.signals:,} signals at {args.interval_ms} ms, outage {args.outage:g} s, "
        f"backfill_values_per_request {' and '.join(f'{n:,}' for n in args.values_per_request)}"
        f" (one run and server each), warm-up {args.warmup:g} s, baseline {args.baseline:g} s, "
        f"after {args.after:g} s"
    )

    def say(text: str) -> None:
        print(f"bench: {text}", flush=True)

    logging.basicConfig(level=logging.WARNING)
    began = time.monotonic()
    try:
        results = asyncio.run(run_all(args, say))
    except BenchError as exc:
        print(f"opcua_backfill: {exc}", file=sys.stderr)
        return 1
    section = render_section(results, command, settings)
    replace_section(args.out, SECTION, section)
    print(section)
    print(
        f"\nbench: wrote section {SECTION!r} of {args.out} ({time.monotonic() - began:.0f} s)",
        flush=True,
    )
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
