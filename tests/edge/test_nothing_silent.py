"""The silent misconfiguration of a first register, end to end at the edge (a real agent and
a real mosquitto): a device publishes every reading, but one signal's payload path is wrong
and another's topic has no publisher. The agent's health is degraded and names both signals
with the reason and the address; the signal that flows is not named."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path

import aiomqtt
import pytest

from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from harness.servers import MosquittoServer
from tests import registers
from tests.edge.source_kit import eventually

pytestmark = pytest.mark.integration


def register(tmp_path: Path, broker: str) -> Path:
    signals = [
        registers.sig("temp", source="dev", interval="200ms", topic="d/m1/temp", path="value"),
        # The device sends {"value": …}: "val" is the mistake of the issue.
        registers.sig("speed", source="dev", interval="200ms", topic="d/m1/speed", path="val"),
        registers.sig("pressure", source="dev", interval="200ms", topic="d/m1/pressure"),
    ]
    plant = registers.plant(
        "p1",
        [registers.mqtt_source("dev", broker)],
        [registers.line("l1", [registers.process("m1", signals)])],
    )
    return registers.write(tmp_path, registers.document([plant]))


async def test_a_wrong_payload_path_and_a_topic_nobody_publishes_are_named(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    settings = EdgeSettings(
        _env_file=None,
        register_file=register(tmp_path, mosquitto.url),
        plant="p1",
        edge_id=f"edge-silent-{uuid.uuid4().hex[:6]}",
        uplink={"url": mosquitto.url},
        buffer_dir=tmp_path / "buffer",
        health_enabled=False,
    )
    agent = EdgeAgent(settings)
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))

    async def publish() -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as device:
            while True:
                for topic in ("d/m1/temp", "d/m1/speed"):
                    await device.publish(topic, json.dumps({"value": 21.5}), qos=1)
                await asyncio.sleep(0.1)

    device = asyncio.create_task(publish())
    try:
        await eventually(
            lambda: (
                {p["signal"] for p in agent.health()["signals"]["problems"]}
                == {"speed", "pressure"}
            ),
            what="both problems",
        )
        report = agent.health()
    finally:
        device.cancel()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await device
        await run
    assert report["status"] == "degraded"
    lines = [line for line in report["problems"] if line.startswith("signal ")]
    speed = next(line for line in lines if "m1.speed" in line)
    assert speed.startswith("signal m1.speed (source dev, topic d/m1/speed, path val): ")
    assert "readings rejected, none valid since: " in speed and "'val'" in speed, speed
    assert "(topic d/m1/speed)" in speed
    pressure = next(line for line in lines if "m1.pressure" in line)
    assert pressure.startswith("signal m1.pressure (source dev, topic d/m1/pressure): no valid")
    assert pressure.endswith("nothing arrived")
    assert not [line for line in lines if "m1.temp" in line]
