"""Replicas share the KPI (real influxd): each enterprise is evaluated by one replica, the
region roll-up from what they stored equals one collector's, and a replica that stops has
its share taken over once its heartbeat ages out."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from collector.kpi.service import KpiService, result_lines
from collector.kpi.sharding import Shard, owner, replica_from_hostname
from collector.settings import KpiSettings
from collector.storage.lineprotocol import StoredSample, sample_lines
from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from collector.storage.writer import InfluxWriter, make_writer
from common.quality import GOOD
from common.register_loader import LoadedRegister
from harness.servers import InfluxServer
from tests.collector.kpi.kpi_testkit import DEFAULTS, at, window
from tests.registers import process, register

pytestmark = pytest.mark.integration

ENTERPRISES = [(f"e{i}", "North" if i % 2 else "South") for i in range(8)]
PERIOD_S = 1.0
HORIZON_S = 10 * 365 * 86400.0


def registers() -> list[LoadedRegister]:
    return [register([process()], enterprise=e, region=r) for e, r in ENTERPRISES]


def samples(enterprise: str, healthy: bool) -> list[StoredSample]:
    out = [
        StoredSample(
            enterprise, "pl", "l1", "p1", "state", at(-10), "RUN", GOOD, at(-10), None, "e", 1
        )
    ]
    if healthy:  # else the key parameter never reports: the process does not count
        out += [
            StoredSample(
                enterprise, "pl", "l1", "p1", "speed", at(s), 1.0, GOOD, at(s), None, "e", 1
            )
            for s in range(-1, 100)
        ]
    return out


def test_rendezvous_moves_only_the_share_of_the_replica_that_left() -> None:
    keys = [f"ent-{i}" for i in range(300)]
    before = {k: owner(k, [0, 1, 2]) for k in keys}
    after = {k: owner(k, [0, 2]) for k in keys}
    assert Counter(before.values()).keys() == {0, 1, 2}
    assert all(after[k] == before[k] for k in keys if before[k] != 1)
    assert {after[k] for k in keys if before[k] == 1} == {0, 2}


def test_the_ordinal_comes_from_the_statefulset_pod_name_or_start_up_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert replica_from_hostname("plantkpi-collector-2") == 2
    monkeypatch.setenv("HOSTNAME", "plantkpi-collector-1")
    assert KpiSettings(replicas=3).shard() == Shard(1, 3)
    assert KpiSettings().shard() is None
    monkeypatch.setenv("HOSTNAME", "laptop")
    with pytest.raises(ValueError, match="COLLECTOR_KPI__REPLICA"):
        KpiSettings(replicas=2)
    with pytest.raises(ValueError, match=r"not one of 0\.\.1"):
        KpiSettings(replicas=2, replica=2)


@pytest.fixture
async def storage(
    influxdb: InfluxServer, influx_db: str
) -> AsyncIterator[tuple[InfluxWriter, InfluxQLReader]]:
    settings = InfluxSettings(url=influxdb.url, database=influx_db)
    writer, reader = make_writer(settings), InfluxQLReader(settings)
    yield writer, reader
    await writer.close()
    await reader.close()


def kpi_service(
    storage: tuple[InfluxWriter, InfluxQLReader], regs: list[LoadedRegister], shard: Shard | None
) -> KpiService:
    writer, reader = storage
    return KpiService(
        regs,
        reader,
        writer,
        DEFAULTS,
        window_s=100,
        period_s=PERIOD_S,
        lag_s=0,
        correction_horizon_s=HORIZON_S,  # the tests' windows lie in the past
        shard=shard,
    )


async def test_two_replicas_share_the_enterprises_and_take_over_from_a_dead_one(
    storage: tuple[InfluxWriter, InfluxQLReader],
) -> None:
    writer, reader = storage
    regs = registers()
    win = window(0, 100)

    def service(shard: Shard | None) -> KpiService:
        return kpi_service(storage, regs, shard)

    for i, (enterprise, _) in enumerate(ENTERPRISES):
        await writer.write(sample_lines(samples(enterprise, healthy=i % 3 != 0)))
    one, two = service(Shard(0, 2)), service(Shard(1, 2))
    await one.owned()  # both heartbeats stored before either decides
    await two.owned()
    first, second = await one.owned(), await two.owned()
    assert first is not None and second is not None
    shares = [first, second]
    owned = [{r.enterprise_id for r in share} for share in shares]
    assert owned[0] and owned[1] and not owned[0] & owned[1]
    assert owned[0] | owned[1] == {e for e, _ in ENTERPRISES}

    for replica, share in zip((one, two), shares, strict=True):
        result = await replica.evaluate(win, share)
        assert {e.enterprise_id for e in result.evaluations} == {r.enterprise_id for r in share}
        assert not any(r.scope.startswith("region") for r in result.rates)
        await writer.write(result_lines(result))
    rolled = await one.roll_up_regions(win) + await two.roll_up_regions(win)
    assert rolled == 2  # each region by one replica

    alone = await service(None).evaluate(win)
    expected = sorted(
        (r.scope, r.scope_id, r.industry, r.numerator, r.denominator, r.rate, r.enterprises)
        for r in alone.rates
        if r.scope.startswith("region")
    )
    stored = await reader.points("kpi_rate", win.end_ns, win.end_ns + 1)
    got = sorted(
        (
            row.tags["scope"],
            row.tags["scope_id"],
            row.tags["industry"],
            row.fields["numerator"],
            row.fields["denominator"],
            row.fields.get("rate"),
            row.fields["enterprises"],
        )
        for row in stored
        if row.tags["scope"].startswith("region")
    )
    assert got == expected and len(got) == 12

    # Replica 1 stops: once its last heartbeat is older than 2.5 periods, replica 0
    # evaluates every enterprise.
    await asyncio.sleep(PERIOD_S * 3)
    taken = await one.owned()
    assert taken is not None
    assert {r.enterprise_id for r in taken} == {e for e, _ in ENTERPRISES}
    assert one.live_replicas == [0]


async def test_a_corrected_enterprise_window_is_rolled_up_again_by_the_region_owner(
    storage: tuple[InfluxWriter, InfluxQLReader],
) -> None:
    """Late data corrects an enterprise's window (revision 1) on one replica; the replica
    that owns its region rolls that window up again, once, equal to one collector's."""
    writer, reader = storage
    regs = registers()
    win = window(0, 100)

    def service(shard: Shard | None) -> KpiService:
        return kpi_service(storage, regs, shard)

    late = "e1"  # its samples arrive after the window was stored
    for enterprise, _ in ENTERPRISES:
        await writer.write(sample_lines(samples(enterprise, healthy=enterprise != late)))
    replicas = [service(Shard(0, 2)), service(Shard(1, 2))]
    for replica in replicas:
        await replica.owned()
    shares = [await replica.owned() for replica in replicas]
    for replica, share in zip(replicas, shares, strict=True):
        await writer.write(result_lines(await replica.evaluate(win, share)))
    for replica in replicas:
        await replica.roll_up_regions(win)
    assert [await replica.correct_regions() for replica in replicas] == [0, 0]

    await writer.write(sample_lines(samples(late, healthy=True)))
    evaluator = next(
        replica
        for replica, share in zip(replicas, shares, strict=True)
        if share is not None and late in {r.enterprise_id for r in share}
    )
    # As `correct_pending` does once the plant's watermark moves (slices read again).
    mine = [r for r in regs if r.enterprise_id == late]
    corrected = await service(evaluator.shard).evaluate(win, mine)
    await writer.write(result_lines(corrected, revision=1))

    rolled = [await replica.correct_regions() for replica in replicas]
    assert sorted(rolled) == [0, 1]  # the owner of the late enterprise's region, once
    assert [await replica.correct_regions() for replica in replicas] == [0, 0]

    alone = await service(None).evaluate(win)
    expected = sorted(
        (r.scope, r.scope_id, r.numerator, r.denominator, r.rate)
        for r in alone.rates
        if r.scope.startswith("region") and r.industry == "all"
    )
    stored = await reader.points("kpi_rate", win.end_ns, win.end_ns + 1)
    region_rows = [
        row
        for row in stored
        if row.tags["scope"].startswith("region") and row.tags["industry"] == "all"
    ]
    got = sorted(
        (
            row.tags["scope"],
            row.tags["scope_id"],
            row.fields["numerator"],
            row.fields["denominator"],
            row.fields.get("rate"),
        )
        for row in region_rows
    )
    assert got == expected
    north = {row.tags["scope_id"]: row.fields["revision"] for row in region_rows}
    assert north == {"North": 1, "South": 0}
