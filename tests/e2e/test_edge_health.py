"""Each edge agent's local health endpoint, on the demo run (real processes and servers).

By the time the tests run the simulators have ended: the agents must say so themselves —
HTTP 503 with the OPC UA sources named as the problem — while the uplink stays connected,
every source shows the samples it delivered, and the buffer is empty.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.protocols.opcua import OpcUaSource
from harness.plant import PlantStack

pytestmark = pytest.mark.integration


def _degraded_report(url: str, timeout: float = 30.0) -> httpx.Response:
    """The OPC UA sessions notice the stopped servers within the watchdog; wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, timeout=5)
        if response.status_code == 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_edge_health_endpoint_reports_sources_buffer_and_uplink(
    demo_run: dict[str, Any],
) -> None:
    stack: PlantStack = demo_run["stack"]
    assert set(stack.edge_health_urls) == {p.id for p in stack.register.model.plants}
    for plant in stack.register.model.plants:
        url = stack.edge_health_urls[plant.id]
        assert httpx.get(url.replace("/health", "/live"), timeout=5).status_code == 200
        response = _degraded_report(url)
        report = response.json()
        assert response.status_code == 503, report
        assert report["status"] == "degraded"
        assert report["plant"] == plant.id
        assert report["uplink"]["state"] == "connected"
        assert report["buffer"]["depth"] == 0
        assert report["buffer"]["dropped"] == 0
        assert set(report["sources"]) == {s.id for s in plant.sources}
        for source in plant.sources:
            health = report["sources"][source.id]
            assert health["samples"] > 0, (source.id, health)
            if isinstance(source, OpcUaSource):
                assert not health["up"]
                assert any(p.startswith(f"source {source.id} ") for p in report["problems"])


def test_edge_metrics_endpoint_is_prometheus_text(demo_run: dict[str, Any]) -> None:
    stack: PlantStack = demo_run["stack"]
    plant = stack.register.model.plants[0]
    text = httpx.get(stack.edge_health_urls[plant.id].replace("/health", "/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("plantkpi_agent_uplink_connected", ())] == 1.0
    assert samples[("plantkpi_agent_buffer_depth", ())] == 0.0
    sent = samples[("plantkpi_agent_uplink_samples_sent_total", ())]
    assert sent > 0
    for source in plant.sources:
        assert ("plantkpi_agent_source_up", (("source", source.id),)) in samples
        assert ("plantkpi_agent_source_samples_per_second", (("source", source.id),)) in samples
