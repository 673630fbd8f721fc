"""What the API needs from the running collector (the service object provides it)."""

from __future__ import annotations

from typing import Protocol

from collector.ingest.consumer import UplinkConsumer
from collector.ingest.pipeline import IngestPipeline
from collector.kpi.service import KpiService
from collector.storage.reader import InfluxQLReader


class Runtime(Protocol):
    # Read-only members: the API never replaces them (and a KpiService subclass fits).
    @property
    def pipeline(self) -> IngestPipeline: ...

    @property
    def consumer(self) -> UplinkConsumer: ...

    @property
    def kpi(self) -> KpiService: ...


def reader_of(runtime: Runtime) -> InfluxQLReader:
    """History and exports read through the KPI service's reader: one session per server."""
    return runtime.kpi.reader
