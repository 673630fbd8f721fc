"""The live loop's incremental result equals a recomputation from the raw samples (hypothesis).

A plant on a 240 s timeline: a 1 s periodic parameter with jitter, gaps and bad stretches,
an on-change state and a mode signal whose changes fall anywhere — exactly on slice
boundaries too —, source outages with re-sends after them (redelivered, promptly or
late), planned downtime across slice and window boundaries, duplicated batches, and an
uplink gap of the edge (a Last Will, then a birth of the same boot or of a new one) whose
backlog arrives out of order after it, while the edge's watermark stands still.

The KPI service runs its live loop on a model of storage as data arrives
(tests/collector/kpi/storage_model.py): every period, the window a lag after its end is evaluated
from slices (``KpiService.evaluate``) and recomputed in one pass (``compute``); the two
must be identical — status, every reason, every share to the nanosecond, the outages,
completeness. At the end, with everything arrived, every window again: the slices the
backlog fell into must have been re-derived.

Bounded by default (``ci`` profile, tests/fuzz/profiles.py); ``HYPOTHESIS_PROFILE=long``
runs many more examples.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collector.kpi import Thresholds, Window
from collector.kpi.service import KpiService
from collector.storage.lineprotocol import RECONFIRM_MIN_AGE_NS
from collector.storage.reader import LivenessRow
from common.quality import GOOD
from common.register_loader import LoadedRegister
from common.wire import EDGE_SOURCE
from tests.collector.kpi.kpi_testkit import at, iso
from tests.collector.kpi.storage_model import ModelStorage
from tests.fuzz.profiles import fuzz_slow
from tests.registers import process, register, sig

MS = 1_000_000
S = 1_000 * MS
SLICE_S, WINDOW_S, LAG_S = 10, 40, 2
END_S = 240
THRESHOLDS = Thresholds(on_change_max_hold=25.0, provisional_max=30.0)
UNCERTAIN = 0x40000000
BAD = 0x80000000
PLANT = "pl"


@dataclass
class Plan:
    """What happens on the timeline (ms offsets from ``at(0)``)."""

    downtime: tuple[int, int] | None
    gap: tuple[int, int, int] | None
    """Uplink gap: (lost at, back at, backlog drained at)."""
    new_boot: bool
    """The edge came back as a new boot (it restarted) rather than on a new link."""
    outages: list[tuple[int, int]] = field(default_factory=list)
    speed: list[tuple[int, int]] = field(default_factory=list)
    state: list[tuple[int, int, str]] = field(default_factory=list)
    mode: list[tuple[int, str]] = field(default_factory=list)
    resends: list[list[int]] = field(default_factory=list)
    """Per outage, receive delays after the return of each re-send."""
    duplicates: list[bool] = field(default_factory=list)
    delays: list[int] = field(default_factory=list)


def boundary_or_any(draw: st.DrawFn, lo_s: int, hi_s: int) -> int:
    """A time in ms, a third of them exactly on a slice boundary."""
    if draw(st.integers(0, 2)) == 0:
        return draw(st.integers(lo_s // SLICE_S, hi_s // SLICE_S)) * SLICE_S * 1000
    return draw(st.integers(lo_s * 1000, hi_s * 1000))


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    downtime = None
    if draw(st.booleans()):
        a = boundary_or_any(draw, 0, END_S)
        downtime = (a, a + draw(st.integers(1, 60_000)))
    gap = None
    if draw(st.booleans()):
        g0 = boundary_or_any(draw, 20, END_S - 60)
        g1 = g0 + draw(st.integers(1_000, 50_000))
        gap = (g0, g1, g1 + draw(st.integers(0, 30_000)))
    plan = Plan(downtime, gap, draw(st.booleans()))
    t = -20_000
    while t < END_S * 1000:
        if draw(st.integers(0, 15)) == 0:
            t += draw(st.integers(1_000, 30_000))  # the parameter stops for a while
        status = draw(st.sampled_from([GOOD] * 8 + [UNCERTAIN, BAD]))
        plan.speed.append((t, status))
        t += 1_000 + draw(st.sampled_from([0, 0, 0, 1, -1, 250]))
    t = -15_000
    for _ in range(draw(st.integers(1, 6))):
        status = draw(st.sampled_from([GOOD, GOOD, UNCERTAIN]))
        plan.state.append((t, status, draw(st.sampled_from(["RUN", "IDLE"]))))
        t = max(t + 1, boundary_or_any(draw, t // 1000 + 1, t // 1000 + 80))
    t = -10_000
    for _ in range(draw(st.integers(0, 4))):
        plan.mode.append((t, draw(st.sampled_from(["AUTO", "MANUAL"]))))
        t = max(t + 1, boundary_or_any(draw, t // 1000 + 1, t // 1000 + 90))
    for _ in range(draw(st.integers(0, 3))):
        down = boundary_or_any(draw, 0, END_S - 10)
        plan.outages.append((down, down + draw(st.integers(100, 40_000))))
        plan.resends.append(draw(st.lists(st.integers(0, 5_000), max_size=3)))
    n = len(plan.speed) + len(plan.state) + len(plan.mode)
    plan.duplicates = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    plan.delays = draw(st.lists(st.integers(0, 1_500), min_size=n, max_size=n))
    return plan


def plant_register(plan: Plan) -> LoadedRegister:
    signals = [
        sig("state", role="state", update="on_change"),
        sig("speed"),
        sig("mode", role="mode", update="on_change", source="opc2", manual_values=["MANUAL"]),
    ]
    downtime = None
    if plan.downtime is not None:
        a, b = plan.downtime
        downtime = [{"start": iso(a / 1000), "end": iso(b / 1000)}]
    return register(
        [process(signals=signals), process("p2", signals=signals[:2])], downtime=downtime
    )


class Edge:
    """When what the edge acquired at ``ts`` is stored, given its uplink gap."""

    def __init__(self, plan: Plan) -> None:
        self.gap = plan.gap
        self.new_boot = plan.new_boot

    def arrival(self, ts: int, delay: int) -> int | None:
        """Stored at (ms), or None when the edge lost it (it restarted during the gap)."""
        if self.gap is None:
            return ts + delay
        g0, g1, drained = self.gap
        if g0 <= ts < g1 and self.new_boot:
            return None  # acquired by an agent that died: never delivered
        if g0 <= ts < drained:
            # The backlog: out of order, somewhere in the drain (the delay shuffles it).
            return g1 + (delay * 7919 + ts) % max(1, drained - g1 + 1)
        return ts + delay


def storage_for(plan: Plan) -> ModelStorage:  # noqa: C901 (a model of storage and the edge, kept in one piece to read as one)
    store = ModelStorage()
    edge = Edge(plan)
    index = iter(range(len(plan.delays)))

    def add_sample(
        processes: tuple[str, ...], signal: str, ts: int, status: int, value: Any
    ) -> None:
        i = next(index)
        arrive = edge.arrival(ts, plan.delays[i])
        if arrive is None:
            return
        for process_id in processes:
            row = (PLANT, process_id, signal, at(ts / 1000), status, value, at(ts / 1000))
            store.stored_samples.append((at(arrive / 1000), *row))
            if plan.duplicates[i]:  # a redelivered batch writes the same point again, later
                store.stored_samples.append((at((arrive + 700) / 1000), *row))

    for ts, status in plan.speed:
        add_sample(("p1", "p2"), "speed", ts, status, 1.0)
    for ts, status, value in plan.state:
        add_sample(("p1", "p2"), "state", ts, status, value)
    for ts, value in plan.mode:
        add_sample(("p1",), "mode", ts, GOOD, value)

    # Source outages of opc, and the re-sends of the current on-change values after each.
    for (down, back), resends in zip(plan.outages, plan.resends, strict=True):
        for ts, up, detail in ((down, False, "connection lost"), (back, True, "connected")):
            arrive = edge.arrival(ts, 300)
            if arrive is not None:
                row = LivenessRow(at(ts / 1000), up, detail)
                store.events.append((at(arrive / 1000), PLANT, "opc", row))
        current = [s for s in plan.state if s[0] < down]
        if not current:
            continue
        ts, status, value = current[-1]
        recv = back
        for delay in resends:
            recv += delay
            arrive = edge.arrival(recv, 200)
            if arrive is None:
                continue
            for p in ("p1", "p2"):
                resent = (PLANT, p, "state", at(ts / 1000), status, value, at(recv / 1000))
                store.stored_samples.append((at(arrive / 1000), *resent))
                if at(recv / 1000) - at(ts / 1000) >= RECONFIRM_MIN_AGE_NS:
                    store.receipts.append(
                        (at(arrive / 1000), PLANT, p, "state", at(recv / 1000), at(ts / 1000))
                    )

    # The edge agent: born long ago; an uplink gap (a Will) and its return.
    boot = at(-100)
    store.events.append((boot, PLANT, EDGE_SOURCE, LivenessRow(boot, True, "", boot, 1)))
    heartbeat = -20_000
    while heartbeat <= END_S * 1000 + 60_000:
        if plan.gap is None or not (plan.gap[0] <= heartbeat < plan.gap[2]):
            store.marks.append((at((heartbeat + 50) / 1000), PLANT, at(heartbeat / 1000)))
        heartbeat += 2_000
    if plan.gap is not None:
        g0, g1, drained = plan.gap
        will = LivenessRow(at(g0 / 1000), False, "connection lost", boot, 1)
        store.events.append((at(g0 / 1000), PLANT, EDGE_SOURCE, will))
        new = at(g1 / 1000) if plan.new_boot else boot
        link = 1 if plan.new_boot else 2
        store.events.append(
            (at(g1 / 1000), PLANT, EDGE_SOURCE, LivenessRow(at(g1 / 1000), True, "", new, link))
        )
        # While the backlog drains, every batch vouches only for what came before the gap.
        for t in range(g1, drained, 1_000):
            store.marks.append((at(t / 1000), PLANT, at(g0 / 1000)))
        store.marks.append((at(drained / 1000), PLANT, at(drained / 1000)))
    return store


def service_for(reg: LoadedRegister, store: ModelStorage) -> KpiService:
    return KpiService(
        [reg],
        store,  # type: ignore[arg-type]  # the model answers the reader's questions
        None,  # type: ignore[arg-type]  # nothing is written here
        THRESHOLDS,
        window_s=WINDOW_S,
        period_s=SLICE_S,
        lag_s=LAG_S,
    )


def outcome(result: Any) -> list[dict[str, Any]]:
    return [e.to_dict() for e in result.evaluations]


def difference(a: Any, b: Any, path: str = "") -> str:
    """Where two outcomes first differ (a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return difference(x, y, f"{path}[{i}]")
    return f"{path}: live {a!r} != recomputed {b!r}"


async def run(plan: Plan, forget: bool, samples_per_read: int) -> None:
    reg = plant_register(plan)
    store = storage_for(plan)
    service = service_for(reg, store)
    service.slices.samples_per_read = samples_per_read
    windows = [Window(at(end - WINDOW_S), at(end)) for end in range(WINDOW_S, END_S + 1, SLICE_S)]
    for window in windows:
        store.clock = window.end_ns + LAG_S * S
        live, reference = (
            outcome(await service.evaluate(window)),
            outcome(await service.compute(window)),
        )
        assert live == reference, difference(live, reference)
        if forget:
            service.slices.forget_before(window.start_ns)
    store.clock = at(10_000)  # everything has arrived
    for window in windows:
        final, reference = (
            outcome(await service.evaluate(window)),
            outcome(await service.compute(window)),
        )
        assert final == reference, difference(final, reference)


@given(plans(), st.booleans(), st.sampled_from([200_000, 100, 1]))
@fuzz_slow
def test_live_from_slices_equals_recompute_from_raw_under_faults(
    plan: Plan, forget: bool, samples_per_read: int
) -> None:
    """``forget``: slices before the current window are dropped (computed again from raw
    for the final pass). ``samples_per_read``: the whole run of missing slices in one
    read, a few slices per read, or one process per read."""
    asyncio.run(run(plan, forget, samples_per_read))


def test_the_backlog_of_an_uplink_gap_is_re_derived_once_it_has_arrived() -> None:
    """One hand-made case: the slices of the gap are computed incomplete, re-derived after
    the drain, and what the live loop says then differs from what it said during it."""
    plan = Plan(None, (60_000, 90_000, 100_000), False)
    plan.speed = [(t, GOOD) for t in range(-20_000, END_S * 1000, 1_000)]
    plan.state = [(t, GOOD, "RUN") for t in range(-15_000, END_S * 1000, 20_000)]
    n = len(plan.speed) + len(plan.state)
    plan.duplicates, plan.delays = [False] * n, [100] * n
    reg = plant_register(plan)
    store = storage_for(plan)
    service = service_for(reg, store)
    window = Window(at(40), at(80))

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        store.clock = window.end_ns + LAG_S * S  # in the gap: 20 s of the window missing
        during = outcome(await service.evaluate(window))[0]
        computed = service.slices.slices_computed
        store.clock = at(200)  # drained
        after = outcome(await service.evaluate(window))[0]
        # The slices from the last watermark before the gap (58 s) on: 50-60, 60-70, 70-80.
        assert service.slices.slices_computed == computed + 3
        return during, after

    during, after = asyncio.run(scenario())
    assert during["processes"][0]["status"] == "PROVISIONAL"
    assert during["processes"][0]["complete"] is False
    assert after["processes"][0]["status"] == "DIGITALIZED"
    assert after["processes"][0]["complete"] is True
