"""Prometheus metrics of the collector itself, served at ``/metrics``.

The ingest and consumer counters already live in the pipeline's and consumer's stats;
a custom collector reads them at scrape time instead of instrumenting the hot path a
second time (and cannot drift from what ``/api/v1/stats`` shows). The one thing the
stats do not keep, how long KPI computations take, is measured by
``collector/kpi/timing.py``'s :class:`TimedKpiService` into a histogram, exposed here.

Each app gets its own :class:`CollectorRegistry` (several collectors in one test process
must not collide in the global one).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.api.runtime import Runtime
from collector.kpi.timing import TimedKpiService

__all__ = ["CONTENT_TYPE_LATEST", "exposition", "make_registry"]


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _labelled_counter(
    name: str, doc: str, label: str, counts: dict[str, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        rt = self.runtime
        s = rt.pipeline.stats
        yield _counter("plantkpi_uplink_batches", "Uplink batches accepted", s.batches)
        yield _counter("plantkpi_samples_written", "Samples written to InfluxDB", s.samples_written)
        yield _counter(
            "plantkpi_samples_backfilled",
            "Of the samples written, those an edge read from a source's history after a gap",
            s.samples_backfilled,
        )
        yield _counter(
            "plantkpi_samples_rejected", "Samples rejected against the register", s.samples_rejected
        )
        yield _counter(
            "plantkpi_batches_malformed",
            "Uplink messages refused as malformed",
            s.batches_malformed,
        )
        yield _counter(
            "plantkpi_dead_letters",
            "Batches sent to the dead-letter topic (malformed or refused by InfluxDB)",
            s.batches_dead_lettered + s.batches_malformed,
        )
        yield _labelled_counter(
            "plantkpi_write_failures", "InfluxDB write failures by kind", "kind", s.write_failures
        )
        yield _labelled_counter(
            "plantkpi_limit_violations",
            "Uplink input over a configured limit (docs/hostile-input.md)",
            "limit",
            s.limit_violations,
        )
        yield _labelled_counter(
            "plantkpi_samples_rejected_by_rule",
            "Rejected samples by rule (unknown_signal, nonfinite, ts_future, ...)",
            "rule",
            s.samples_rejected_by_rule,
        )
        yield _gauge(
            "plantkpi_write_latency_seconds",
            "Duration of the last successful InfluxDB write",
            s.last_write_latency_s,
        )
        yield s.sample_ages.metric()
        yield _gauge(
            "plantkpi_ingest_queue_depth",
            "Batches waiting to be written",
            rt.pipeline.queue.qsize(),
        )
        edges = list(s.edges.items())
        yield _gauge("plantkpi_edges_online", "Edge agents online", sum(e.online for _, e in edges))
        yield _gauge("plantkpi_edges_known", "Edge agents seen since start", len(edges))
        edge_up = GaugeMetricFamily(
            "plantkpi_edge_up", "1 while the edge agent is online", labels=["edge"]
        )
        gaps = CounterMetricFamily(
            "plantkpi_edge_sequence_gaps", "Uplink batches missed (sequence gaps)", labels=["edge"]
        )
        for key, seen in sorted(edges):
            edge_up.add_metric([key], 1.0 if seen.online else 0.0)
            gaps.add_metric([key], seen.seq_gaps)
        yield edge_up
        yield gaps
        c = rt.consumer.stats
        yield _gauge(
            "plantkpi_broker_connected",
            "1 while subscribed to the central broker",
            1.0 if rt.consumer.connected.is_set() else 0.0,
        )
        yield _counter(
            "plantkpi_consumer_connects", "Connections to the central broker", c.connects
        )
        yield _counter("plantkpi_consumer_messages", "Uplink messages received", c.messages)
        yield _counter(
            "plantkpi_consumer_acked", "Uplink messages acknowledged to the broker", c.acked
        )
        yield _counter(
            "plantkpi_consumer_read_pauses",
            "Times the collector stopped reading the broker until it caught up",
            c.read_pauses,
        )
        yield _counter(
            "plantkpi_consumer_failed_messages",
            "Uplink messages that failed unexpectedly",
            c.failed_messages,
        )
        yield from self._kpi()

    def _kpi(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        kpi = self.runtime.kpi
        yield _counter(
            "plantkpi_kpi_evaluations", "Live KPI evaluations completed", kpi.evaluations_run
        )
        yield _counter(
            "plantkpi_kpi_slices_computed",
            "KPI slices computed (each new slice once; again while its data was incomplete)",
            kpi.slices.slices_computed,
        )
        yield _counter(
            "plantkpi_kpi_samples_read",
            "Raw samples the live KPI loop read from storage",
            kpi.slices.samples_read,
        )
        yield _counter(
            "plantkpi_kpi_corrections",
            "Stored windows re-evaluated once their late data had arrived",
            kpi.corrections_run,
        )
        yield _counter(
            "plantkpi_kpi_region_corrections",
            "Sharded: windows whose region rates were rolled up again after a correction",
            kpi.region_corrections_run,
        )
        yield _gauge(
            "plantkpi_kpi_slices_kept", "KPI slices held in memory", kpi.slices.slices_kept
        )
        yield _gauge(
            "plantkpi_kpi_last_evaluation_ok",
            "1 when the last live evaluation succeeded",
            1.0 if kpi.latest is not None and not kpi.last_error else 0.0,
        )
        if isinstance(kpi, TimedKpiService):
            yield from kpi.compute_seconds.collect()  # type: ignore[misc]
        latest = kpi.latest
        rates = GaugeMetricFamily(
            "plantkpi_kpi_rate",
            "Current key-process digitalization rate (absent when no key process is in scope)",
            labels=["scope", "scope_id", "industry", "enterprise", "plant"],
        )
        if latest is not None:
            yield _gauge(
                "plantkpi_kpi_window_end_seconds",
                "End of the latest evaluated window (Unix seconds)",
                latest.window.end_ns / 1e9,
            )
            for r in latest.rates:
                if r.rate is not None:
                    labels = [
                        r.scope,
                        r.scope_id,
                        r.industry,
                        r.enterprise_id or "",
                        r.plant_id or "",
                    ]
                    rates.add_metric(labels, r.rate)
        yield rates
        declared = GaugeMetricFamily(
            "plantkpi_kpi_declared_rate",
            "Rate the enterprise declared in its self-assessment (from the register)",
            labels=["enterprise"],
        )
        for register in kpi.registers:
            value = register.model.enterprise.declared_rate
            if value is not None:
                declared.add_metric([register.enterprise_id], value)
        yield declared


def make_registry(runtime: Runtime) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(runtime))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
