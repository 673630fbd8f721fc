"""The simulated machine: determinism, emission patterns and the status of each behaviour."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from common.quality import BAD, GOOD, GOOD_LOCAL_OVERRIDE, UNCERTAIN
from common.register import SignalRole, UpdateKind
from common.state_models import MODELS
from simulators.machine import (
    Behaviour,
    BehaviourPlan,
    Machine,
    MachineState,
    Sample,
    SignalSpec,
    auto_value,
    interval_ns,
    manual_value,
    value_type,
)
from simulators.standard_values import AUTOMATIC, STATE_NAMES

S = 1_000_000_000
START = 1_795_852_800 * S
TICK = S // 10

SIGNALS = (
    SignalSpec("state", SignalRole.STATE, 1.0, UpdateKind.ON_CHANGE),
    SignalSpec("mode", SignalRole.MODE, 1.0, UpdateKind.ON_CHANGE),
    SignalSpec("spindle_speed", SignalRole.PARAMETER, 1.0, UpdateKind.PERIODIC),
    SignalSpec("temperature", SignalRole.PARAMETER, 0.5, UpdateKind.PERIODIC),
    SignalSpec("part_count", SignalRole.PARAMETER, 1.0, UpdateKind.ON_CHANGE),
)
PARAMETERS = {"spindle_speed", "temperature", "part_count"}


def machine(plan: BehaviourPlan | None = None, seed: int = 7) -> Machine:
    return Machine("m1", SIGNALS, seed=seed, start_ns=START, plan=plan, hint="carburising furnace")


def run(m: Machine, seconds: float, tick: int = TICK) -> list[Sample]:
    out: list[Sample] = []
    now = START
    while now <= START + round(seconds * S):
        out.extend(m.step(now))
        now += tick
    return out


def by_signal(samples: list[Sample]) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        grouped[sample.signal].append(sample)
    return grouped


def test_same_seed_same_values_whatever_the_tick() -> None:
    fine = run(machine(), 300, tick=TICK)
    coarse = run(machine(), 300, tick=7 * S)
    # the coarse run stops at the last tick before 300 s; compare what both covered
    last = max(s.ts for s in coarse)
    assert [s for s in fine if s.ts <= last] == coarse
    other_seed = run(machine(seed=8), 300)
    assert [s.value for s in other_seed] != [s.value for s in fine]


def test_healthy_reports_good_periodic_samples_on_the_grid() -> None:
    samples = by_signal(run(machine(), 10))
    assert all(s.status == GOOD for group in samples.values() for s in group)
    speed = samples["spindle_speed"]
    assert [s.ts for s in speed] == [START + k * S for k in range(11)]
    temperature = samples["temperature"]
    assert [s.ts for s in temperature] == [START + k * S // 2 for k in range(21)]
    # on-change signals report once at start
    assert samples["state"][0] == Sample("state", "RUNNING", GOOD, START)
    assert samples["mode"][0] == Sample("mode", "AUTO", GOOD, START)
    assert isinstance(samples["part_count"][0].value, int)
    assert isinstance(speed[0].value, float)


def test_on_change_never_repeats_and_periodic_floats_always_change() -> None:
    samples = by_signal(run(machine(), 1800))
    for signal in ("state", "mode", "part_count"):
        pairs = [(s.value, s.status) for s in samples[signal]]
        assert all(a != b for a, b in itertools.pairwise(pairs)), signal
    for signal in ("spindle_speed", "temperature"):
        values = [s.value for s in samples[signal]]
        assert all(a != b for a, b in itertools.pairwise(values)), signal
    states = {s.value for s in samples["state"]}
    assert {MachineState.RUNNING.value, MachineState.IDLE.value} <= states


def test_part_count_counts_up_while_running() -> None:
    samples = run(machine(), 1800)
    counts = [s.value for s in samples if s.signal == "part_count"]
    assert len(counts) > 10
    assert all(isinstance(c, int) for c in counts)
    assert counts == sorted(counts) and len(set(counts)) == len(counts)


def test_offline_reports_nothing() -> None:
    assert run(machine(BehaviourPlan(Behaviour.OFFLINE)), 60) == []


def test_stops_updating_after() -> None:
    samples = run(machine(BehaviourPlan(Behaviour.STOPS_UPDATING, after=10)), 60)
    assert samples
    assert max(s.ts for s in samples) < START + 10 * S
    speed = [s for s in samples if s.signal == "spindle_speed"]
    assert len(speed) == 10  # 0 s .. 9 s


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        (Behaviour.BAD_QUALITY, BAD),
        (Behaviour.UNCERTAIN, UNCERTAIN),
        (Behaviour.OVERRIDE, GOOD_LOCAL_OVERRIDE),
    ],
)
def test_quality_behaviours_mark_parameters_and_keep_values(
    behaviour: Behaviour, status: int
) -> None:
    healthy = run(machine(), 120)
    degraded = run(machine(BehaviourPlan(behaviour)), 120)
    assert [(s.signal, s.ts, s.value) for s in degraded] == [
        (s.signal, s.ts, s.value) for s in healthy
    ]
    for sample in degraded:
        expected = status if sample.signal in PARAMETERS else GOOD
        assert sample.status == expected, sample


def test_quality_behaviour_after_and_for_listed_signals_only() -> None:
    plan = BehaviourPlan(Behaviour.BAD_QUALITY, after=5, signals=frozenset({"part_count"}))
    samples = run(machine(plan), 20)
    counts = [s for s in samples if s.signal == "part_count"]
    assert all(s.status == GOOD for s in counts if s.ts < START + 5 * S)
    # the status change alone is a change: reported at the first grid point at 5 s
    assert any(s.ts == START + 5 * S and s.status == BAD for s in counts)
    assert all(s.status == BAD for s in counts if s.ts >= START + 5 * S)
    assert all(s.status == GOOD for s in samples if s.signal != "part_count")


def test_manual_mode_reports_manual_and_keeps_running() -> None:
    samples = by_signal(run(machine(BehaviourPlan(Behaviour.MANUAL_MODE)), 300))
    assert [s.value for s in samples["mode"]] == ["MANUAL"]
    assert all(s.status == GOOD for group in samples.values() for s in group)
    assert len(samples["spindle_speed"]) == 301
    counts = [s.value for s in samples["part_count"]]
    assert isinstance(counts[0], int) and isinstance(counts[-1], int)
    assert counts[-1] > counts[0]  # it produced parts


def test_mode_values_follow_the_registers_manual_values() -> None:
    spec = SignalSpec("mode", SignalRole.MODE, 1.0, UpdateKind.ON_CHANGE, manual_values=(1,))
    auto = Machine("m", [spec], seed=1, start_ns=START).step(START)
    manual = Machine(
        "m", [spec], seed=1, start_ns=START, plan=BehaviourPlan(Behaviour.MANUAL_MODE)
    ).step(START)
    assert auto[0].value != 1 and isinstance(auto[0].value, int)
    assert manual[0].value == 1


def test_intermittent_reports_during_the_duty_fraction_only() -> None:
    plan = BehaviourPlan(Behaviour.INTERMITTENT, period=10, duty=0.3)
    samples = run(machine(plan), 100)
    speed = [s for s in samples if s.signal == "spindle_speed"]
    phases = {((s.ts - START) // S) % 10 for s in speed}
    assert phases == {0, 1, 2}
    assert len(speed) == 3 * 10 + 1  # 10 full periods, and 100 s starts the 11th
    temperature = [s for s in samples if s.signal == "temperature"]
    assert all((s.ts - START) % (10 * S) < 3 * S for s in temperature)


def test_intermittent_after_counts_periods_from_after() -> None:
    plan = BehaviourPlan(Behaviour.INTERMITTENT, after=5, period=4, duty=0.5)
    speed = [s for s in run(machine(plan), 21) if s.signal == "spindle_speed"]
    offsets = [(s.ts - START) // S for s in speed]
    assert offsets == [0, 1, 2, 3, 4, 5, 6, 9, 10, 13, 14, 17, 18, 21]


def test_plan_and_signal_validation() -> None:
    with pytest.raises(ValueError, match="unknown signals"):
        machine(BehaviourPlan(Behaviour.OFFLINE, signals=frozenset({"nope"})))
    with pytest.raises(ValueError, match="duty"):
        BehaviourPlan(Behaviour.INTERMITTENT, period=10, duty=1.0)
    with pytest.raises(ValueError, match="period"):
        BehaviourPlan(Behaviour.INTERMITTENT, duty=0.5)
    with pytest.raises(ValueError, match="duplicate"):
        Machine("m", [SIGNALS[0], SIGNALS[0]], seed=1, start_ns=START)


def test_grid_is_whole_milliseconds() -> None:
    assert interval_ns(1.0) == S
    assert interval_ns(0.0004) == 1_000_000
    assert interval_ns(0.1234567) == 123_000_000


def test_unknown_parameter_is_a_bounded_random_walk() -> None:
    spec = SignalSpec("humidity_x", SignalRole.PARAMETER, 1.0)
    m = Machine("m", [spec], seed=3, start_ns=START)
    values = [s.value for s in run(m, 2000)]
    assert all(isinstance(v, float) and 0.0 <= v <= 100.0 for v in values)
    assert len(set(values)) > 100


def test_every_standard_model_has_the_machines_states_or_modes_in_its_own_names() -> None:
    for model in MODELS:
        if model.role == "state":
            assert set(STATE_NAMES[model.name]) == set(MachineState), model.name
            assert set(STATE_NAMES[model.name].values()) <= set(model.names), model.name
        else:
            assert AUTOMATIC[model.name] in model.names, model.name
            assert AUTOMATIC[model.name] not in model.manual, model.name


@pytest.mark.parametrize(
    ("profile", "manual", "automatic"),
    [
        ("ControllerMode", "MANUAL", "AUTOMATIC"),  # an MQTT device or MTConnect agent
        ("MachineryOperationMode", "Maintenance", "Processing"),
        ("MachineOperationMode", "Manual", "Automatic"),
        ("ChannelMode", "MdaMdi", "Automatic"),
        ("CncOperationMode", "Manual_0", "Automatic_2"),
        ("PackMLUnitMode", "Maintenance", "Production"),
    ],
)
def test_a_profiled_mode_reports_its_profiles_names(
    profile: str, manual: str, automatic: str
) -> None:
    spec = SignalSpec("mode", SignalRole.MODE, 1.0, UpdateKind.ON_CHANGE, profile=profile)
    assert (manual_value(spec), auto_value(spec), value_type(spec)) == (manual, automatic, str)
    auto = Machine("m", [spec], seed=1, start_ns=START).step(START)
    forced = Machine("m", [spec], seed=1, start_ns=START, plan=BehaviourPlan(Behaviour.MANUAL_MODE))
    assert [s.value for s in auto] == [automatic]
    assert [s.value for s in forced.step(START)] == [manual]


def test_a_numbered_mode_reports_the_servers_numbers_else_the_standards() -> None:
    standard = SignalSpec("mode", SignalRole.MODE, profile="MachineOperationMode", numbered=True)
    assert (manual_value(standard), auto_value(standard), value_type(standard)) == (0, 1, int)
    server = SignalSpec(
        "mode",
        SignalRole.MODE,
        profile="MachineOperationMode",
        numbering=(("Automatic", 20), ("Setup", 30)),  # the server has no Manual
        numbered=True,
    )
    assert (manual_value(server), auto_value(server)) == (30, 20)
    with pytest.raises(ValueError, match="signal mode: Automatic of MachineOperationMode has no"):
        SignalSpec(
            "mode",
            SignalRole.MODE,
            profile="MachineOperationMode",
            numbering=(("Manual", 1),),
            numbered=True,
        )
    with pytest.raises(ValueError, match="signal s: ChannelMode describes a mode signal"):
        SignalSpec("s", SignalRole.STATE, profile="ChannelMode")


@pytest.mark.parametrize("profile", sorted(STATE_NAMES))
def test_a_profiled_state_follows_the_machine_in_its_profiles_names(profile: str) -> None:
    names = STATE_NAMES[profile]
    spec = SignalSpec("state", SignalRole.STATE, 1.0, UpdateKind.PERIODIC, profile=profile)
    plain = SignalSpec("state", SignalRole.STATE, 1.0, UpdateKind.PERIODIC)
    profiled = Machine("m", [spec], seed=11, start_ns=START)
    unprofiled = Machine("m", [plain], seed=11, start_ns=START)
    seen = set()
    for sample, state in zip(
        run(profiled, 3000, tick=S), run(unprofiled, 3000, tick=S), strict=True
    ):
        assert sample.value == names[str(state.value)]
        seen.add(state.value)
    assert seen == set(MachineState)  # every state came up


def test_a_numbered_state_reports_numbers() -> None:
    spec = SignalSpec("state", SignalRole.STATE, profile="ChannelState", numbered=True)
    values = {s.value for s in run(Machine("m", [spec], seed=11, start_ns=START), 3000, tick=S)}
    assert values == {0, 1, 2}  # Active, Interrupted, Reset
    assert value_type(spec) is int
