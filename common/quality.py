"""OPC UA status-code semantics, shared by edge (MQTT quality labels → codes) and KPI.

Quality is judged by the severity bits of the raw status code (OPC UA Part 4, 7.39),
never by a lookup of a few known codes, so every code a server can send is classified.
"""

from __future__ import annotations

from enum import StrEnum

GOOD = 0x00000000
GOOD_LOCAL_OVERRIDE = 0x00960000
UNCERTAIN = 0x40000000
BAD = 0x80000000
BAD_NO_COMMUNICATION = 0x80310000
BAD_WAITING_FOR_INITIAL_DATA = 0x80320000

_CODE_MASK = 0xFFFF0000


class Quality(StrEnum):
    GOOD = "good"
    OVERRIDDEN = "overridden"
    UNCERTAIN = "uncertain"
    BAD = "bad"


def classify(status: int) -> Quality:
    """Classify a raw 32-bit status code by its severity bits."""
    severity = (status >> 30) & 0b11
    if severity == 0:
        if status & _CODE_MASK == GOOD_LOCAL_OVERRIDE:
            return Quality.OVERRIDDEN
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


_LABELS: dict[str, int] = {
    "good": GOOD,
    "ok": GOOD,
    "uncertain": UNCERTAIN,
    "bad": BAD,
    "override": GOOD_LOCAL_OVERRIDE,
    "overridden": GOOD_LOCAL_OVERRIDE,
    "local_override": GOOD_LOCAL_OVERRIDE,
    "good_localoverride": GOOD_LOCAL_OVERRIDE,
}


def status_from_label(label: object) -> int:
    """Map a device's quality field (label or raw code) to an OPC UA status code.

    Raises ValueError naming the label when it is not understood: an unknown quality is
    never silently treated as good.
    """
    if isinstance(label, bool):
        raise ValueError(f"quality {label!r} is not a label or status code")
    if isinstance(label, int):
        if not 0 <= label <= 0xFFFFFFFF:
            raise ValueError(f"status code {label} is outside 0..0xFFFFFFFF")
        return label
    if isinstance(label, str):
        code = _LABELS.get(label.strip().lower())
        if code is not None:
            return code
    raise ValueError(f"quality {label!r} is not one of {sorted(_LABELS)} or an integer status code")
