"""Two collectors share the uplink (MQTT 5 shared subscription): the load splits, the data is
complete, and both compute the same KPI for the same window."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.plant import PlantStack
from harness.servers import InfluxServer, MosquittoServer
from tests.collector.ingest.test_delivery import (
    BATCHES,
    PER_BATCH,
    collector_stack,
    make_batches,
    publish,
    wait_stored,
)

pytestmark = pytest.mark.integration


def get(stack: PlantStack, api: str, path: str) -> Any:
    return httpx.get(f"{api}{path}", timeout=10).json()


async def test_two_collectors_split_the_load_and_agree_on_the_kpi(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    one = collector_stack(mosquitto.url, influxdb, influx_db, tmp_path / "one")
    two = collector_stack(mosquitto.url, influxdb, influx_db, tmp_path / "two")
    shared = {"COLLECTOR_SHARE_GROUP": "kpi"}
    try:
        one.start_collector(window="20s", period="2s", lag="1s", extra_env=shared)
        two.start_collector(window="20s", period="2s", lag="1s", extra_env=shared)
        one.wait_for_api()
        two.wait_for_api()
        await publish(mosquitto.url, make_batches(time.time_ns()) * 2)  # each batch twice
        values = await wait_stored(influxdb, influx_db, BATCHES * PER_BATCH, one)
        await asyncio.sleep(1)
        batches = [get(s, s.api_url, "/api/v1/stats")["batches"] for s in (one, two)]

        # The same grid window, evaluated by each instance from the same storage.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            kpis = [get(s, s.api_url, "/api/v1/kpi") for s in (one, two)]
            if all("window" in k for k in kpis) and kpis[0]["window"] == kpis[1]["window"]:
                break
            await asyncio.sleep(0.3)
        else:
            pytest.fail(
                f"the instances never evaluated the same window: {[k.get('window', k) for k in kpis]}"
            )
    finally:
        one.stop_all()
        two.stop_all()

    assert sorted(values) == [
        float(i) for i in range(BATCHES * PER_BATCH)
    ]  # complete, no duplicates
    assert sum(batches) == 2 * BATCHES, batches  # every message delivered to exactly one instance
    assert min(batches) > 0, f"the load did not split: {batches}"

    def rates(kpi: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted(
            (r["scope"], r["scope_id"], r["industry"], r["numerator"], r["denominator"], r["rate"])
            for r in kpi["rates"]
        )

    assert rates(kpis[0]) == rates(kpis[1])
