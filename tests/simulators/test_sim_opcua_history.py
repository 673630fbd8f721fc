"""The history the simulated OPC UA servers keep (``--history``), read by a real asyncua
client with HistoryReadRaw: exactly what the ledger recorded, page by page, across a
restart and across a simulator process killed with SIGKILL."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds

from common.register import SignalRole
from common.timestamps import ns_to_datetime
from harness.servers import REPO_ROOT, free_port
from simulators.ledger import Ledger, LedgerRecord, read_ledger
from simulators.machine import SignalSpec
from simulators.opcua_history import SQLiteHistory
from simulators.opcua_server import OpcUaBinding, OpcUaSourceServer
from simulators.runner import Simulator
from simulators.scenario import LoadedScenario, load_scenario
from tests.simulators.conftest import OPCUA_REGISTER, OPCUA_SCENARIO, write_scenario
from tests.simulators.test_sim_mqtt import wait_until
from tests.simulators.test_sim_opcua import NODES, resolve, to_ns

pytestmark = pytest.mark.integration

HISTORY_READ = 0x04
CURRENT_READ = 0x01
Entry = tuple[int, Any, int]
"""(source time ns as the client decodes it, value, status): what the ledger keeps."""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> LoadedScenario:
    folder = tmp_path_factory.mktemp("opcua-history-scenario")
    return load_scenario(write_scenario(folder, OPCUA_REGISTER, OPCUA_SCENARIO))


def simulator(scenario: LoadedScenario, history: Path | None) -> Simulator:
    return Simulator(
        scenario,
        endpoints={"s1": f"opc.tcp://127.0.0.1:{free_port()}"},
        tick=0.02,
        ledger=Ledger(keep=True),
        history_dir=history,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def historian(
    scenario: LoadedScenario, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Simulator]:
    async with simulator(scenario, tmp_path_factory.mktemp("opcua-history")) as sim:
        await asyncio.sleep(0.6)  # ~6 samples of each periodic signal
        yield sim


def entries(values: Sequence[ua.DataValue]) -> list[Entry]:
    out: list[Entry] = []
    for dv in values:
        assert dv.StatusCode is not None
        value = dv.Value.Value if dv.Value is not None else None
        out.append((to_ns(dv.SourceTimestamp), value, int(dv.StatusCode.value)))
    return out


def written(records: Sequence[LedgerRecord], key: tuple[str, str]) -> list[Entry]:
    return [(r.ts, r.value, r.status) for r in records if (r.process, r.signal) == key]


def window(items: Sequence[Entry], first: int, last: int) -> list[Entry]:
    return [item for item in items if first <= item[0] <= last]


async def read_history(client: Client, node_id: ua.NodeId, first: int, last: int) -> list[Entry]:
    """Node.read_raw_history over [first, last] (ns): every value, in the order written."""
    node = client.get_node(node_id)
    return entries(await node.read_raw_history(ns_to_datetime(first), ns_to_datetime(last)))


async def read_pages(
    client: Client, node_id: ua.NodeId, first: int, last: int, per_request: int
) -> list[list[Entry]]:
    """HistoryReadRaw as the edge's backfill sends it: NumValuesPerNode, then continuation
    points until there is none."""
    details = ua.ReadRawModifiedDetails(
        IsReadModified=cast(ua.Boolean, False),
        StartTime=cast(ua.DateTime, ns_to_datetime(first)),
        EndTime=cast(ua.DateTime, ns_to_datetime(last)),
        NumValuesPerNode=ua.UInt32(per_request),
        ReturnBounds=cast(ua.Boolean, False),
    )
    pages: list[list[Entry]] = []
    point: bytes | None = None
    while len(pages) < 1000:
        params = ua.HistoryReadParameters(
            HistoryReadDetails=details,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            ReleaseContinuationPoints=cast(ua.Boolean, False),
            NodesToRead=[ua.HistoryReadValueId(NodeId=node_id, ContinuationPoint=point)],
        )
        [result] = await client.uaclient.history_read(params)
        assert result.StatusCode is not None and result.StatusCode.is_good(), result.StatusCode
        page = entries(getattr(result.HistoryData, "DataValues", None) or [])
        assert len(page) <= per_request
        pages.append(page)
        point = result.ContinuationPoint
        if not point:
            return pages
    raise AssertionError("no end of the continuation points")


async def access(client: Client, node_id: ua.NodeId) -> tuple[int, int, bool]:
    node = client.get_node(node_id)
    values = [
        (await node.read_attribute(attribute)).Value
        for attribute in (
            AttributeIds.AccessLevel,
            AttributeIds.UserAccessLevel,
            AttributeIds.Historizing,
        )
    ]
    level, user_level, historizing = (v.Value if v is not None else None for v in values)
    assert isinstance(level, int) and isinstance(user_level, int)
    assert isinstance(historizing, bool)
    return level, user_level, historizing


async def test_variables_advertise_history_only_when_it_is_kept(historian: Simulator) -> None:
    async with Client(historian.endpoints["s1"], timeout=5) as client:
        for node in NODES.values():
            assert await access(client, await resolve(client, node)) == (
                CURRENT_READ | HISTORY_READ,
                CURRENT_READ | HISTORY_READ,
                True,
            ), node
    spec = SignalSpec("speed", SignalRole.PARAMETER)
    node = "nsu=urn:test:plain;s=m1.speed"
    plain = OpcUaSourceServer(
        "s9", f"opc.tcp://127.0.0.1:{free_port()}", [OpcUaBinding("m1", spec, node)]
    )
    await plain.prepare()
    try:
        await plain.listen()
        async with Client(plain.url, timeout=5) as client:
            node_id = await resolve(client, node)
            assert await access(client, node_id) == (CURRENT_READ, CURRENT_READ, False)
    finally:
        await plain.stop()
    assert plain.history is None


async def test_history_is_what_the_ledger_recorded(historian: Simulator) -> None:
    assert historian.ledger is not None
    # Everything the ledger holds now was written before the reads below: all of it is read.
    records = list(historian.ledger.records)
    async with Client(historian.endpoints["s1"], timeout=5) as client:
        for key, node in NODES.items():
            node_id = await resolve(client, node)
            expected = written(records, key)
            first, last = expected[0][0], expected[-1][0]
            assert await read_history(client, node_id, first, last) == expected, key
            pages = await read_pages(client, node_id, first, last, per_request=2)
            assert list(itertools.chain(*pages)) == expected, key
            if len(expected) > 2:
                assert len(pages) > 1, key  # continuation points were followed
            # the server timestamp too: the current value is the newest in the history
            current = await client.get_node(node_id).read_data_value(raise_on_bad_status=False)
            ts = to_ns(current.SourceTimestamp)
            [stored] = await client.get_node(node_id).read_raw_history(
                ns_to_datetime(ts), ns_to_datetime(ts)
            )
            assert (stored.Value, stored.StatusCode) == (current.Value, current.StatusCode), key
            assert stored.ServerTimestamp == current.ServerTimestamp, key
    # what each behaviour writes is there: Bad with its value, the offline machine's
    # initial BadWaitingForInitialData, the overridden values
    by_status = {r.status for r in records if r.signal in ("temperature", "press_force")}
    assert by_status == {0x80000000, 0x00960000}
    [initial] = written(records, ("m3", "state"))
    assert initial[1] is None and initial[2] == 0x80320000


async def test_history_spans_a_restart(scenario: LoadedScenario, tmp_path: Path) -> None:
    folder = tmp_path / "history"
    async with simulator(scenario, folder) as first:
        await asyncio.sleep(0.4)
    assert first.ledger is not None
    async with simulator(scenario, folder) as second:
        await asyncio.sleep(0.4)
        assert second.ledger is not None
        records = [*first.ledger.records, *second.ledger.records]
        async with Client(second.endpoints["s1"], timeout=5) as client:
            for key, node in NODES.items():
                expected = written(records, key)
                # both lifetimes, in one read: no gap, no value twice
                got = await read_history(
                    client, await resolve(client, node), expected[0][0], expected[-1][0]
                )
                assert got == expected, key
    [one, two] = [written(s.ledger.records, ("m3", "state")) for s in (first, second) if s.ledger]
    assert len(one) == len(two) == 1  # the offline machine: each server's initial value


async def test_history_survives_a_killed_simulator(
    scenario: LoadedScenario, tmp_path: Path
) -> None:
    folder = tmp_path / "history"
    ledger = tmp_path / "ledger.jsonl"
    url = f"opc.tcp://127.0.0.1:{free_port()}"
    with (tmp_path / "sim.log").open("w") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulators",
            "run",
            "--scenario",
            str(scenario.path),
            "--endpoint",
            f"s1={url}",
            "--ledger",
            str(ledger),
            "--history",
            str(folder),
            "--duration",
            "60s",
            "--tick",
            "20ms",
            cwd=REPO_ROOT,
            stderr=log,
        )
    try:
        await wait_until(lambda: ledger.exists() and ledger.stat().st_size > 3000, 30)
        text = ledger.read_text()
        snapshot = tmp_path / "before-kill.jsonl"
        snapshot.write_text(text[: text.rfind("\n") + 1])  # complete lines only
        before = read_ledger(snapshot)
        async with Client(url, timeout=5) as client:
            # A history read writes out what the server holds: all of `before` is in the
            # file once it is answered (the kill then loses at most later values).
            node_id = await resolve(client, NODES[("m1", "spindle_speed")])
            assert await client.get_node(node_id).read_raw_history(
                datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)
            )
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    async with simulator(scenario, folder) as after:
        await asyncio.sleep(0.3)
        assert after.ledger is not None
        records = list(after.ledger.records)
        async with Client(after.endpoints["s1"], timeout=5) as client:
            for key, node in NODES.items():
                one, two = written(before, key), written(records, key)
                got = await read_history(client, await resolve(client, node), one[0][0], two[-1][0])
                times = [ts for ts, _, _ in got]
                assert times == sorted(set(times)), key  # no value twice
                assert window(got, one[0][0], one[-1][0]) == one, key
                assert window(got, two[0][0], two[-1][0]) == two, key


async def test_storage_reads_whole_second_times_string_ids_and_pages(tmp_path: Path) -> None:
    """What asyncua's HistorySQLite alone fails at: string node ids (with any character),
    a source time on a whole second, NumValuesPerNode; and a reopened file keeps it all."""
    path = tmp_path / "h.sqlite"
    node_id = ua.NodeId(ua.String("Line 1/Press 'A', \"B\"; (x)"), ua.Int16(2))
    base = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # microsecond 0
    values = [
        ua.DataValue(
            ua.Variant(float(i), ua.VariantType.Double),
            ua.StatusCode(ua.UInt32(0x80000000 if i == 2 else 0)),
            SourceTimestamp=cast(ua.DateTime, base.replace(second=5 + i)),
            ServerTimestamp=cast(ua.DateTime, base.replace(second=5 + i, microsecond=7)),
        )
        for i in range(5)
    ]
    for run in range(2):
        history = SQLiteHistory(path)
        history.namespaces = {2: "urn:test:history"}
        await history.init()
        try:
            await history.new_historized_node(node_id, None)
            for dv in values[run * 3 : run * 3 + 3]:
                history.record(node_id, dv)
            kept = values[: run * 3 + 3]
            got, point = await history.read_node_history(node_id, base, None, 0)
            assert point is None
            assert [(v.Value, v.StatusCode) for v in got] == [(v.Value, v.StatusCode) for v in kept]
            assert [(to_ns(v.SourceTimestamp), to_ns(v.ServerTimestamp)) for v in got] == [
                (to_ns(v.SourceTimestamp), to_ns(v.ServerTimestamp)) for v in kept
            ]
            page, point = await history.read_node_history(node_id, base, None, 2)
            assert [v.Value for v in page] == [v.Value for v in kept[:2]]
            assert point is not None and to_ns(point) == to_ns(kept[2].SourceTimestamp)
        finally:
            await history.stop()
    assert history.saved == 2
