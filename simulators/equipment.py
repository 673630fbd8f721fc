"""The simulated equipment behind a source that listens on an endpoint (an OPC UA server, a
Modbus device, a PLC, an MTConnect agent): what the runner needs of each, whatever its
protocol.

A protocol's simulator module (named by its line in ``common/protocols/__init__.py``) has
``serve(source, endpoint, served, ledger)``, which builds its ``Equipment`` for one register
source, or raises ``SimulatorError`` naming the signal it cannot serve; and may have
``signal_spec(signal)``, how its equipment reports a register signal (OPC UA serves some
profiles as enumerations: their numbers, not their names). Equipment that can keep the
history of what it serves for its clients to read (OPC UA Historical Access) has
``keep_history(folder)`` (``KeepsHistory``). MQTT devices are not equipment of this kind:
they publish to a broker (``mqtt_devices.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from common.protocols import BY_KIND
from common.register import Signal
from common.register_base import SignalBinding, SourceConfig
from simulators.ledger import Ledger
from simulators.machine import Sample, SignalSpec


class SimulatorError(ValueError):
    """Options that do not fit the register (unknown source id, wrong kind, bad URL)."""


@dataclass(frozen=True)
class Served:
    """One machine signal the equipment serves, at the register binding's address."""

    process: str
    spec: SignalSpec
    binding: SignalBinding


class Equipment(Protocol):
    """Lifecycle: ``prepare()``, the first ``write`` (values in place before anyone
    connects), ``listen()``, then ``write`` per tick, and ``stop()``."""

    @property
    def url(self) -> str:
        """The endpoint actually listened on (port resolved when it was 0)."""

    async def prepare(self) -> None: ...

    async def listen(self) -> None: ...

    async def write(self, samples: Iterable[tuple[str, Sample]]) -> int:
        """Serve these (process, sample) from now on; how many were written."""

    async def stop(self) -> None: ...


@runtime_checkable
class KeepsHistory(Protocol):
    """Equipment that can keep the history of what it serves, readable by its clients."""

    def keep_history(self, folder: Path) -> None:
        """Keep it in ``folder`` (one file per source), from ``prepare()`` on."""


class Serve(Protocol):
    def __call__(
        self,
        source: SourceConfig,
        endpoint: str,
        served: Sequence[Served],
        ledger: Ledger | None,
    ) -> Equipment: ...


def serves_endpoint(kind: str) -> bool:
    """Whether sources of ``kind`` are simulated as equipment listening on an endpoint."""
    protocol = BY_KIND.get(kind)
    return protocol is not None and protocol.simulator_module is not None


def server(kind: str) -> Serve:
    """The ``serve`` of protocol ``kind``'s simulator module."""
    module = BY_KIND[kind].simulator_module
    if module is None:
        raise SimulatorError(f"{kind} sources are not simulated as equipment on an endpoint")
    serve: Serve = importlib.import_module(module).serve
    return serve


def signal_spec(kind: str, signal: Signal) -> SignalSpec:
    """What a machine reports for ``signal`` when a source of ``kind`` serves it: the
    protocol's simulator module's ``signal_spec`` when it has one."""
    protocol = BY_KIND.get(kind)
    module = protocol.simulator_module if protocol is not None else None
    spec: Callable[[Signal], SignalSpec] | None = None
    if module is not None:
        spec = getattr(importlib.import_module(module), "signal_spec", None)
    return spec(signal) if spec is not None else SignalSpec.from_register(signal)


def check_endpoint(source: SourceConfig, url: str) -> None:
    """``url`` as ``source``'s endpoint, checked as the register checks its own."""
    try:
        type(source).model_validate({**source.model_dump(), "endpoint": url})
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        reason = errors()[0]["msg"].removeprefix("Value error, ") if callable(errors) else str(exc)
        raise SimulatorError(f"endpoint for {source.id}: {reason}") from None
