"""The MQTT burst benchmark at a tiny size, against real brokers and influxd: every
pipeline receives or stores every message. Nothing here asserts a speed."""

from __future__ import annotations

import argparse

import pytest

from bench.mqtt_burst import PIPELINES, render, run_all

pytestmark = pytest.mark.integration


async def test_every_pipeline_gets_every_message_run_after_run() -> None:
    args = argparse.Namespace(messages=600, topics=3, qos=[1], runs=2)
    runs = await run_all(args)
    assert [r.pipeline for r in runs] == list(PIPELINES) * 2
    assert all(r.stored == 600 for r in runs)  # distinct points: none overwrote another
    # Each run's edge starts afresh: the first one's persistent session on the device
    # broker, left there, would hand the second every message sent in between.
    assert [r.written for r in runs if r.pipeline == "plantkpi"] == [600, 600]
    plantkpi = runs[-1]
    assert set(plantkpi.peak_rss_mb) == {"edge", "collector"}
    assert plantkpi.cpu_s["edge"] > 0 and plantkpi.cpu_s["collector"] > 0
    node_red = runs[PIPELINES.index("Node-RED")]
    assert node_red.cpu_s["Node-RED"] > 0 and node_red.peak_rss_mb["Node-RED"] > 0
    assert all(0 < r.machine_busy <= 1 for r in runs)
    table = render(runs, args, "test")
    assert "| 1 | plantkpi |" in table and "| 1 | Node-RED |" in table and "600 / 600" in table
