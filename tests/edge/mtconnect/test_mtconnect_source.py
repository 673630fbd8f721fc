"""The MTConnect reader against the simulated agent (aiohttp, on a free loopback port): every
kind of value, a data item the agent lacks named while the others flow, resuming across a
lost connection with nothing lost or read twice, an agent restart, a buffer overflow, an
agent that goes away and comes back, one that hangs, and a prompt stop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from aiohttp import web

from common.protocols.mtconnect import MtconnectSource
from common.quality import BAD, BAD_NO_COMMUNICATION, GOOD
from common.wire import Sample as WireSample
from edge.sources.mtconnect.source import BAD_NODE_ID_UNKNOWN, BoundItem, MtconnectAgentSource
from harness.servers import LOOPBACK, free_port
from simulators.ledger import Ledger
from simulators.machine import Sample
from simulators.mtconnect_agent import AgentItem, MtconnectAgent
from tests.edge.source_kit import RecordingSink, eventually, running

pytestmark = pytest.mark.integration

DEVICE = "vmc"
ITEMS = [
    AgentItem("exec", DEVICE, "EVENT", "EXECUTION", "vmc", "state"),
    AgentItem("mode", DEVICE, "EVENT", "CONTROLLER_MODE", "vmc", "mode"),
    AgentItem("S1speed", DEVICE, "SAMPLE", "ROTARY_VELOCITY", "vmc", "speed"),
    AgentItem("path_system", DEVICE, "CONDITION", "SYSTEM", "vmc", "alarm"),
    AgentItem("parts", DEVICE, "EVENT", "PART_COUNT", "vmc", "parts"),
    AgentItem("S1load", DEVICE, "SAMPLE", "LOAD", "vmc", "load"),  # never written
]
AVAIL = BoundItem("vmc", "avail", f"{DEVICE}_avail", DEVICE)  # the agent's own


def make_agent(buffer_size: int = 1024, port: int = 0) -> MtconnectAgent:
    """Port 0: the agent's ``url`` tells the port once it listens; tests that start the
    reader first give one."""
    return MtconnectAgent(
        "agent",
        f"http://{LOOPBACK}:{port}/mtc",
        ITEMS,
        buffer_size=buffer_size,
        ledger=Ledger(keep=True),
    )


def make_reader(url: str, extra: Iterable[BoundItem] = (), **fields: Any) -> MtconnectAgentSource:
    config = MtconnectSource.model_validate(
        {
            "id": "agent",
            "kind": "mtconnect",
            "endpoint": url,
            "poll_interval": 0.05,
            "timeout": 2,
            **fields,
        }
    )
    items = [BoundItem(i.process or "", i.signal or "", i.id, None) for i in ITEMS]
    return MtconnectAgentSource(config, [*items, AVAIL, *extra], reconnect_max_delay=0.3)


async def write(agent: MtconnectAgent, status: int = GOOD, **values: object) -> int:
    """Observations of ``values`` by signal, stamped now; the time stamp written."""
    now = time.time_ns()
    await agent.write(("vmc", Sample(name, value, status, now)) for name, value in values.items())  # type: ignore[arg-type]
    return now


def latest(sink: RecordingSink, signal: str) -> WireSample | None:
    found = [s for s in sink.samples if s.signal == signal]
    return found[-1] if found else None


def has(sink: RecordingSink, signal: str, value: object) -> bool:
    sample = latest(sink, signal)
    return sample is not None and sample.value == value


def caught_up(source: MtconnectAgentSource, agent: MtconnectAgent) -> bool:
    cursor = source.cursor
    return cursor is not None and cursor == (agent.instance_id, agent.next_sequence)


@contextlib.asynccontextmanager
async def listening(agent: MtconnectAgent) -> AsyncIterator[MtconnectAgent]:
    await agent.listen()
    try:
        yield agent
    finally:
        await agent.stop()


async def test_every_kind_of_value_and_unavailable_as_no_value() -> None:
    agent = make_agent()
    written = await write(
        agent, state="RUNNING", mode="AUTO", speed=1200.5, alarm="normal", parts=17
    )
    async with listening(agent), running(make_reader(agent.url)) as sink:
        await eventually(lambda: has(sink, "alarm", "Normal"), what="the first values")
        first = {s.signal: s for s in sink.samples}
        await write(agent, state="FEED_HOLD", mode="MANUAL_DATA_INPUT", alarm="fault")
        await write(agent, BAD, speed=1300.0)  # the machine's reading failed
        await eventually(lambda: has(sink, "alarm", "Fault"), what="the changes")
        await eventually(lambda: has(sink, "speed", None), what="speed unavailable")
    micro = written // 1000 * 1000  # an observation's time stamp carries µs
    assert {name: (s.value, s.status, s.ts) for name, s in first.items()} == {
        "state": ("ACTIVE", GOOD, micro),  # Execution: the simulator speaks MTConnect
        "mode": ("AUTOMATIC", GOOD, micro),
        "speed": (1200.5, GOOD, micro),  # a SAMPLE: a float
        "alarm": ("Normal", GOOD, micro),  # a CONDITION: its level
        "parts": ("17", GOOD, micro),  # an EVENT: its text
        "load": (None, BAD_NO_COMMUNICATION, first["load"].ts),  # never written: UNAVAILABLE
        "avail": ("AVAILABLE", GOOD, first["avail"].ts),
    }
    assert has(sink, "state", "FEED_HOLD") and has(sink, "mode", "MANUAL_DATA_INPUT")
    unavailable = [s for s in sink.samples if s.status == BAD_NO_COMMUNICATION]
    assert {s.signal for s in unavailable} == {"load", "speed"}
    assert all(s.value is None for s in unavailable)
    assert not any(s.value == "UNAVAILABLE" for s in sink.samples)
    assert all(s.recv >= s.ts for s in sink.samples)
    assert [e.up for e in sink.events] == [True, False] and not sink.rejections


async def test_samples_come_in_sequence_order_across_components() -> None:
    agent = make_agent()
    async with listening(agent):
        source = make_reader(agent.url)
        async with running(source) as sink:
            await eventually(lambda: caught_up(source, agent), what="caught up")
            before = len(sink.samples)
            for n in range(5):  # alternating between the Events, Samples and Condition groups
                await write(agent, state="RUNNING" if n % 2 else "IDLE", speed=float(n))
                await write(agent, alarm="warning" if n % 2 else "normal")
            await eventually(lambda: caught_up(source, agent), what="caught up again")
    got = [(s.signal, s.value) for s in sink.samples[before:]]
    expected = []
    for n in range(5):
        expected += [("state", "ACTIVE" if n % 2 else "READY"), ("speed", float(n))]
        expected.append(("alarm", "Warning" if n % 2 else "Normal"))
    assert got == expected


async def test_a_data_item_the_agent_lacks_is_named_once_and_the_others_keep_flowing() -> None:
    agent = make_agent(port=free_port())
    await write(agent, speed=1.0)
    ghost = BoundItem("vmc", "ghost", "ghost", None)
    elsewhere = BoundItem("vmc", "other", "parts", "lathe")  # on another device than named
    source = make_reader(agent.url, [ghost, elsewhere])
    async with running(source) as sink:
        async with listening(agent):
            await eventually(lambda: bool(sink.ups()), what="up")
            for n in range(3):
                await write(agent, speed=float(n + 2))
            await eventually(lambda: has(sink, "speed", 4.0), what="speed flowing")
        await eventually(lambda: bool(sink.downs()), what="down")
        async with listening(agent):  # a second connection: named again? no
            await eventually(lambda: len(sink.ups()) >= 2, what="up again")
            await write(agent, speed=5.0)
            await eventually(lambda: has(sink, "speed", 5.0), what="speed again")
    refused = {
        "ghost": "not in the agent's probe (vmc.ghost)",
        "parts": "a data item of device vmc, not lathe (vmc.other)",
    }
    assert sink.rejections == [("agent", culprit, reason) for culprit, reason in refused.items()]
    assert source.stats.refused == refused
    for name in ("ghost", "other"):
        bad = [s for s in sink.samples if s.signal == name]
        assert len(bad) == 2  # one per read of /current: at each connection
        assert all(s.value is None and s.status == BAD_NODE_ID_UNKNOWN for s in bad)
    speeds = [s.value for s in sink.samples if s.signal == "speed"]
    assert list(dict.fromkeys(speeds)) == [1.0, 2.0, 3.0, 4.0, 5.0]  # 4.0 re-sent at reconnection


async def test_a_reconnection_resumes_where_it_stopped_nothing_lost_or_read_twice() -> None:
    agent = make_agent(port=free_port())
    await write(agent, state="RUNNING", mode="AUTO", speed=0.0, alarm="normal", parts=0)
    source = make_reader(agent.url)
    async with running(source) as sink:
        async with listening(agent):
            await eventually(lambda: caught_up(source, agent), what="caught up")
            for n in range(1, 4):
                await write(agent, speed=float(n), parts=n)
            await eventually(lambda: has(sink, "parts", "3"), what="before the outage")
        await eventually(lambda: bool(sink.downs()), what="down")
        down = sink.downs()[0]
        for n in range(4, 30):  # the agent keeps collecting while the link is down
            await write(agent, speed=float(n), parts=n)
        await write(agent, state="IDLE", alarm="warning")
        async with listening(agent):
            await eventually(lambda: has(sink, "parts", "29"), what="what came meanwhile")
            for n in range(30, 33):
                await write(agent, speed=float(n), parts=n)
            await eventually(lambda: has(sink, "parts", "32"), what="after the outage")
    assert agent.ledger is not None
    for signal in ("state", "mode", "speed", "alarm", "parts"):
        delivered = [(s.ts, s.value) for s in sink.samples if s.signal == signal]
        # A re-sent value repeats the one before it: same source time, same value.
        distinct = [x for i, x in enumerate(delivered) if i == 0 or x != delivered[i - 1]]
        recorded = [
            (r.ts, r.value) for r in agent.ledger.records if r.signal == signal
        ]  # every observation the agent made, once each
        assert distinct == recorded, signal
    # mode did not change in the outage: /current re-sent it after the down, its time kept.
    (first,) = [s for s in sink.samples[: down.samples_before] if s.signal == "mode"]
    (resent,) = [s for s in sink.after(down) if s.signal == "mode"]
    assert (resent.ts, resent.value) == (first.ts, "AUTOMATIC") and resent.recv > first.recv
    assert (source.stats.agent_restarts, source.stats.sequence_gaps) == (0, 0)
    assert source.stats.connects == 2


@pytest.mark.parametrize(
    "values",
    [1, 40],
    ids=["numbers-behind-the-reader", "numbers-past-the-reader"],  # OUT_OF_RANGE / header
)
async def test_an_agent_restart_is_counted_and_read_afresh(values: int) -> None:
    agent = make_agent(port=free_port())
    await write(agent, state="RUNNING", speed=1.0)
    source = make_reader(agent.url)
    async with listening(agent), running(source) as sink:
        await eventually(lambda: caught_up(source, agent), what="caught up")
        old, resume = agent.instance_id, agent.next_sequence
        # Under the reader, before its next /sample (nothing in between: no await).
        agent.restart()
        for n in range(values):
            await write(agent, state="IDLE", speed=float(n + 2))
        assert (agent.next_sequence > resume) == (values == 40)
        await eventually(lambda: has(sink, "speed", values + 1.0), what="the new agent's values")
        await eventually(lambda: caught_up(source, agent), what="caught up again")
    assert agent.instance_id != old
    assert source.stats.agent_restarts == 1 and source.stats.instance_id == agent.instance_id
    assert source.stats.sequence_gaps == 0
    assert has(sink, "state", "READY")
    assert [e.up for e in sink.events] == [True, False]  # the last: stopped


async def test_a_buffer_overflow_is_a_counted_gap_and_reading_goes_on() -> None:
    agent = make_agent(buffer_size=16, port=free_port())
    await write(agent, state="RUNNING", speed=-1.0)
    source = make_reader(agent.url, poll_interval=0.2, sample_count=1000)
    async with listening(agent), running(source) as sink:
        await eventually(lambda: caught_up(source, agent), what="caught up")
        before = len(sink.samples)
        for n in range(40):  # between two polls: 24 more than the buffer holds
            await write(agent, speed=float(n))
        await eventually(lambda: has(sink, "speed", 39.0), what="the burst's end")
        await eventually(lambda: caught_up(source, agent), what="caught up again")
    assert (source.stats.sequence_gaps, source.stats.lost_sequences) == (1, 24)
    speeds = [s.value for s in sink.samples[before:] if s.signal == "speed"]
    assert speeds == [float(n) for n in range(24, 40)]  # what the buffer still held
    assert not [e for e in sink.events if not e.up and e.detail != "stopped"]


async def test_an_agent_that_goes_away_is_down_once_and_read_again_when_back() -> None:
    agent = make_agent(port=free_port())
    await write(agent, speed=1.0)
    source = make_reader(agent.url)
    async with running(source) as sink:
        async with listening(agent):
            await eventually(lambda: bool(sink.ups()), what="up")
        await eventually(lambda: bool(sink.downs()), what="down")
        failed = source.stats.failed_connects
        await eventually(  # several reconnection attempts: still one down report
            lambda: source.stats.failed_connects >= failed + 3, what="reconnection attempts"
        )
        async with listening(agent):
            await eventually(lambda: len(sink.ups()) >= 2, what="up again")
            await write(agent, speed=2.0)
            await eventually(lambda: has(sink, "speed", 2.0), what="samples again")
    assert [e.up for e in sink.transitions()] == [True, False, True, False]
    down = sink.downs()[0]
    assert down.detail.startswith(f"MTConnect source agent: GET {agent.url}/")
    assert "ConnectError" in down.detail
    assert source.stats.connects == 2


@contextlib.asynccontextmanager
async def answering(handler: Any) -> AsyncIterator[str]:
    """A web server that answers every request with ``handler``; its URL."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # hung handlers
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    try:
        yield f"http://{LOOPBACK}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (web.Response(status=503, text="maintenance"), "/probe: HTTP 503"),
        (web.Response(status=200, text="<html>hello</html>"), "not an MTConnect document"),
        (web.Response(status=404, text="not here"), "not XML"),
    ],
)
async def test_an_answer_that_is_no_mtconnect_document_is_down_naming_the_url(
    answer: web.Response, reason: str
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=answer.status, text=answer.text)

    async with answering(handler) as url:
        source = make_reader(url)
        async with running(source) as sink:
            await eventually(lambda: bool(sink.events), what="a liveness report")
    event = sink.events[0]
    assert not event.up
    assert f"GET {url}/probe" in event.detail and reason in event.detail, event.detail
    assert source.stats.failed_connects >= 1 and not sink.samples


async def test_an_agent_that_does_not_answer_times_out_to_down() -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async with answering(hang) as url:
        source = make_reader(url, timeout=0.3)
        async with running(source) as sink:
            await eventually(lambda: bool(sink.events), what="a liveness report")
    assert not sink.events[0].up and "ReadTimeout" in sink.events[0].detail


async def test_cancelling_the_reader_stops_it_during_a_request() -> None:
    asked = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        asked.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async with answering(hang) as url:
        source = make_reader(url, timeout=600)  # no timeout ends the request for it
        sink = RecordingSink()
        task = asyncio.create_task(source.run(sink))
        await asyncio.wait_for(asked.wait(), 20)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=20)  # a bound, not a speed
    assert task in done and task.cancelled()
    assert [(e.up, e.detail) for e in sink.events] == [(False, "stopped")]
