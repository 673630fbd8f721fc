"""Writers and reader against a real influxd (v1 directly, v2 through the 1.8-style proxy)."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import pytest

from collector.storage import reader as reader_module
from collector.storage.errors import (
    DatabaseMissing,
    QueryError,
    QueryUnavailable,
    WriteRejected,
    WriteUnauthorized,
    WriteUnavailable,
)
from collector.storage.influxql import quote_ident
from collector.storage.lineprotocol import (
    SerializeStats,
    StoredLiveness,
    StoredSample,
    liveness_line,
    point_line,
    sample_lines,
)
from collector.storage.reader import InfluxQLReader, SignalColumns
from collector.storage.settings import InfluxSettings
from collector.storage.writer import InfluxWriter, V1Writer, V2Writer, make_writer
from harness.servers import InfluxServer, V2ProxyServer, free_port
from harness.v2_proxy import V2Proxy

pytestmark = pytest.mark.integration

S = 1_000_000_000
START = 1_800_000_000 * S  # window [START, END)
END = START + 60 * S
ENT = "ent 'quoted', \"double\" = x"  # tag values that need escaping in LP and InfluxQL

Mode = Literal["v1", "v2"]


@pytest.fixture(params=["v1", "v2"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


@pytest.fixture
def settings_for(
    influxdb: InfluxServer, v2_proxy: V2ProxyServer
) -> Callable[[Mode, str], InfluxSettings]:
    def make(mode: Mode, database: str) -> InfluxSettings:
        if mode == "v1":
            return InfluxSettings(url=influxdb.url, mode="v1", database=database)
        return InfluxSettings(
            url=v2_proxy.url,
            mode="v2",
            database=database,
            org="plantkpi",
            token="ignored-token",
        )

    return make


@pytest.fixture
async def clients(
    mode: Mode, influx_db: str, settings_for: Callable[[Mode, str], InfluxSettings]
) -> AsyncIterator[tuple[InfluxWriter, InfluxQLReader]]:
    settings = settings_for(mode, influx_db)
    writer = make_writer(settings)
    reader = InfluxQLReader(settings)
    yield writer, reader
    await writer.close()
    await reader.close()


def sample(
    process: str, signal: str, ts: int, value: Any, status: int = 0, **kw: Any
) -> StoredSample:
    fields: dict[str, Any] = {
        "enterprise": ENT,
        "plant": "plant a,1",
        "line": "line=1",
        "process": process,
        "signal": signal,
        "ts_ns": ts,
        "value": value,
        "status": status,
        "recv_ns": ts + 1_000,
        "server_ts_ns": None,
        "edge": "edge-1",
        "seq": 1,
    }
    fields.update(kw)
    return StoredSample(**fields)


async def test_samples_round_trip_exactly(
    clients: tuple[InfluxWriter, InfluxQLReader], mode: Mode
) -> None:
    writer, reader = clients
    proc, sig = "turning, 'op' 10", 'spindle "speed" = rpm'
    values: list[Any] = [
        1.5,
        0.1 + 0.2,
        1e-7,
        -1e300,
        5e20,  # whole floats in [2**64, 1e21): the server writes a 21-digit JSON integer
        -2e19,
        42,  # int: stored and read back as float
        2**53,
        True,
        False,
        'text with "quotes", \\ backslash, = and, commas',
        "unicode: é 中文 \u0085 next-line \u2028 line-separator",
        "",
        None,  # status-only sample
        math.nan,  # not storable: the sample is kept without a value
    ]
    statuses = [0, 0x40000000, 0x80310000, 0x00960000, 0, 0, 0xFFFFFFFF, 0, 0, 0, 0, 0]
    statuses += [0, 0x80000000, 0]
    samples = [
        sample(
            proc, sig, START + i * S + 123_456_789, v, st, server_ts_ns=START + i if i % 2 else None
        )
        for i, (v, st) in enumerate(zip(values, statuses, strict=True))
    ]
    stats = SerializeStats()
    await writer.write(sample_lines(samples, stats))
    assert stats.nonfinite_fields == 1
    assert writer.stats.lines_written == len(samples)
    assert writer.stats.batches_written == 1

    got = await reader.samples(START, END, 10 * S, ENT)
    assert list(got) == [(proc, sig)]
    columns = got[(proc, sig)]
    assert columns.ts == [s.ts_ns for s in samples]
    assert columns.status == statuses
    expected = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values]
    expected[-1] = None
    assert columns.value == expected
    assert [type(v) for v in columns.value] == [type(v) for v in expected]

    # Every other field came back too, unchanged.
    rows = await reader.points("sample", START, END, {"process": proc})
    assert [r.fields.get("server_ns") for r in rows] == [s.server_ts_ns for s in samples]
    assert {r.tags["plant"] for r in rows} == {"plant a,1"}
    assert {r.tags["line"] for r in rows} == {"line=1"}
    assert all(r.fields["recv_ns"] == r.ts_ns + 1_000 for r in rows)
    assert {r.fields["edge"] for r in rows} == {"edge-1"}


async def test_window_includes_last_sample_before_start(
    clients: tuple[InfluxWriter, InfluxQLReader],
) -> None:
    writer, reader = clients
    lookback = 2 * S
    samples = [
        sample("a", "s", START - 3 * S, 1.0),  # older than the lookback
        sample("a", "s", START - S - S // 2, 2.0),
        sample("a", "s", START - S // 2, 3.0),  # the last one before start
        sample("a", "s", START, 4.0),  # at start: inside
        sample("a", "s", START + S, "x"),
        sample("a", "s", END - 1, True),
        sample("a", "s", END, 9.0),  # at end: outside
        sample("b", "s", START - S, 5.0, 0x80000000),  # only a sample before start
        sample("c", "s", START - 5 * S, 6.0),  # only outside the lookback
        sample("a", "s", START + 2 * S, 7.0, enterprise="other"),  # other enterprise
    ]
    await writer.write(sample_lines(samples))
    got = await reader.samples(START, END, lookback, ENT)
    assert set(got) == {("a", "s"), ("b", "s")}
    a_ts = [START - S // 2, START, START + S, END - 1]
    assert got[("a", "s")] == SignalColumns(
        ts=a_ts,
        status=[0, 0, 0, 0],
        value=[3.0, 4.0, "x", True],
        recv=[ts + 1_000 for ts in a_ts],  # the receive time comes back with each sample
    )
    assert got[("b", "s")] == SignalColumns([START - S], [0x80000000], [5.0], [START - S + 1_000])
    no_lookback = await reader.samples(START, END, 0, ENT)
    assert no_lookback[("a", "s")].ts == [START, START + S, END - 1]
    # A quote in the enterprise cannot widen the filter.
    assert await reader.samples(START, END, lookback, "x' OR '1'='1") == {}


async def test_liveness_round_trip(clients: tuple[InfluxWriter, InfluxQLReader]) -> None:
    writer, reader = clients
    events = [
        StoredLiveness(ENT, "p1", "a1-opcua", START - 10 * S, True, "connected", "e1"),
        StoredLiveness(ENT, "p1", "a1-opcua", START + S, False, 'lost:\n"timeout"', "e1"),
        StoredLiveness(ENT, "p1", "a1-opcua", START + 2 * S, True, "", "e1"),
        StoredLiveness(ENT, "p1", "_edge", START + 3 * S, True, "birth", "e1"),
        StoredLiveness(ENT, "p2", "dev, 1", START - 100 * S, False, "", "e2"),
    ]
    await writer.write([liveness_line(e) for e in events])
    got = await reader.liveness(START, END, ENT, lookback_ns=60 * S)
    assert {key: [(e.ts, e.up) for e in events] for key, events in got.items()} == {
        ("p1", "a1-opcua"): [(START - 10 * S, True), (START + S, False), (START + 2 * S, True)],
        ("p1", "_edge"): [(START + 3 * S, True)],
    }
    assert got[("p1", "a1-opcua")][1].detail == 'lost:\\n"timeout"'
    wide = await reader.liveness(START - 1000 * S, END, ENT)
    assert [(e.ts, e.up) for e in wide[("p2", "dev, 1")]] == [(START - 100 * S, False)]
    detail = await reader.points("liveness", START, START + 2 * S, {"source": "a1-opcua"})
    assert [r.fields["detail"] for r in detail] == ['lost:\\n"timeout"']


async def test_generic_points_with_tag_filter(clients: tuple[InfluxWriter, InfluxQLReader]) -> None:
    writer, reader = clients
    lines = [
        point_line(
            "process_status",
            {"enterprise": ENT, "process": p, "register_version": "demo-2026.11"},
            {"digitalized": p == "p'1", "coverage": 0.97, "reasons": "", "window_ns": 60 * S},
            START + i,
        )
        for i, p in enumerate(["p'1", "p 2", "p'1"])
    ]
    await writer.write([line for line in lines if line is not None])
    rows = await reader.points("process_status", START, END, {"process": "p'1", "enterprise": ENT})
    assert [r.ts_ns for r in rows] == [START, START + 2]
    assert rows[0].tags == {"enterprise": ENT, "process": "p'1", "register_version": "demo-2026.11"}
    assert rows[0].fields == {
        "digitalized": True,
        "coverage": 0.97,
        "reasons": "",
        "window_ns": 60 * S,
    }


async def test_gzipped_writes_round_trip(
    mode: Mode, influx_db: str, settings_for: Callable[[Mode, str], InfluxSettings]
) -> None:
    """Loopback servers get plain bodies by default (``gzip: auto``): this is the
    compressed path a remote InfluxDB gets, against the real server."""
    settings = settings_for(mode, influx_db).model_copy(update={"gzip": "on"})
    assert settings.compresses
    writer, reader = make_writer(settings, max_lines=1000), InfluxQLReader(settings)
    try:
        await writer.write(
            sample_lines(sample("gz", "s", START + i, float(i)) for i in range(2500))
        )
        assert writer.stats.batches_written == 3
        got = await reader.samples(START, END, 0, ENT)
        assert got[("gz", "s")].value == [float(i) for i in range(2500)]
    finally:
        await writer.close()
        await reader.close()


async def test_large_write_is_chunked(clients: tuple[InfluxWriter, InfluxQLReader]) -> None:
    writer, reader = clients
    n = 12_001
    await writer.write(sample_lines(sample("big", "s", START + i, float(i)) for i in range(n)))
    assert writer.stats.batches_written == 3  # 5,000 + 5,000 + 2,001
    assert writer.stats.lines_written == n
    reader.chunk_size = 5_000  # several chunks in the answer, joined again
    got = await reader.samples(START, END, 0, ENT)
    assert got[("big", "s")].value == [float(i) for i in range(n)]


async def test_long_answer_lets_other_tasks_run_with_the_collector_on(
    clients: tuple[InfluxWriter, InfluxQLReader], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long answer is decoded in steps with the event loop run between them; the cycle
    collector, paused while rows are decoded, is on whenever another task runs."""
    writer, reader = clients
    n = 3_000
    await writer.write(sample_lines(sample("big", "s", START + i, float(i)) for i in range(n)))
    reader.chunk_size = 100  # 30 chunks of about 8 KB
    monkeypatch.setattr(reader_module, "YIELD_BYTES", 20_000)
    collector_on: list[bool] = []
    reading = True

    async def other_task() -> None:
        while reading:
            collector_on.append(gc.isenabled())
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    before = len(collector_on)
    got = await reader.samples(START, END, 0, ENT)
    reading = False
    await ticker
    assert got[("big", "s")].value == [float(i) for i in range(n)]
    assert len(collector_on) - before >= 5  # it ran between the decoding steps
    assert all(collector_on)
    assert gc.isenabled()


async def test_field_type_conflict_is_rejected_and_counted(
    clients: tuple[InfluxWriter, InfluxQLReader],
) -> None:
    writer, _ = clients
    await writer.write(sample_lines([sample("p", "s", START, 1.0)]))
    tags = {"enterprise": ENT, "line": "l", "plant": "p", "process": "p", "signal": "s"}
    wrong = point_line("sample", tags, {"value": "a string", "status": 0}, START + 1)
    assert wrong is not None
    with pytest.raises(WriteRejected) as caught:
        await writer.write([wrong])
    error = caught.value
    assert error.status == 400
    assert (error.measurement, error.field) == ("sample", "value")
    assert "field 'value'" in str(error) and "'sample'" in str(error)
    assert writer.stats.failures["rejected"] == 1
    assert writer.stats.lines_rejected == 1


async def test_rejected_chunk_does_not_stop_the_others(
    mode: Mode, influx_db: str, settings_for: Callable[[Mode, str], InfluxSettings]
) -> None:
    settings = settings_for(mode, influx_db)
    writer = make_writer(settings, max_lines=2)
    reader = InfluxQLReader(settings)
    try:
        good = sample_lines([sample("p", "s", START + i, float(i)) for i in range(6)])
        tags = {"enterprise": ENT, "line": "l", "plant": "p", "process": "p", "signal": "s"}
        bad = point_line("sample", tags, {"value": "oops", "status": 0}, START + 100)
        assert bad is not None
        with pytest.raises(WriteRejected) as caught:
            await writer.write([*good[:2], bad, *good[2:]])
        assert caught.value.written == 5  # chunks 1, 3 and 4 of [g g][b g][g g][g]
        got = await reader.samples(START, END, 0, ENT)
        # InfluxDB stored the good line of the rejected chunk as well (partial write).
        assert got[("p", "s")].value == [float(i) for i in range(6)]
        assert writer.stats.failures["rejected"] == 1
        assert writer.stats.batches_written == 3
    finally:
        await writer.close()
        await reader.close()


async def test_missing_database_then_ensure_database(
    mode: Mode, influxdb: InfluxServer, settings_for: Callable[[Mode, str], InfluxSettings]
) -> None:
    name = f"missing_{uuid.uuid4().hex[:8]}"
    settings = settings_for(mode, name)
    writer = make_writer(settings)
    line = sample_lines([sample("p", "s", START, 1.0)])
    try:
        with pytest.raises(DatabaseMissing, match="database not found"):
            await writer.write(line)
        assert writer.stats.failures["database_missing"] == 1
        assert await writer.ensure_database() is True
        assert await writer.ensure_database() is True  # idempotent
        await writer.write(line)
        assert influxdb.query('SELECT count("value") FROM "sample"', db=name)["results"][0][
            "series"
        ]
    finally:
        await writer.close()
        influxdb.drop_database(name)


async def test_missing_retention_policy_is_database_missing(
    influxdb: InfluxServer, influx_db: str
) -> None:
    settings = InfluxSettings(url=influxdb.url, database=influx_db, retention_policy="nope")
    writer = V1Writer(settings)
    try:
        with pytest.raises(DatabaseMissing, match="retention policy not found"):
            await writer.write(sample_lines([sample("p", "s", START, 1.0)]))
    finally:
        await writer.close()


async def test_stopped_influxd_is_unavailable_then_recovers(private_influxdb: InfluxServer) -> None:
    server = private_influxdb
    server.create_database("db")
    proxy = V2Proxy(server.url)  # in-process this time
    proxy_url = await proxy.start()
    v1 = V1Writer(InfluxSettings(url=server.url, database="db", timeout=2))
    v2 = V2Writer(InfluxSettings(url=proxy_url, mode="v2", database="db", timeout=2))
    reader = InfluxQLReader(InfluxSettings(url=server.url, database="db", timeout=2))
    try:
        await v1.write(sample_lines([sample("p", "s", START, 1.0)]))
        await server.stop_async()
        for writer in (v1, v2):
            with pytest.raises(WriteUnavailable) as caught:
                await writer.write(sample_lines([sample("p", "s", START + 1, 2.0)]))
            assert caught.value.retryable
            assert writer.stats.failures == {"unavailable": 1}
        with pytest.raises(QueryUnavailable, match='SELECT "value"'):
            await reader.samples(START, END, 0, ENT)
        await server.start_async()
        await v1.write(sample_lines([sample("p", "s", START + 1, 2.0)]))
        await v2.write(sample_lines([sample("p", "s", START + 2, 3.0)]))
        got = await reader.samples(START, END, 0, ENT)
        assert got[("p", "s")].value == [1.0, 2.0, 3.0]  # data from before the stop is kept
    finally:
        for client in (v1, v2, reader):
            await client.close()
        await proxy.stop()


async def test_unreachable_and_silent_servers_are_unavailable() -> None:
    # Nothing listens on this port: connection refused.
    refused = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database="db")
    for mode in ("v1", "v2"):
        writer = make_writer(refused.model_copy(update={"mode": mode}))
        try:
            with pytest.raises(WriteUnavailable, match="cannot reach"):
                await writer.write(["m f=1 1"])
        finally:
            await writer.close()

    # A socket that accepts and never answers: the request must time out, not hang.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = InfluxSettings(url=f"http://127.0.0.1:{port}", database="db", timeout=0.3)
        writer = V1Writer(settings)
        try:
            with pytest.raises(WriteUnavailable):
                await writer.write(["m f=1 1"])
        finally:
            await writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_query_errors_carry_the_query(influxdb: InfluxServer, influx_db: str) -> None:
    reader = InfluxQLReader(InfluxSettings(url=influxdb.url, database=influx_db))
    try:
        with pytest.raises(QueryError, match=r"(?s)error parsing query.*SELEKT nonsense"):
            await reader.query("SELEKT nonsense")
        missing = InfluxQLReader(InfluxSettings(url=influxdb.url, database="no_such_db"))
        try:
            with pytest.raises(QueryError, match=r"(?s)database not found.*FROM \"sample\""):
                await missing.samples(START, END, 0, ENT)
        finally:
            await missing.close()
        assert await reader.query("SHOW MEASUREMENTS") == []
    finally:
        await reader.close()


async def test_bind_parameters(clients: tuple[InfluxWriter, InfluxQLReader]) -> None:
    writer, reader = clients
    await writer.write(sample_lines([sample("p", "s", START, 1.0), sample("q", "s", START, 2.0)]))
    series = await reader.query(
        'SELECT "value" FROM "sample" WHERE "process" = $p', params={"p": "q"}
    )
    assert [s.values for s in series] == [[[START, 2]]]


async def test_refused_create_warns_once_and_credentials_are_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Auth on and no admin user yet: influxd refuses CREATE DATABASE.
    async with InfluxServer(config={("http", "auth-enabled"): True}) as server:
        for mode in ("v1", "v2"):
            settings = InfluxSettings(url=server.url, mode=mode, database="db", token="t")
            writer = make_writer(settings)
            try:
                caplog.clear()
                with caplog.at_level(logging.WARNING, logger="collector.storage.writer"):
                    assert await writer.ensure_database() is False
                    assert await writer.ensure_database() is False
                warnings = [r.getMessage() for r in caplog.records]
                assert len(warnings) == 1
                expected = (
                    "bucket 'db' must already exist" if mode == "v2" else "must already exist"
                )
                assert expected in warnings[0]
            finally:
                await writer.close()

        server.query("CREATE USER \"admin\" WITH PASSWORD 'pw' WITH ALL PRIVILEGES", post=True)
        wrong = make_writer(InfluxSettings(url=server.url, username="admin", password="wrong"))
        right_settings = InfluxSettings(url=server.url, username="admin", password="pw")
        right = make_writer(right_settings)
        reader = InfluxQLReader(right_settings)
        try:
            with pytest.raises(WriteUnauthorized, match="credentials refused"):
                await wrong.write(["m f=1 1"])
            assert wrong.stats.failures == {"unauthorized": 1}
            assert await right.ensure_database() is True
            await right.write(sample_lines([sample("p", "s", START, 1.0)]))
            got = await reader.samples(START, END, 0, ENT)
            assert got[("p", "s")].value == [1.0]
        finally:
            for client in (wrong, right, reader):
                await client.close()


async def test_reader_sends_writes_as_post(influxdb: InfluxServer) -> None:
    name = f"made_by_reader_{uuid.uuid4().hex[:8]}"
    reader = InfluxQLReader(InfluxSettings(url=influxdb.url, database=name))
    try:
        # Sent as POST (influxd 1.x only warns about GET; later versions refuse it).
        assert await reader.query(f"CREATE DATABASE {quote_ident(name)}") == []
        databases = await reader.query("SHOW DATABASES")
        assert [name] in databases[0].values
    finally:
        await reader.close()
        influxdb.drop_database(name)
