"""Standard machine-state and control-mode models, recognized by name (pure).

A register signal may name the model its values follow (``profile: MachineOperationMode``)
instead of listing them: for a ``mode`` signal the profile gives ``manual_values`` (rule
R6), as the enumeration's names and, where the specification fixes them, its numbers — an
OPC UA server reports an enumeration as its number, an MQTT device or an MTConnect agent
as its name, and the KPI compares both as text. For a ``state`` signal the profile
documents the states (the KPI judges a state by its quality: any state word counts as
known).

A server's own numbering comes first: an OPC UA enumeration's numbers are what its
EnumStrings or EnumValues say, and a signal's ``numbering`` (written by
``plantkpi-edge browse`` from them) replaces the standard's numbers. PackML (ISA-TR88;
OPC 30050, and OPC 30060 which numbers the states differently) fixes no numbers at all:
vendors' state and unit-mode numbering differs by installation (user-defined modes are
common), so its profiles carry names only and a server reporting numbers needs
``numbering``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class StateModel:
    name: str
    role: str
    """``state`` or ``mode``: the signal role it describes."""
    standard: str
    values: tuple[tuple[str, int | None], ...]
    """The enumeration: (name, number), number None where the specification does not fix it."""
    manual: tuple[str, ...] = ()
    """For a mode model: the names that are manual control for R6."""
    why: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.values)

    @property
    def fixes_numbers(self) -> bool:
        """Whether the standard fixes a number for every name."""
        return all(number is not None for _, number in self.values)

    def numbers(self, numbering: Mapping[str, int] | None = None) -> dict[str, int]:
        """Name → number: the server's ``numbering`` when given, else the standard's
        (none for a model that fixes none)."""
        if numbering:
            return dict(numbering)
        return {name: number for name, number in self.values if number is not None}

    def manual_values(self, numbering: Mapping[str, int] | None = None) -> tuple[str | int, ...]:
        """What a mode signal of this model reports in manual control: names and numbers,
        the numbers from ``numbering`` (the server's) when given, else the standard's."""
        numbers = self.numbers(numbering)
        manual = [numbers.get(name) for name in self.manual]
        return (*self.manual, *(n for n in manual if n is not None))

    def check_numbering(self, numbering: Mapping[str, int]) -> None:
        """ValueError naming the names the model does not have, or a number given twice."""
        unknown = sorted(set(numbering) - set(self.names))
        if unknown:
            raise ValueError(
                f"numbering names {', '.join(unknown)}: not values of {self.name} "
                f"({', '.join(self.names)})"
            )
        by_number: dict[int, str] = {}
        for name, number in numbering.items():
            if number in by_number:
                raise ValueError(f"numbering gives {number} to both {by_number[number]} and {name}")
            by_number[number] = name


MODELS: tuple[StateModel, ...] = (
    StateModel(
        "MachineryItemState",
        "state",
        "OPC 40001-1 Machinery (MachineryBuildingBlocks/MachineryItemState)",
        (("NotAvailable", 0), ("OutOfService", 1), ("NotExecuting", 2), ("Executing", 3)),
    ),
    StateModel(
        "MachineryOperationMode",
        "mode",
        "OPC 40001-1 Machinery (MachineryBuildingBlocks/MachineryOperationMode)",
        (("None", 0), ("Maintenance", 1), ("Setup", 2), ("Processing", 3)),
        manual=("Maintenance", "Setup"),
        why="maintenance and setup are people working the machine; only Processing is the "
        "machine producing under its own control",
    ),
    StateModel(
        "MachineOperationMode",
        "mode",
        "OPC 40501-1 Machine Tools (Monitoring/MachineTool/OperationMode)",
        (
            ("Manual", 0),
            ("Automatic", 1),
            ("Setup", 2),
            ("AutoWithManualIntervention", 3),
            ("Service", 4),
            ("Other", 5),
        ),
        manual=("Manual", "Setup", "AutoWithManualIntervention", "Service"),
        why="an operator intervening in an automatic run is not the process under digital "
        "control; Other is the vendor's own mode and is not assumed manual",
    ),
    StateModel(
        "ChannelMode",
        "mode",
        "OPC 40501-1 Machine Tools (Monitoring/<Channel>/ChannelMode)",
        (
            ("Automatic", 0),
            ("MdaMdi", 1),
            ("JogManual", 2),
            ("JogIncrement", 3),
            ("TeachingHandle", 4),
            ("Remote", 5),
            ("Reference", 6),
            ("Other", 7),
        ),
        manual=("MdaMdi", "JogManual", "JogIncrement", "TeachingHandle", "Reference"),
        why="MDA/MDI runs blocks an operator types in, jogging and the teaching handle move "
        "the axes by hand, referencing is setup; Remote (driven by a cell controller) and "
        "Other are not assumed manual",
    ),
    StateModel(
        "ChannelState",
        "state",
        "OPC 40501-1 Machine Tools (Monitoring/<Channel>/ChannelState)",
        (("Active", 0), ("Interrupted", 1), ("Reset", 2)),
    ),
    StateModel(
        "CncOperationMode",
        "mode",
        "OPC 40502 CNC Systems (CncChannel/OperationMode)",
        (("Manual_0", 0), ("MDA_1", 1), ("Automatic_2", 2)),
        manual=("Manual_0", "MDA_1", "Manual", "MDA"),
        why="MDA (manual data automatic) executes what the operator enters: it counts as "
        "manual, only Automatic runs the part program (the EnumStrings carry the number; "
        "Manual and MDA without it are accepted too)",
    ),
    StateModel(
        "CncChannelStatus",
        "state",
        "OPC 40502 CNC Systems (CncChannel/ChannelStatus)",
        (("Active", 0), ("Interrupted", 1), ("Reset", 2)),
    ),
    StateModel(
        "PackMLState",
        "state",
        "PackML / ISA-TR88.00.02 (OPC 30050): names only, numbering differs by installation",
        tuple(
            (name, None)
            for name in (
                "Undefined",
                "Clearing",
                "Stopped",
                "Starting",
                "Idle",
                "Suspended",
                "Execute",
                "Stopping",
                "Aborting",
                "Aborted",
                "Holding",
                "Held",
                "Unholding",
                "Suspending",
                "Unsuspending",
                "Resetting",
                "Completing",
                "Complete",
            )
        ),
    ),
    StateModel(
        "PackMLUnitMode",
        "mode",
        "PackML / ISA-TR88.00.02 (OPC 30050): names only, numbering differs by installation",
        (("Production", None), ("Maintenance", None), ("Manual", None)),
        manual=("Maintenance", "Manual"),
        why="Production is the only mode in which the unit runs its recipe on its own",
    ),
    StateModel(
        "Execution",
        "state",
        "MTConnect (Execution data item)",
        tuple(
            (name, None)
            for name in (
                "READY",
                "ACTIVE",
                "INTERRUPTED",
                "WAIT",
                "FEED_HOLD",
                "STOPPED",
                "OPTIONAL_STOP",
                "PROGRAM_STOPPED",
                "PROGRAM_COMPLETED",
                "PROGRAM_OPTIONAL_STOP",
            )
        ),
    ),
    StateModel(
        "ControllerMode",
        "mode",
        "MTConnect (ControllerMode data item)",
        (
            ("AUTOMATIC", None),
            ("SEMI_AUTOMATIC", None),
            ("MANUAL", None),
            ("MANUAL_DATA_INPUT", None),
            ("EDIT", None),
        ),
        manual=("MANUAL", "MANUAL_DATA_INPUT", "EDIT"),
        why="MANUAL_DATA_INPUT is MTConnect's MDI and EDIT an operator at the program; "
        "SEMI_AUTOMATIC (single block) is left to the plant (add it with manual_values)",
    ),
)

BY_NAME: dict[str, StateModel] = {model.name: model for model in MODELS}


def state_model(name: str, role: str) -> StateModel:
    """The model ``name`` for a signal of ``role``; ValueError naming what is known."""
    model = BY_NAME.get(name)
    if model is None:
        known = ", ".join(m.name for m in MODELS if m.role == role) or "none"
        raise ValueError(f"no machine {role} model {name!r} (for {role} signals: {known})")
    if model.role != role:
        raise ValueError(f"{name} describes a {model.role} signal, not a {role} signal")
    return model
