"""The simulated machine's states and control modes in the words of the standard models
(``common/state_models.py``): one set of tables for every protocol (pure).

A signal with a ``profile`` reports the profile's names, or their numbers where its
equipment serves them as an enumeration (an OPC UA Machine Tools server); the machine model
asks here (``simulators/machine.py``). The MTConnect agent serves unprofiled state and mode
signals in MTConnect's Execution and ControllerMode words from the same tables.
"""

from __future__ import annotations

from collections.abc import Mapping

from common.state_models import StateModel

_CHANNEL = {
    "RUNNING": "Active",
    "IDLE": "Reset",
    "FAULT": "Interrupted",
    "MAINTENANCE": "Interrupted",
}

STATE_NAMES: dict[str, dict[str, str]] = {
    "MachineryItemState": {
        "RUNNING": "Executing",
        "IDLE": "NotExecuting",
        "FAULT": "OutOfService",
        "MAINTENANCE": "OutOfService",
    },
    "ChannelState": _CHANNEL,
    "CncChannelStatus": _CHANNEL,
    "PackMLState": {
        "RUNNING": "Execute",
        "IDLE": "Idle",
        "FAULT": "Aborted",
        "MAINTENANCE": "Stopped",
    },
    "Execution": {
        "RUNNING": "ACTIVE",
        "IDLE": "READY",
        "FAULT": "INTERRUPTED",
        "MAINTENANCE": "STOPPED",
    },
}
"""State model → the machine's state (``MachineState``: RUNNING, IDLE, FAULT, MAINTENANCE)
→ the model's name for it."""

AUTOMATIC: dict[str, str] = {
    "MachineryOperationMode": "Processing",
    "MachineOperationMode": "Automatic",
    "ChannelMode": "Automatic",
    "CncOperationMode": "Automatic_2",
    "PackMLUnitMode": "Production",
    "ControllerMode": "AUTOMATIC",
}
"""Mode model → its name for the machine under its own control. In manual mode the machine
reports the model's first manual name (one the server numbers, when it reports numbers)."""


def state_name(model: StateModel, state: str) -> str:
    """The state model's name for the machine's ``state``."""
    return STATE_NAMES[model.name][state]


def mode_name(model: StateModel, manual: bool, numbered: Mapping[str, int] | None = None) -> str:
    """The mode model's name for manual or automatic control; a manual name that has a
    number in ``numbered`` when the signal reports numbers."""
    if not manual:
        return AUTOMATIC[model.name]
    return next(name for name in model.manual if numbered is None or name in numbered)


def unreportable(model: StateModel, numbered: Mapping[str, int] | None) -> str | None:
    """Why a signal of ``model`` that reports the numbers ``numbered`` (None: names) cannot
    report every state or mode of the machine, or None when it can."""
    if numbered is None:
        return None
    if model.role == "state":
        names = sorted(set(STATE_NAMES[model.name].values()))
    else:
        names = [AUTOMATIC[model.name]]
        if not any(name in numbered for name in model.manual):
            return f"none of the manual names of {model.name} has a number"
    missing = [name for name in names if name not in numbered]
    if missing:
        return f"{', '.join(missing)} of {model.name} has no number"
    return None
