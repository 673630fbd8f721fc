"""/metrics: Prometheus exposition of the collector's own counters, read at scrape time."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.ingest.edges import EdgeSeen
from collector.kpi import Window
from tests.collector.api.conftest import Apps, client
from tests.collector.kpi.kpi_testkit import at

pytestmark = pytest.mark.integration


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_expose_ingest_edges_consumer_and_kpi(make_app: Apps) -> None:
    runtime = make_app.runtime()
    stats = runtime.pipeline.stats
    stats.batches, stats.samples_written, stats.samples_rejected = 7, 3500, 4
    stats.batches_malformed, stats.batches_dead_lettered = 1, 2
    stats.write_failures = {"unavailable": 3}
    stats.last_write_latency_s = 0.042
    stats.sample_ages.observe([1_000_000_000 - 3_000_000, 1_000_000_000 - 2_000_000_000], 10**9)
    stats.edges = {
        "ent-a/pl/e1": EdgeSeen("pl", "ent-a", online=True, seq_gaps=5),
        "ent-a/pl/e2": EdgeSeen("pl", "ent-a", online=False),
    }
    runtime.consumer.stats.acked = 6
    runtime.kpi.evaluations_run = 9
    await runtime.kpi.compute(Window(at(0), at(600)))
    await runtime.kpi.compute(Window(at(600), at(1200)))
    runtime.kpi.slices.slices_computed, runtime.kpi.slices.samples_read = 61, 12_345
    runtime.kpi.corrections_run = 2
    runtime.kpi.region_corrections_run = 4

    async with client(make_app(runtime)) as api:
        response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    assert got[("plantkpi_uplink_batches_total", ())] == 7
    assert got[("plantkpi_samples_written_total", ())] == 3500
    assert got[("plantkpi_samples_rejected_total", ())] == 4
    assert got[("plantkpi_dead_letters_total", ())] == 3
    assert got[("plantkpi_write_failures_total", (("kind", "unavailable"),))] == 3
    assert got[("plantkpi_write_latency_seconds", ())] == 0.042
    assert got[("plantkpi_edges_online", ())] == 1
    assert got[("plantkpi_edges_known", ())] == 2
    assert got[("plantkpi_edge_up", (("edge", "ent-a/pl/e2"),))] == 0
    assert got[("plantkpi_edge_sequence_gaps_total", (("edge", "ent-a/pl/e1"),))] == 5
    assert got[("plantkpi_ingest_queue_depth", ())] == 0
    ages = "plantkpi_sample_age_at_write_seconds"
    assert got[(f"{ages}_bucket", (("le", "0.005"),))] == 1  # 3 ms
    assert got[(f"{ages}_bucket", (("le", "1.5"),))] == 1
    assert got[(f"{ages}_bucket", (("le", "2.0"),))] == 2  # 2 s
    assert got[(f"{ages}_bucket", (("le", "+Inf"),))] == 2
    assert got[(f"{ages}_count", ())] == 2
    assert got[(f"{ages}_sum", ())] == pytest.approx(2.003)
    assert got[("plantkpi_consumer_acked_total", ())] == 6
    assert got[("plantkpi_broker_connected", ())] == 0
    assert got[("plantkpi_kpi_evaluations_total", ())] == 9
    assert got[("plantkpi_kpi_slices_computed_total", ())] == 61
    assert got[("plantkpi_kpi_samples_read_total", ())] == 12_345
    assert got[("plantkpi_kpi_corrections_total", ())] == 2
    assert got[("plantkpi_kpi_region_corrections_total", ())] == 4
    assert got[("plantkpi_kpi_slices_kept", ())] == 0
    assert got[("plantkpi_kpi_compute_seconds_count", ())] == 2
    assert got[("plantkpi_kpi_compute_seconds_sum", ())] > 0
    enterprise = (
        ("enterprise", "ent-a"),
        ("industry", "all"),
        ("plant", ""),
        ("scope", "enterprise"),
        ("scope_id", "ent-a"),
    )
    assert got[("plantkpi_kpi_rate", enterprise)] == pytest.approx(1 / 3)
    assert got[("plantkpi_kpi_declared_rate", (("enterprise", "ent-a"),))] == 0.8
