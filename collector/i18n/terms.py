"""What the KPI's codes mean to a person: statuses, reason codes (a short label and what to
fix), scopes. The codes themselves stay as they are in every language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from collector.i18n.catalogue import N_, Translator
from collector.kpi.evaluator import Reason, Status


@dataclass(frozen=True)
class ReasonText:
    label: str
    fix: str


REASONS: Mapping[str, ReasonText] = MappingProxyType(
    {
        Reason.NO_STATE_SIGNAL: ReasonText(
            N_("No state signal"),
            N_("Bind a running-state signal of the equipment to this process in the register."),
        ),
        Reason.PARAM_UNBOUND: ReasonText(
            N_("Key parameter not connected"),
            N_("Bind every key process parameter to a data source in the register."),
        ),
        Reason.MANUAL_SOURCE: ReasonText(
            N_("Entered by hand"),
            N_("Read the signal from the equipment instead of entering it by hand."),
        ),
        Reason.LOW_COVERAGE: ReasonText(
            N_("Data coverage too low"),
            N_("Too little of the time had valid data: check the device's connection to the edge."),
        ),
        Reason.STALE_DATA: ReasonText(
            N_("Data stopped"),
            N_("A signal stopped updating for too long: check the device and its network."),
        ),
        Reason.BAD_QUALITY: ReasonText(
            N_("Bad data quality"),
            N_("The device reports its values as bad: check the sensor and the controller."),
        ),
        Reason.UNCERTAIN: ReasonText(
            N_("Uncertain data quality"),
            N_("The device reports its values as uncertain: check calibration and wiring."),
        ),
        Reason.OVERRIDDEN: ReasonText(
            N_("Parameter forced by hand"),
            N_("Check local overrides: a value was forced on the controller."),
        ),
        Reason.MANUAL_MODE: ReasonText(
            N_("Ran in manual mode"),
            N_("The equipment ran in manual mode too long: run it in automatic mode."),
        ),
        Reason.EDGE_BUFFERING: ReasonText(
            N_("Data still on its way"),
            N_("The plant's edge agent is still sending buffered data: wait for it to arrive."),
        ),
    }
)

STATUSES: Mapping[str, str] = MappingProxyType(
    {
        Status.DIGITALIZED: N_("Digitalized"),
        Status.NOT_DIGITALIZED: N_("Not digitalized"),
        Status.NOT_SCHEDULED: N_("Not scheduled"),
        Status.PROVISIONAL: N_("Provisional (data still on its way)"),
    }
)

STATUSES_SHORT: Mapping[str, str] = MappingProxyType(
    {
        Status.DIGITALIZED: N_("Digitalized"),
        Status.NOT_DIGITALIZED: N_("Not digitalized"),
        Status.NOT_SCHEDULED: N_("Not scheduled"),
        Status.PROVISIONAL: N_("Provisional"),
    }
)
"""The statuses as a table's column heading names them (``STATUSES`` says more of
``PROVISIONAL``)."""

SCOPES: Mapping[str, str] = MappingProxyType(
    {
        "line": N_("Line"),
        "plant": N_("Plant"),
        "enterprise": N_("Enterprise"),
        "region_official": N_("Region (official: enterprises above designated size)"),
        "region_pooled": N_("Region (all enterprises pooled)"),
    }
)

SCOPES_SHORT: Mapping[str, str] = MappingProxyType(
    {
        "line": N_("line"),
        "plant": N_("plant"),
        "enterprise": N_("enterprise"),
        "region_official": N_("region official"),
        "region_pooled": N_("region pooled"),
    }
)
"""The scopes as a table cell names them."""

INDUSTRIES: Mapping[str, str] = MappingProxyType(
    {"all": N_("all industries"), "discrete": N_("discrete"), "process": N_("process industry")}
)
PERIODS: Mapping[str, str] = MappingProxyType(
    {"window": N_("window"), "hour": N_("hour"), "shift": N_("shift"), "day": N_("day")}
)
"""The industry split and the time resolutions, as titles name them."""


def term(_: Translator, terms: Mapping[str, str], code: str) -> str:
    """The label of ``code`` in ``terms`` (as it is when there is none)."""
    text = terms.get(code)
    return _(text) if text else code


def reason_label(_: Translator, code: str) -> str:
    text = REASONS.get(code)
    return _(text.label) if text else code


def reason_fix(_: Translator, code: str) -> str:
    text = REASONS.get(code)
    return _(text.fix) if text else ""


def status_label(_: Translator, code: str) -> str:
    return term(_, STATUSES, code)


def scope_label(_: Translator, scope: str) -> str:
    return term(_, SCOPES, scope)
