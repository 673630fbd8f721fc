"""What every part of the register builds on, and what a protocol provides.

A protocol (OPC UA, MQTT, Modbus TCP, …) is known to the register by two models: its
*source* (one server, broker or device a plant reads: ``kind`` and how to reach it) and its
*signal binding* (the fields a signal of such a source adds: a node id, a topic, a register
address). ``common/protocols/`` declares each protocol's two models and lists them; the
register (``common/register.py``) reads sources and bindings as the union of what is listed,
so a Modbus field on an OPC UA signal is an error naming its file and line, and adding a
protocol changes nothing here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{value!r} is not a valid id: use letters, digits, '_', '-', '.', "
            "start with a letter or digit, at most 64 characters "
            "(ids become MQTT topic levels and InfluxDB tags)"
        )
    return value


Id = Annotated[str, AfterValidator(_check_id)]


@dataclass(frozen=True)
class WrittenAs:
    """How a field is written in the register file when its model type says otherwise
    (a mapping kept as sorted pairs, so the frozen model stays hashable); the reference
    (onboarding/reference.py) shows this."""

    text: str


class Strict(BaseModel):
    # Attribute docstrings become field descriptions: docs/register-reference.md is
    # generated from them (onboarding/reference.py).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SignalBinding(Strict):
    """How one signal is read from its source; each protocol's binding narrows ``kind`` to
    its own and adds its fields. In the register file they stand flat on the signal
    (``node:``, ``topic:``, ``address:``); the plant gathers them by its source's kind."""

    kind: str
    """Set from the source's kind; not written in the register."""


class SourceConfig(Strict):
    """One source of a plant (a server, a broker, a device); each protocol's source narrows
    ``kind`` to its own and adds how to reach it."""

    id: Id
    """The source's id in its plant: signals name it in ``source``."""
    kind: str
    """The protocol (``opcua``, ``mqtt``, ``modbus``, ``s7``, ``mtconnect``): it decides
    the source's other fields and its signals' binding fields."""

    def check_binding(self, binding: SignalBinding, process: str) -> None:
        """Raise ValueError (the reason, without where: the caller adds that) when a signal
        of ``process`` bound this way cannot be read from this source."""

    def check_processes(self, plant: str, processes: frozenset[str]) -> None:
        """Raise ValueError when the source names a process its plant does not have."""


@dataclass(frozen=True)
class Protocol:
    """One line of the protocol registry (``common/protocols/__init__.py``)."""

    kind: str
    source: type[SourceConfig]
    binding: type[SignalBinding]
    edge_module: str
    """The module under ``edge/sources/`` whose ``build_source`` builds the edge's reader
    (named, not imported: ``common`` does not depend on the edge)."""
    simulator_module: str | None = None
    """The module under ``simulators/`` whose ``serve`` builds the simulated equipment of a
    source listening on an endpoint (``simulators/equipment.py``); None for protocols
    whose devices publish to a broker (MQTT)."""
