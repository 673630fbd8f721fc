"""Acquisition sources: each reads one equipment connection and reports samples and liveness.

A source gets a ``SourceSink`` and runs until cancelled. It never raises for the equipment
being unreachable: it reports the source down, retries with capped backoff, and reports
it up again once readings flow.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from common.backoff import Backoff
from common.protocols import BY_KIND
from common.register import Signal
from common.register_base import SourceConfig
from common.wire import Sample

if TYPE_CHECKING:
    from common.register_loader import LoadedRegister
    from edge.settings import EdgeSettings

__all__ = [
    "Backoff",
    "BoundSignal",
    "BuildSource",
    "SignalKey",
    "Source",
    "SourceContext",
    "SourceSink",
    "StoredMarks",
    "builder",
    "now_ns",
    "stop_if_cancelled",
]


SignalKey = tuple[str, str]
"""(process id, signal id): one register signal."""


class SourceSink(Protocol):
    def sample(self, sample: Sample) -> None: ...

    def liveness(self, source: str, up: bool, detail: str = "") -> None: ...

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once every sample reported so far is safely stored."""

    def rejected(
        self, source: str, culprit: str, reason: str, signals: Collection[SignalKey] = ()
    ) -> None:
        """A reading that cannot become a sample: ``culprit`` names the node id, topic or
        address, ``signals`` the (process, signal) it was for, when the source knows."""


class StoredMarks(Protocol):
    def get(self, key: SignalKey) -> int | None:
        """The newest source timestamp (ns) stored for the signal, if any."""


class Source(Protocol):
    id: str

    async def run(self, sink: SourceSink) -> None: ...

    def health(self) -> dict[str, object]: ...


def now_ns() -> int:
    return time.time_ns()


def stop_if_cancelled() -> None:
    """Raise CancelledError when this task was asked to stop. asyncua, pymodbus and
    python-snap7 await with 3.11's ``asyncio.wait_for``, which returns (or raises the
    operation's own error) instead of raising when a cancellation arrives just as the wait
    ends (CPython #86296): a reader's loop would go on after the agent stopped it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


BoundSignal = tuple[str, Signal]
"""A register signal read from a source, with the id of its process."""
_T = TypeVar("_T")


@dataclass
class SourceContext:
    """What building a protocol's reader may use: the register (files it names are relative
    to it), the agent's settings, and objects the sources of one agent share (one OPC UA
    application certificate), each made once."""

    register: LoadedRegister
    settings: EdgeSettings
    marks: StoredMarks | None = None
    """What the agent stored last per signal (the start of a backfill after a gap)."""
    pending: list[Callable[[], int | None]] = field(default_factory=list)
    """Where a source that backfills says since when it may still deliver data (the
    uplink's watermark waits for it)."""
    room: Callable[[], bool] | None = None
    """Whether the buffer has room for a backfill to go on (None: always): a backfill
    reads history faster than the uplink sends, and must not push out what waits."""
    _shared: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], _T]) -> _T:
        if key not in self._shared:
            self._shared[key] = make()
        shared: _T = self._shared[key]
        return shared


class BuildSource(Protocol):
    def __call__(
        self, config: SourceConfig, signals: list[BoundSignal], context: SourceContext
    ) -> Source: ...


def builder(kind: str) -> BuildSource:
    """The ``build_source`` of the protocol ``kind`` (its module is named in the registry,
    ``common/protocols/__init__.py``)."""
    build: BuildSource = importlib.import_module(BY_KIND[kind].edge_module).build_source
    return build
