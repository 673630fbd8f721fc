"""The S7 reader against python-snap7's own server (the simulator's PLC): every data type
and area, refused addresses named while the others flow, a PLC that goes away and comes
back, one that stops answering, and a small PDU."""

from __future__ import annotations

import time
from typing import Any

import pytest

from common.protocols.s7 import S7SignalBinding, S7Source, parse_address
from common.quality import BAD, GOOD
from common.register import SignalRole
from common.wire import Sample as WireSample
from edge.sources.s7.plan import Point
from edge.sources.s7.source import BAD_NODE_ID_UNKNOWN, BAD_TIMEOUT
from edge.sources.s7.source import S7Source as S7Reader
from harness.servers import LOOPBACK, free_port
from simulators.machine import Sample, SignalSpec
from simulators.s7_server import S7Binding, S7PlcServer
from tests.edge.source_kit import RecordingSink, Relay, eventually, running

pytestmark = pytest.mark.integration

SIGNALS: dict[str, tuple[dict[str, Any], Any]] = {
    "running": ({"address": "DB1.DBX0.0"}, True),
    "alarm": ({"address": "DB1.DBX0.3"}, True),
    "count": ({"address": "DB1.DBW2"}, -1234),
    "strokes": ({"address": "DB1.DBD4", "type": "udint"}, 3_000_000_000),
    "delta": ({"address": "DB1.DBD8", "type": "dint"}, -70_000),
    "force": ({"address": "DB1.DBD12", "type": "real"}, 12.5),
    "energy": ({"address": "DB1.DBB16", "type": "lreal"}, 1234.5678),
    "recipe": ({"address": "DB1.DBB24", "type": "string", "length": 10}, "A-42"),
    "temperature": ({"address": "DB2.DBW0", "scale": 0.1}, 23.5),
    "status": ({"address": "MB4"}, 200),
    "speed": ({"address": "MW10", "type": "uint"}, 60000),
    "auto": ({"address": "M20.1"}, True),
    "door": ({"address": "I0.5"}, True),
    "lamp": ({"address": "QW2", "type": "word"}, 0xBEEF),
}


def points(names: list[str] | None = None) -> list[Point]:
    out = []
    for name in names or list(SIGNALS):
        binding = S7SignalBinding.model_validate(SIGNALS[name][0])
        out.append(Point("press", name, parse_address(binding.address), binding))
    return out


def source_config(endpoint: str, **fields: Any) -> S7Source:
    return S7Source.model_validate(
        {"id": "plc", "kind": "s7", "endpoint": endpoint, "poll_interval": 0.1, **fields}
    )


def plc(endpoint: str, served: list[Point]) -> S7PlcServer:
    bindings = [
        S7Binding(p.process, SignalSpec(p.signal, SignalRole.PARAMETER), p.binding) for p in served
    ]
    return S7PlcServer("plc", endpoint, bindings)


async def set_values(server: S7PlcServer, names: list[str], status: int = GOOD) -> None:
    now = time.time_ns()
    await server.write(("press", Sample(n, SIGNALS[n][1], status, now)) for n in names)


def latest(sink: RecordingSink, signal: str) -> WireSample | None:
    found = [s for s in sink.samples if s.signal == signal]
    return found[-1] if found else None


def endpoint() -> str:
    return f"s7://{LOOPBACK}:{free_port()}"


async def test_every_data_type_and_area_is_read_as_the_register_says() -> None:
    url = endpoint()
    served = points()
    server = plc(url, served)
    await set_values(server, list(SIGNALS))
    await server.listen()
    source = S7Reader(source_config(url), served)
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
        assert sample.ts == sample.recv  # S7 has no source time: the answer's arrival
    assert sink.ups() and not sink.rejections
    # DB1 0-35 is one item, DB2, MB4-MB20, IB0, QB2-3 four more: five items, one request.
    assert source.stats.requests_per_cycle == 1
    assert [item.describe() for item in source.items] == [
        "IB0",
        "QB2-3",
        "MB4-20",
        "DB1.DBB0-35",
        "DB2.DBB0-1",
    ]
    assert source.stats.pdu_size == 480


async def test_refused_addresses_are_named_once_and_the_others_keep_flowing() -> None:
    url = endpoint()
    served = points(["count", "strokes", "force"])
    ghost = S7SignalBinding(address="DB1.DBW40")  # past the end of DB1 in this PLC
    missing = S7SignalBinding(address="DB9.DBW0")  # a data block the PLC does not have
    wanted = [
        *served,
        Point("press", "ghost", parse_address(ghost.address), ghost),
        Point("press", "missing", parse_address(missing.address), missing),
    ]
    server = plc(url, served)
    await set_values(server, ["count", "strokes", "force"])
    await server.listen()
    source = S7Reader(source_config(url, max_gap=40), wanted)
    try:
        async with running(source) as sink:
            await eventually(
                lambda: sum(s.signal == "force" and s.status == GOOD for s in sink.samples) >= 3,
                what="good samples after the split",
            )
    finally:
        await server.stop()
    assert sorted(sink.rejections) == [
        ("plc", "DB1.DBW40", "address out of range (press.ghost)"),
        ("plc", "DB9.DBW0", "object does not exist (press.missing)"),
    ]
    for name in ("ghost", "missing"):
        bad = [s for s in sink.samples if s.signal == name]
        assert bad and all(s.value is None and s.status == BAD_NODE_ID_UNKNOWN for s in bad)
    assert not [e for e in sink.events if not e.up and e.detail != "stopped"]
    assert set(source.stats.refused) == {"DB1.DBW40", "DB9.DBW0"}


async def test_a_failed_input_keeps_the_plcs_last_value() -> None:
    """S7 has no quality: a PLC holds a failed input's last value, and so does the
    simulator; the reader reports what the PLC holds, never a value it made up."""
    url = endpoint()
    served = points(["force"])
    server = plc(url, served)
    await set_values(server, ["force"])
    await server.listen()
    source = S7Reader(source_config(url), served)
    try:
        async with running(source) as sink:
            await eventually(lambda: latest(sink, "force") is not None, what="a first read")
            await set_values(server, ["force"], status=BAD)
            before = len(sink.samples)
            await eventually(lambda: len(sink.samples) > before + 2, what="more reads")
    finally:
        await server.stop()
    assert {(s.value, s.status) for s in sink.samples} == {(12.5, GOOD)}


async def test_a_plc_that_goes_away_is_down_once_and_read_again_when_back() -> None:
    url = endpoint()
    served = points(["count"])
    server = plc(url, served)
    await set_values(server, ["count"])
    await server.listen()
    source = S7Reader(source_config(url), served, reconnect_max_delay=0.5)
    async with running(source) as sink:
        await eventually(lambda: bool(sink.ups()), what="up")
        await server.stop()
        await eventually(lambda: bool(sink.downs()), what="down")
        failed = source.stats.failed_connects
        await eventually(  # several reconnection attempts: still one down report
            lambda: source.stats.failed_connects >= failed + 3, what="reconnection attempts"
        )
        back = plc(url, served)
        await set_values(back, ["count"])
        await back.listen()
        try:
            await eventually(lambda: len(sink.ups()) >= 2, what="up again")
            before = len(sink.samples)
            await eventually(lambda: len(sink.samples) > before + 3, what="samples again")
        finally:
            await back.stop()
    assert [e.up for e in sink.transitions()][:3] == [True, False, True]
    assert source.stats.connects >= 2


async def test_a_plc_that_stops_answering_times_out_to_bad_samples_and_down() -> None:
    url = endpoint()
    served = points(["count", "force"])
    server = plc(url, served)
    await set_values(server, ["count", "force"])
    await server.listen()
    relay = Relay(LOOPBACK, server.port)
    port = await relay.start()
    source = S7Reader(source_config(f"s7://{LOOPBACK}:{port}", timeout=0.3), served)
    try:
        async with running(source) as sink:
            await eventually(lambda: bool(sink.ups()), what="up")
            relay.hold()  # the connection stays open; no answer comes
            await eventually(lambda: bool(sink.downs()), what="down")
    finally:
        await relay.stop()
        await server.stop()
    (down,) = sink.downs()
    assert "Receive timeout" in down.detail or "timeout" in down.detail.lower(), down.detail
    late = sink.after(sink.ups()[0])
    timed_out = [s for s in late if s.status == BAD_TIMEOUT]
    assert {s.signal for s in timed_out} == {"count", "force"}
    assert all(s.value is None for s in timed_out)


async def test_a_small_pdu_spreads_the_items_over_more_requests() -> None:
    url = endpoint()
    names = ["count", "strokes", "delta", "force", "energy", "recipe", "temperature", "speed"]
    served = points(names)
    server = plc(url, served)
    await set_values(server, names)
    await server.listen()
    # DB1 2-35 (contiguous), DB2 and MW10 are three items; at most two per request.
    source = S7Reader(source_config(url, pdu_size=240, max_gap=0, max_items_per_read=2), served)
    try:
        async with running(source) as sink:
            await eventually(
                lambda: {s.signal for s in sink.samples} == set(names), what="every signal"
            )
    finally:
        await server.stop()
    assert source.stats.pdu_size == 240
    assert source.stats.requests_per_cycle == 2
    for name in names:
        sample = latest(sink, name)
        assert sample is not None and sample.value == pytest.approx(SIGNALS[name][1]), name
