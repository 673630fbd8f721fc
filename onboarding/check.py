"""``plantkpi register check``: a register that loads may still be one a plant does not
mean. The loader's errors stop a service at start; these warnings do not, and name what
loads but will not measure what its author expects (pure).

- a key process without a key parameter: its state alone decides it (KPI.md R2 asks for
  the parameters that make the process);
- a periodic signal whose hold (interval × the periodic hold factor) is longer than the
  KPI window: one missed sample covers the window, so a stopped feed never shows;
- two signals read from the same address of one source: a copy-paste slip (the second
  machine's node id still pointing at the first);
- a mode signal whose profile fixes no numbers (PackML), read over a protocol that reports
  numbers, without the server's ``numbering``: its manual numbers match nothing, so the
  process never shows as manual.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from common.register import PERIODIC_HOLD_FACTOR, SignalRole, UpdateKind
from common.register_loader import LoadedRegister
from common.state_models import BY_NAME
from common.yaml_source import Loc, YamlDocument

_NUMBERED_KINDS = frozenset({"opcua", "modbus", "s7"})
"""Protocols whose enumerations arrive as numbers (an OPC UA enumeration, a register)."""

DEFAULT_WINDOW_S = 3600.0
"""The collector's default KPI window (``COLLECTOR_KPI__WINDOW``)."""


@dataclass(frozen=True)
class Finding:
    loc: Loc
    reason: str

    def render(self, document: YamlDocument) -> str:
        return document.problem(self.loc, self.reason)


def warnings(register: LoadedRegister, window_s: float = DEFAULT_WINDOW_S) -> list[Finding]:
    return [
        *_key_processes_without_parameters(register),
        *_holds_longer_than_the_window(register, window_s),
        *_shared_addresses(register),
        *_unnumbered_profiles(register),
    ]


def _key_processes_without_parameters(register: LoadedRegister) -> Iterator[Finding]:
    for p, plant in enumerate(register.model.plants):
        for li, line in enumerate(plant.lines):
            for pi, process in enumerate(line.processes):
                parameters = [s for s in process.signals_with_role(SignalRole.PARAMETER) if s.key]
                if process.key and not parameters:
                    yield Finding(
                        ("plants", p, "lines", li, "processes", pi),
                        f"key process {process.id} has no key parameter signal: its state "
                        "alone decides whether it counts",
                    )


def _holds_longer_than_the_window(register: LoadedRegister, window_s: float) -> Iterator[Finding]:
    for p, plant in enumerate(register.model.plants):
        for li, line in enumerate(plant.lines):
            for pi, process in enumerate(line.processes):
                for si, signal in enumerate(process.signals):
                    if signal.update is not UpdateKind.PERIODIC or not signal.is_automated:
                        continue
                    hold = signal.hold()
                    if hold > window_s:
                        yield Finding(
                            ("plants", p, "lines", li, "processes", pi, "signals", si, "interval"),
                            f"interval {signal.interval:g} s: a sample holds "
                            f"{PERIODIC_HOLD_FACTOR:g} intervals ({hold:g} s), longer than the "
                            f"KPI window ({window_s:g} s): a feed that stops is never seen",
                        )


def _shared_addresses(register: LoadedRegister) -> Iterator[Finding]:
    for p, plant in enumerate(register.model.plants):
        first: dict[tuple[str, str], str] = {}
        for li, line in enumerate(plant.lines):
            for pi, process in enumerate(line.processes):
                for si, signal in enumerate(process.signals):
                    if signal.binding is None or signal.source is None:
                        continue
                    address = signal.binding.model_dump_json(exclude_defaults=True)
                    key = (signal.source, address)
                    here = f"{process.id}.{signal.id}"
                    if key in first:
                        yield Finding(
                            ("plants", p, "lines", li, "processes", pi, "signals", si),
                            f"{here} is read from the same address of source {signal.source} "
                            f"as {first[key]}",
                        )
                    else:
                        first[key] = here


def _unnumbered_profiles(register: LoadedRegister) -> Iterator[Finding]:
    for p, plant in enumerate(register.model.plants):
        for li, line in enumerate(plant.lines):
            for pi, process in enumerate(line.processes):
                for si, signal in enumerate(process.signals):
                    model = BY_NAME.get(signal.profile or "")
                    if (
                        model is None
                        or signal.role is not SignalRole.MODE
                        or model.fixes_numbers
                        or signal.numbering
                        or signal.binding is None
                        or signal.binding.kind not in _NUMBERED_KINDS
                    ):
                        continue
                    yield Finding(
                        ("plants", p, "lines", li, "processes", pi, "signals", si, "profile"),
                        f"{process.id}.{signal.id}: {model.name} fixes no numbers and "
                        f"{signal.binding.kind} reports numbers: without numbering (the "
                        "server's own, e.g. from plantkpi-edge browse --machines) no number "
                        "is manual",
                    )
