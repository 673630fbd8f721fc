"""How old each sample is when InfluxDB has it: source time → written, as a histogram.

The end-to-end latency of the device path (device → edge disk → central broker →
collector → InfluxDB), observed for every stored sample at the moment its write was
acknowledged. A sample from the edge's backlog (after an outage) is old when it lands,
and is counted so: the histogram says how fresh the stored data is, whatever the cause.
It is measured across clocks (the device's or edge's source time, the collector's wall
clock), so clock skew shows in it too (docs/deployment.md asks for NTP everywhere).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client.core import HistogramMetricFamily

__all__ = ["AGE_BUCKETS", "SampleAges"]

AGE_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip
"""Upper bounds in seconds: fine below a second, where a healthy device path lies."""


class SampleAges:
    """A cumulative histogram of sample ages at write, in :data:`AGE_BUCKETS`."""

    def __init__(self) -> None:
        self._bounds_ns = [int(b * 1e9) for b in AGE_BUCKETS]
        self.counts = [0] * (len(AGE_BUCKETS) + 1)
        """Per bucket, not cumulative; the last one is +Inf."""
        self.total = 0
        self.sum_s = 0.0

    def observe(self, source_ns: Iterable[int], written_ns: int) -> None:
        bounds, counts = self._bounds_ns, self.counts
        total_ns = n = 0
        for ts in source_ns:
            # A source clock ahead of ours reads as age 0, not as a negative latency.
            age = written_ns - ts if ts < written_ns else 0
            counts[bisect_left(bounds, age)] += 1
            total_ns += age
            n += 1
        self.total += n
        self.sum_s += total_ns / 1e9

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile, interpolated within its bucket (as Prometheus'
        ``histogram_quantile``); ``None`` before any sample, the largest finite bound if
        it lies in the +Inf bucket."""
        if self.total == 0:
            return None
        rank = q * self.total
        seen = 0
        lower = 0.0
        for upper, count in zip(AGE_BUCKETS, self.counts, strict=False):
            if count and seen + count >= rank:
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
            lower = upper
        return AGE_BUCKETS[-1]

    def summary(self) -> dict[str, float | int | None]:
        return {
            "samples": self.total,
            "p50_s": self.quantile(0.5),
            "p99_s": self.quantile(0.99),
            "mean_s": self.sum_s / self.total if self.total else None,
        }

    def metric(self) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip((*AGE_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append((_label(bound), running))
        return HistogramMetricFamily(
            "plantkpi_sample_age_at_write_seconds",
            "Age of each stored sample when its InfluxDB write was acknowledged "
            "(source time to stored: the device path's end-to-end latency)",
            buckets=cumulative,
            sum_value=self.sum_s,
        )


def _label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
