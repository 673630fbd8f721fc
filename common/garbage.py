"""Pausing Python's cycle collector while a large tree of live objects is built."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SERVICE_GC_THRESHOLDS", "garbage_collector_paused", "tune_for_service"]


@contextmanager
def garbage_collector_paused() -> Iterator[None]:
    """Pause the cycle collector while building many objects that stay alive and form no
    cycles (a register's YAML nodes and models, a decoded InfluxDB response): its passes
    find nothing to free, and with millions of live objects they dominated the work
    (loading a 20,000-process register 5x slower, a KPI read about 2x). Objects are still
    freed by reference counting; the collector runs again at the end of the block."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


SERVICE_GC_THRESHOLDS = (50_000, 20, 10)
"""The cycle collector's thresholds in the long-running services: a young generation of
50,000 objects instead of 700. The KPI loop builds and keeps hundreds of thousands of
acyclic objects per period (columns of samples, slice partials); with the default it
spent a third of its CPU in collections that freed nothing (docs/benchmarks.md)."""


def tune_for_service() -> None:
    """Set :data:`SERVICE_GC_THRESHOLDS` for this process (the collector's ``run``)."""
    gc.set_threshold(*SERVICE_GC_THRESHOLDS)
