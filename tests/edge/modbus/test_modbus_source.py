"""The Modbus TCP reader against pymodbus's own server (the simulator's device): every data
type, a refused address named while the others flow, a failing input, a device that goes
away and comes back, and one that stops answering."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from common.protocols.modbus import ModbusSignalBinding, ModbusSource
from common.quality import BAD, GOOD
from common.register import SignalRole
from common.wire import Sample as WireSample
from edge.health import verdict
from edge.sources.modbus.plan import Point
from edge.sources.modbus.source import BAD_TIMEOUT, ModbusTcpSource, status_for
from harness.servers import LOOPBACK, free_port
from simulators.machine import Sample, SignalSpec
from simulators.modbus_server import ModbusBinding, ModbusDeviceServer
from tests.edge.source_kit import RecordingSink, eventually, running

pytestmark = pytest.mark.integration

SIGNALS: dict[str, tuple[dict[str, Any], Any]] = {
    "state": ({"address": 0, "type": "string", "length": 4}, "RUNNING"),
    "count16": ({"address": 4, "type": "int16"}, -1234),
    "raw": ({"address": 5}, 65000),
    "strokes": ({"address": 6, "type": "uint32", "word_order": "little"}, 3_000_000_000),
    "delta": ({"address": 8, "type": "int32"}, -70_000),
    "energy": ({"address": 10, "type": "uint64"}, 2**40 + 5),
    "offset64": ({"address": 14, "type": "int64"}, -(2**40)),
    "force": ({"address": 20, "type": "float32", "byte_order": "little"}, 12.5),
    "precise": ({"address": 22, "type": "float64"}, 1234.5678),
    "temperature": ({"table": "input", "address": 3, "type": "int16", "scale": 0.1}, 23.5),
    "auto": ({"address": 30, "bit": 3}, True),
    "door": ({"table": "discrete", "address": 5}, True),
    "lube": ({"table": "coil", "address": 0, "device_id": 2}, True),
}


def points(names: list[str] | None = None) -> list[Point]:
    out = []
    for name in names or list(SIGNALS):
        fields, _ = SIGNALS[name]
        binding = ModbusSignalBinding.model_validate(fields)
        out.append(Point("press", name, binding.device_id or 1, binding))
    return out


def source_config(endpoint: str, **fields: Any) -> ModbusSource:
    return ModbusSource.model_validate(
        {"id": "plc", "kind": "modbus", "endpoint": endpoint, "poll_interval": 0.1, **fields}
    )


def device(endpoint: str, served: list[Point]) -> ModbusDeviceServer:
    bindings = [
        ModbusBinding(p.process, SignalSpec(p.signal, SignalRole.PARAMETER), p.device_id, p.binding)
        for p in served
    ]
    return ModbusDeviceServer("plc", endpoint, bindings)


async def set_values(server: ModbusDeviceServer, names: list[str], status: int = GOOD) -> None:
    now = time.time_ns()
    await server.write(("press", Sample(n, SIGNALS[n][1], status, now)) for n in names)


def latest(sink: RecordingSink, signal: str) -> WireSample | None:
    found = [s for s in sink.samples if s.signal == signal]
    return found[-1] if found else None


async def test_every_data_type_is_read_as_the_register_says() -> None:
    endpoint = f"modbus://{LOOPBACK}:{free_port()}"
    served = points()
    server = device(endpoint, served)
    await set_values(server, list(SIGNALS))
    await server.listen()
    source = ModbusTcpSource(source_config(endpoint, max_gap=8), served)
    try:
        async with running(source) as sink:
            await eventually(
                lambda: {s.signal for s in sink.samples} == set(SIGNALS), what="every signal"
            )
    finally:
        await server.stop()
    for name, (_, expected) in SIGNALS.items():
        sample = latest(sink, name)
        assert sample is not None and sample.status == GOOD, (name, sample)
        assert sample.value == pytest.approx(expected), name
        assert sample.ts == sample.recv  # Modbus has no source time: the answer's arrival
    assert sink.ups() and not sink.rejections
    # 13 signals in 4 requests: holding 0-30 merged, the input, the discrete, device 2's coil.
    assert source.stats.requests_per_cycle == 4


async def test_a_refused_address_is_named_once_and_the_others_keep_flowing() -> None:
    endpoint = f"modbus://{LOOPBACK}:{free_port()}"
    served = points(["count16", "raw", "force"])
    wanted = [*served, Point("press", "ghost", 1, ModbusSignalBinding(address=24))]
    server = device(endpoint, served)  # the device has no register 24
    await set_values(server, ["count16", "raw", "force"])
    await server.listen()
    source = ModbusTcpSource(source_config(endpoint, max_gap=8), wanted)
    try:
        async with running(source) as sink:
            await eventually(
                lambda: sum(s.signal == "force" and s.status == GOOD for s in sink.samples) >= 3,
                what="good samples after the split",
            )
    finally:
        await server.stop()
    assert sink.rejections == [("plc", "holding 24 (device 1)", "Modbus exception 2 (press.ghost)")]
    ghosts = [s for s in sink.samples if s.signal == "ghost"]
    assert ghosts and all(s.value is None and s.status == status_for(2) for s in ghosts)
    assert not [e for e in sink.events if not e.up and e.detail != "stopped"]
    assert source.stats.refused == {"holding 24 (device 1)": "Modbus exception 2 (press.ghost)"}


async def test_a_failing_input_is_a_bad_sample_not_a_value() -> None:
    endpoint = f"modbus://{LOOPBACK}:{free_port()}"
    served = points(["count16", "force"])
    server = device(endpoint, served)
    await set_values(server, ["count16", "force"])
    await server.listen()
    source = ModbusTcpSource(source_config(endpoint, max_gap=0), served)
    try:
        async with running(source) as sink:
            await eventually(lambda: latest(sink, "force") is not None, what="a first read")
            await set_values(server, ["force"], status=BAD)  # its input module failed
            await eventually(
                lambda: (s := latest(sink, "force")) is not None and s.status != GOOD,
                what="the failure",
            )
            failed = latest(sink, "force")
            await set_values(server, ["force"])
            await eventually(
                lambda: (s := latest(sink, "force")) is not None and s.status == GOOD,
                what="recovery",
            )
    finally:
        await server.stop()
    assert failed is not None and failed.value is None and failed.status == status_for(4)
    assert all(s.status == GOOD for s in sink.samples if s.signal == "count16")


async def test_a_device_that_goes_away_is_down_once_and_read_again_when_back() -> None:
    endpoint = f"modbus://{LOOPBACK}:{free_port()}"
    served = points(["count16"])
    server = device(endpoint, served)
    await set_values(server, ["count16"])
    await server.listen()
    source = ModbusTcpSource(source_config(endpoint), served, reconnect_max_delay=0.5)
    async with running(source) as sink:
        await eventually(lambda: bool(sink.ups()), what="up")
        await server.stop()
        await eventually(lambda: bool(sink.downs()), what="down")
        failed = source.stats.failed_connects
        await eventually(  # several reconnection attempts: still one down report
            lambda: source.stats.failed_connects >= failed + 3, what="reconnection attempts"
        )
        back = device(endpoint, served)
        await set_values(back, ["count16"])
        await back.listen()
        try:
            await eventually(lambda: len(sink.ups()) >= 2, what="up again")
            before = len(sink.samples)
            await eventually(lambda: len(sink.samples) > before + 3, what="samples again")
        finally:
            await back.stop()
    assert [e.up for e in sink.transitions()][:3] == [True, False, True]
    assert source.stats.connects >= 2


async def test_a_device_that_stops_answering_times_out_to_bad_samples_and_down() -> None:
    """A hung device: the connection is accepted, requests are read, nothing is answered."""
    hung: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)
        while await reader.read(1024):
            pass

    server = await asyncio.start_server(swallow, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    source = ModbusTcpSource(
        source_config(f"modbus://{LOOPBACK}:{port}", timeout=0.3), points(["count16"])
    )
    try:
        async with running(source) as sink:
            await eventually(lambda: bool(sink.events), what="a liveness report")
    finally:
        for writer in hung:
            writer.close()
        server.close()
    assert not sink.events[0].up and "no read of the cycle was answered" in sink.events[0].detail
    assert sink.samples and all(s.value is None and s.status == BAD_TIMEOUT for s in sink.samples)


def test_a_poll_cycle_longer_than_the_interval_makes_the_edge_say_so() -> None:
    source = ModbusTcpSource(source_config("modbus://127.0.0.1:1", poll_interval=0.5), points())
    source.stats.state, source.stats.last_cycle_s = "polling", 0.8
    report = {
        "uplink": {"state": "connected", "last_error": ""},
        "sources": {"plc": source.health()},
        "buffer": {"bytes_on_disk": 0, "depth": 0, "write_errors": 0, "last_error": ""},
    }
    assert verdict(report, 1000, 1000) == [
        "source plc: read cycle 0.80s is longer than its poll interval 0.5s (samples are "
        "late; poll less often or split the nodes)"
    ]
    source.stats.last_cycle_s = 0.2
    assert verdict(report | {"sources": {"plc": source.health()}}, 1000, 1000) == []
