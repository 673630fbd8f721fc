"""How long each KPI computation takes, for ``/metrics`` (``plantkpi_kpi_compute_seconds``)."""

from __future__ import annotations

import time

from prometheus_client import Histogram

from collector.kpi.inputs import Window
from collector.kpi.service import KpiResult, KpiService
from common.register_loader import LoadedRegister

COMPUTE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class TimedKpiService(KpiService):
    """A :class:`KpiService` that records how long each computation (live evaluation from
    slices, recomputation or report window: the reads from InfluxDB plus the evaluation)
    takes."""

    compute_seconds: Histogram

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Not registered anywhere: the scrape-time collector yields its samples.
        self.compute_seconds = Histogram(
            "plantkpi_kpi_compute_seconds",
            "Duration of one KPI computation (storage read and evaluation)",
            buckets=COMPUTE_BUCKETS,
            registry=None,
        )

    async def compute(self, window: Window) -> KpiResult:
        started = time.perf_counter()
        try:
            return await super().compute(window)
        finally:
            self.compute_seconds.observe(time.perf_counter() - started)

    async def evaluate(
        self, window: Window, registers: list[LoadedRegister] | None = None
    ) -> KpiResult:
        if not self.slices.fits(window):
            return await super().evaluate(window, registers)  # in one pass, timed there
        started = time.perf_counter()
        try:
            return await super().evaluate(window, registers)
        finally:
            self.compute_seconds.observe(time.perf_counter() - started)
