"""Rule R6 with a standard mode model named on the signal (``profile``): the model's
manual modes count as manual whether the server reports the number or the name, its
automatic modes do not, and a register cannot name both a profile and its own values."""

from __future__ import annotations

from typing import Any

import pytest

from collector.kpi import ProcessResult, Reason, Status, evaluate
from common.quality import GOOD
from common.register_loader import LoadedRegister, RegisterError
from common.state_models import BY_NAME, MODELS
from tests import registers
from tests.collector.kpi.kpi_testkit import DEFAULTS, points, series, window


def register(profile: str, **mode: Any) -> LoadedRegister:
    signals = [
        registers.sig("state", "state", update="on_change"),
        registers.sig("speed"),
        registers.sig("mode", "mode", update="on_change", profile=profile, **mode),
    ]
    return registers.register([registers.process("p1", signals)])


def run(profile: str, value: Any, **mode: Any) -> ProcessResult:
    samples = {
        ("p1", "state"): points((-10, GOOD, "RUNNING")),
        ("p1", "speed"): series(-1, 100),
        ("p1", "mode"): points((-10, GOOD, value)),
    }
    return evaluate(register(profile, **mode), window(), samples, {}, DEFAULTS).process("p1")


CASES = [
    ("CncOperationMode", 1, True),  # MDA, as an OPC UA server reports it
    ("CncOperationMode", "MDA_1", True),
    ("CncOperationMode", "manual", True),
    ("CncOperationMode", 2, False),  # Automatic
    ("MachineOperationMode", 3, True),  # AutoWithManualIntervention
    ("MachineOperationMode", 1, False),  # Automatic
    ("MachineOperationMode", 5, False),  # Other: not assumed manual
    ("ChannelMode", "MdaMdi", True),
    ("ChannelMode", 3, True),  # JogIncrement
    ("ChannelMode", 5, False),  # Remote
    ("ChannelMode", 0, False),
    ("MachineryOperationMode", 2, True),  # Setup
    ("MachineryOperationMode", "Processing", False),
    ("PackMLUnitMode", "Maintenance", True),
    ("PackMLUnitMode", "Production", False),
    ("ControllerMode", "MANUAL_DATA_INPUT", True),
    ("ControllerMode", "AUTOMATIC", False),
]


@pytest.mark.parametrize(("profile", "value", "manual"), CASES)
def test_the_models_manual_modes_count_as_manual(profile: str, value: Any, manual: bool) -> None:
    result = run(profile, value)
    if manual:
        assert result.status is Status.NOT_DIGITALIZED and Reason.MANUAL_MODE in result.reasons
    else:
        assert result.status is Status.DIGITALIZED, result.reasons


def test_every_mode_model_lists_manual_values_of_its_own_enumeration() -> None:
    for model in MODELS:
        names = {name for name, _ in model.values}
        if model.role == "state":
            assert not model.manual
            continue
        assert model.manual and model.why
        numbers = {n for name, n in model.values if name in model.manual and n is not None}
        extra = set(model.manual) - names  # a name without its EnumStrings number suffix
        assert extra <= {name.rsplit("_", 1)[0] for name, _ in model.values}, (model.name, extra)
        assert numbers <= set(model.manual_values())
    assert BY_NAME["PackMLUnitMode"].manual_values() == ("Maintenance", "Manual")  # names only


@pytest.mark.parametrize(
    ("profile", "role", "extra", "reason"),
    [
        ("CncOperationMode", "state", {}, "CncOperationMode describes a mode signal"),
        ("CNCMode", "mode", {}, "no machine mode model 'CNCMode'"),
        ("ChannelMode", "mode", {"manual_values": [1]}, "manual_values given with profile"),
    ],
)
def test_a_wrong_profile_is_named(
    profile: str, role: str, extra: dict[str, Any], reason: str
) -> None:
    signal = registers.sig("m", role, update="on_change", profile=profile, **extra)
    with pytest.raises(RegisterError, match=reason):
        registers.register([registers.process("p1", [registers.sig("state", "state"), signal])])


# A PackML server's own unit-mode enumeration (as its EnumValues say), and a machine tool
# whose server numbers MachineOperationMode differently from OPC 40501: the server wins.
SERVER_NUMBERING = [
    ("PackMLUnitMode", {"Production": 1, "Maintenance": 2, "Manual": 17}, 17, True),
    ("PackMLUnitMode", {"Production": 1, "Maintenance": 2, "Manual": 17}, 2, True),
    ("PackMLUnitMode", {"Production": 1, "Maintenance": 2, "Manual": 17}, 1, False),
    ("PackMLUnitMode", {"Production": 1, "Maintenance": 2, "Manual": 17}, "Manual", True),
    ("MachineOperationMode", {"Automatic": 0, "Manual": 1}, 1, True),
    ("MachineOperationMode", {"Automatic": 0, "Manual": 1}, 0, False),
]


@pytest.mark.parametrize(("profile", "numbering", "value", "manual"), SERVER_NUMBERING)
def test_the_servers_numbering_replaces_the_standards(
    profile: str, numbering: dict[str, int], value: Any, manual: bool
) -> None:
    result = run(profile, value, numbering=numbering)
    if manual:
        assert result.status is Status.NOT_DIGITALIZED and Reason.MANUAL_MODE in result.reasons
    else:
        assert result.status is Status.DIGITALIZED, result.reasons


def test_numbering_is_kept_in_the_loaded_register_by_number() -> None:
    loaded = register("PackMLUnitMode", numbering={"Manual": 3, "Production": 1})
    (mode,) = [s for s in loaded.model.plants[0].lines[0].processes[0].signals if s.id == "mode"]
    assert mode.numbering == (("Production", 1), ("Manual", 3))
    assert mode.manual_values == ("Maintenance", "Manual", 3)


@pytest.mark.parametrize(
    ("profile", "extra", "reason"),
    [
        ("PackMLUnitMode", {"numbering": {"Auto": 1}}, "numbering names Auto: not values of"),
        ("PackMLUnitMode", {"numbering": {"Manual": 1, "Production": 1}}, "gives 1 to both"),
        ("PackMLUnitMode", {"numbering": {"Manual": "three"}}, "is not a whole number"),
        ("PackMLUnitMode", {"numbering": ["Manual"]}, "must be a mapping"),
        (None, {"numbering": {"Manual": 1}}, "numbering given without a profile"),
    ],
)
def test_a_wrong_numbering_is_named(
    profile: str | None, extra: dict[str, Any], reason: str
) -> None:
    with pytest.raises(RegisterError, match=reason):
        register(profile, **extra) if profile else registers.register(
            [
                registers.process(
                    "p1",
                    [registers.sig("state", "state"), registers.sig("m", "mode", **extra)],
                )
            ]
        )
