"""The latency benchmark at a tiny size, against real brokers and influxd: every paced
sample is stored and its age observed. Nothing here asserts a speed."""

from __future__ import annotations

import argparse

import pytest

from bench.mqtt_latency import render, run_all

pytestmark = pytest.mark.integration


async def test_every_paced_sample_is_stored_and_its_age_observed() -> None:
    args = argparse.Namespace(
        rates=[200], seconds=2.0, qos=[1], topics=4, publishers=2, edge_env=[]
    )
    (run,) = await run_all(args)
    assert run.sent >= 300  # 200/s for 2 s, less what the last tick had not yet owed
    assert run.stored == run.sent == run.written
    assert run.ages.total == run.sent  # every stored sample's age, from /metrics
    p50, p99 = run.ages.quantile(0.5), run.ages.quantile(0.99)
    assert p50 is not None and p99 is not None and 0 < p50 <= p99
    assert run.cpu_s["edge"] > 0 and run.cpu_s["collector"] > 0
    table = render([run], args, "test")
    assert f"| 1 | 200 | {run.sent / run.seconds:,.0f} | {p50 * 1000:,.0f} ms |" in table
    assert f"{run.sent:,} / {run.sent:,}" in table
