"""The MQTT burst benchmark at a tiny size, against real brokers and influxd: every
pipeline receives or stores every message. Nothing here asserts a speed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.mqtt_burst import PIPELINES, register_yaml, render, run_all
from common.protocols.mqtt import MqttSignalBinding
from common.register_loader import parse_register

pytestmark = pytest.mark.integration


async def test_every_pipeline_gets_every_message_run_after_run() -> None:
    args = argparse.Namespace(messages=600, topics=3, qos=[1], runs=2, stamp="device")
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


def test_the_register_takes_sample_times_from_the_messages_or_the_edge() -> None:
    for stamp, stamped in (("device", True), ("edge", False)):
        text = register_yaml(3, 1, stamp)
        register = parse_register(text.encode(), Path(f"burst-{stamp}.yaml"))
        signals = [
            s
            for p in register.model.plants
            for line in p.lines
            for pr in line.processes
            for s in pr.signals
        ]
        assert len(signals) == 3
        assert all(isinstance(s.binding, MqttSignalBinding) for s in signals)
        assert all((s.binding.timestamp_path == "ts") is stamped for s in signals)  # type: ignore[union-attr]
