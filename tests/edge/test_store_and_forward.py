"""Store-and-forward with real processes: a real edge agent (``python -m edge run``) between a
simulated MQTT device fleet and a real central mosquitto, killed with SIGKILL and cut off
from its broker. What the edge read must reach the central broker: compared against the
simulators' ledger (what was produced, with source timestamps) over the periods in which
the edge was alive, and against the edge's own disk at the moment it was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from common.topics import DEFAULT_PREFIX, edge_topic
from common.wire import decode_batch
from edge.buffer.acks import AckState
from edge.buffer.records import RecordError, check, decode_payload
from harness.servers import MosquittoServer
from tests import registers

pytestmark = pytest.mark.integration


def _machine(process_id: str, name: str, industry: str, parameters: list[str]) -> dict[str, Any]:
    """A state (on change) and ``parameters``, every 100 ms, on topics ``sf/<id>/<signal>``."""
    signals = [
        registers.sig(
            signal_id,
            "state" if signal_id == "state" else "parameter",
            "dev",
            "on_change" if signal_id == "state" else "periodic",
            "100ms",
            topic=f"sf/{process_id}/{signal_id}",
        )
        for signal_id in ["state", *parameters]
    ]
    return registers.process(process_id, signals, industry=industry, name=name)


REGISTER = registers.to_yaml(
    registers.document(
        [
            registers.plant(
                "p1",
                [registers.mqtt_source("dev", "mqtt://127.0.0.1:1")],
                [
                    registers.line(
                        "l1",
                        [
                            _machine(
                                "d1",
                                "Screwing",
                                "discrete",
                                ["torque", "angle", *(f"p{i}" for i in range(6))],
                            ),
                            _machine(
                                "d2",
                                "Mixing",
                                "process",
                                ["viscosity", "speed", *(f"q{i}" for i in range(6))],
                            ),
                        ],
                    )
                ],
            )
        ],
        enterprise="sf-ent",
        region="Test",
        version=None,
    )
)
SCENARIO = "seed: 7\nregister: register.yaml\nmachines: {}\n"
EDGE = "edge-p1"
SAMPLES_TOPIC = edge_topic(DEFAULT_PREFIX, "sf-ent", "p1", EDGE, "samples")
MARGIN_NS = 2_000_000_000
"""Samples this close to a kill may not have reached the edge yet (or not its disk)."""

Key = tuple[str, str, int]


@dataclass
class Published:
    """Everything the edge published on the central broker, seen by a persistent session."""

    samples: set[Key] = field(default_factory=set)
    up_events: dict[int, int] = field(default_factory=dict)
    """boot → ts of the device source's first "up" liveness event in that boot."""
    batches: int = 0


async def _subscribe(broker: MosquittoServer, seen: Published, ready: asyncio.Event) -> None:
    # A persistent session (clean_session off, QoS 1): the broker queues what the edge
    # publishes while this subscriber is away, including across a broker restart.
    while True:
        try:
            async with aiomqtt.Client(
                broker.host, broker.port, identifier="sf-test-consumer", clean_session=False
            ) as client:
                await client.subscribe(SAMPLES_TOPIC, qos=1)
                ready.set()
                async for message in client.messages:
                    batch = decode_batch(bytes(message.payload), SAMPLES_TOPIC)
                    seen.batches += 1
                    cols = batch.samples
                    seen.samples.update(zip(cols.process, cols.signal, cols.ts, strict=True))
                    for event in batch.liveness:
                        if event.source == "dev" and event.up:
                            seen.up_events.setdefault(batch.boot, event.ts)
        except aiomqtt.MqttError:
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def consumer(broker: MosquittoServer) -> AsyncIterator[Published]:
    seen = Published()
    ready = asyncio.Event()
    task = asyncio.create_task(_subscribe(broker, seen, ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@dataclass
class Plant:
    folder: Path
    device_broker: str
    central_broker: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def buffer_dir(self) -> Path:
        return self.folder / "edge-buffer"

    @property
    def ledger(self) -> Path:
        return self.folder / "ledger.jsonl"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def start_simulators(self) -> subprocess.Popen[bytes]:
        args = ["-m", "simulators", "run", "--scenario", str(self.folder / "scenario.yaml")]
        args += ["--broker", f"dev={self.device_broker}", "--ledger", str(self.ledger)]
        return self._spawn("simulators", args, {})

    def start_edge(self) -> subprocess.Popen[bytes]:
        args = ["-m", "edge", "run", "--register", str(self.folder / "register.yaml")]
        args += ["--plant", "p1", "--uplink-broker", self.central_broker]
        args += ["--broker", f"dev={self.device_broker}"]
        env = {
            "EDGE_BUFFER_DIR": str(self.buffer_dir),
            "EDGE_HEALTH_PORT": "0",
            "EDGE_BUFFER_COMMIT_INTERVAL": "100ms",
            "EDGE_FLUSH_INTERVAL": "200ms",
            "EDGE_RECONNECT_MAX_DELAY": "1s",
            "EDGE_STATUS_INTERVAL": "1s",
        }
        return self._spawn("edge", args, env)

    def logs(self) -> str:
        return "\n".join(
            f"===== {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-30:])
            for p in sorted(self.folder.glob("*.log"))
        )

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def plant(
    tmp_path: Path, mosquitto: MosquittoServer, private_mosquitto: MosquittoServer
) -> Iterator[Plant]:
    (tmp_path / "register.yaml").write_text(REGISTER)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    stack = Plant(tmp_path, mosquitto.url, private_mosquitto.url)
    yield stack
    stack.stop_all()


def produced(ledger: Path, windows: list[tuple[int, int]]) -> set[Key]:
    out = set()
    for line in ledger.read_text().splitlines():
        r = json.loads(line)
        if any(start <= r["ts"] <= end for start, end in windows):
            out.add((r["process"], r["signal"], r["ts"]))
    return out


def durable_on_disk(directory: Path) -> tuple[set[Key], set[Key]]:
    """(every sample in a whole record on the edge's disk, the unacknowledged ones)."""
    text = (directory / "ack.json").read_text() if (directory / "ack.json").exists() else ""
    acks = AckState.from_json(json.loads(text)) if text else AckState()
    every: set[Key] = set()
    unacked: set[Key] = set()
    for path in sorted(directory.glob("*.seg")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            try:
                header = check(data, offset)
            except RecordError:
                break  # a torn tail: never handed out, so never acknowledged either
            for i, (process, sig, ts, *_) in enumerate(
                decode_payload(data, offset, header).samples
            ):
                every.add((process, sig, ts))
                if not acks.is_acked(header.first + i):
                    unacked.add((process, sig, ts))
            offset += header.size
    return every, unacked


async def until(check: object, timeout: float, what: str, plant: Plant) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{plant.logs()}")


def kill9(proc: subprocess.Popen[bytes]) -> int:
    killed_at = time.time_ns()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed_at


async def assert_all_arrive(seen: Published, expected: set[Key], plant: Plant) -> None:
    await until(lambda: expected <= seen.samples, 30, "every expected sample", plant)
    missing = expected - seen.samples
    assert not missing, f"{len(missing)} samples never published, e.g. {sorted(missing)[:5]}"


async def test_kill_9_mid_stream_loses_nothing_that_was_read(
    plant: Plant, private_mosquitto: MosquittoServer
) -> None:
    async with consumer(private_mosquitto) as seen:
        sims = plant.start_simulators()
        edge = plant.start_edge()
        await until(lambda: len(seen.up_events) == 1, 30, "the edge's first batches", plant)
        await until(lambda: len(seen.samples) > 600, 30, "a stream of samples", plant)
        await asyncio.sleep(2.0)
        killed_at = kill9(edge)
        on_disk, _ = durable_on_disk(plant.buffer_dir)
        assert on_disk, "the edge wrote nothing to its buffer"

        await asyncio.sleep(1.0)  # dead for a while: what is produced now is never read
        plant.start_edge()
        await until(lambda: len(seen.up_events) == 2, 30, "the restarted edge", plant)
        # Long enough that the second life, less its margins, holds a stream of samples
        # even on a loaded machine.
        await asyncio.sleep(6.0)
        sims.send_signal(signal.SIGTERM)
        sims.wait(15)
        stopped_at = time.time_ns()

        (_, up1), (_, up2) = sorted(seen.up_events.items())
        windows = [
            (up1 + MARGIN_NS // 2, killed_at - MARGIN_NS),
            (up2 + MARGIN_NS // 2, stopped_at - MARGIN_NS),
        ]
        expected = produced(plant.ledger, windows)
        for start, end in windows:  # both periods of life are represented
            assert sum(start <= ts <= end for _, _, ts in expected) > 50
        await assert_all_arrive(seen, expected | on_disk, plant)


async def test_central_broker_outage_and_kill_9_during_it(
    plant: Plant, private_mosquitto: MosquittoServer
) -> None:
    async with consumer(private_mosquitto) as seen:
        sims = plant.start_simulators()
        edge = plant.start_edge()
        await until(lambda: len(seen.samples) > 600, 30, "a stream of samples", plant)
        await private_mosquitto.stop_async()
        outage_started = time.time_ns()
        await asyncio.sleep(3.0)  # the edge keeps reading into its disk buffer
        killed_at = kill9(edge)
        _, backlog = durable_on_disk(plant.buffer_dir)
        # The outage left an unacknowledged backlog on disk, produced during the outage.
        assert len(backlog) > 200
        assert max(ts for _, _, ts in backlog) > outage_started

        plant.start_edge()  # restarts with the broker still down: reads on, into the backlog
        await asyncio.sleep(3.0)
        await private_mosquitto.start_async()
        await until(lambda: len(seen.up_events) == 2, 30, "the restarted edge", plant)
        await asyncio.sleep(2.0)
        sims.send_signal(signal.SIGTERM)
        sims.wait(15)
        stopped_at = time.time_ns()

        (_, up1), (_, up2) = sorted(seen.up_events.items())
        windows = [
            (up1 + MARGIN_NS // 2, killed_at - MARGIN_NS),
            (up2 + MARGIN_NS // 2, stopped_at - MARGIN_NS),
        ]
        expected = produced(plant.ledger, windows)
        # Samples read during the outage, before and after the kill, are all in there.
        assert any(outage_started < ts < killed_at - MARGIN_NS for _, _, ts in expected)
        assert any(up2 < ts < up2 + 2_000_000_000 for _, _, ts in expected)
        await assert_all_arrive(seen, expected | backlog, plant)
