"""The uplink keeps batches under its byte limit: large batches are halved, nothing is lost,
order is kept, and the batch size grows back once batches fit (real mosquitto)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from common.register_loader import load_register
from common.wire import Sample, decode_batch
from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from harness.servers import REPO_ROOT, MosquittoServer, free_port
from tests import registers
from tests.edge.source_kit import eventually

pytestmark = pytest.mark.integration

DEMO = REPO_ROOT / "examples" / "demo" / "register.yaml"
LIMIT = 64 * 1024


def settings(tmp_path: Path, broker: str) -> EdgeSettings:
    """plant-a's edge with unreachable equipment: samples are fed to its buffer directly."""
    endpoints, brokers = registers.unreachable(
        load_register(DEMO).plant("plant-a").sources, free_port()
    )
    return EdgeSettings(
        _env_file=None,
        register_file=DEMO,
        plant="plant-a",
        edge_id=f"edge-split-{uuid.uuid4().hex[:6]}",
        uplink={"url": broker},
        endpoints=endpoints,
        brokers=brokers,
        buffer_dir=tmp_path / "buffer",
        batch_max_bytes=LIMIT,
        flush_interval=0.05,
        health_enabled=False,
    )


@contextlib.asynccontextmanager
async def running_uplink(agent: EdgeAgent) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(agent.buffer.run()), asyncio.create_task(agent.uplink.run())]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await agent.buffer.close()


async def test_large_batches_are_split_under_the_byte_limit(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    agent = EdgeAgent(settings(tmp_path, mosquitto.url))
    values = [f"{i:06d}" + "x" * 994 for i in range(600)]  # ~600 kB of strings
    sizes: list[int] = []
    received: list[str] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as watch:
        await watch.subscribe(agent.uplink.identity.samples_topic, qos=1)
        now = time.time_ns()
        for i, value in enumerate(values):
            agent.sink.sample(Sample("a1-turning", "spindle_speed", now + i, value, 0, now + i))
        async with running_uplink(agent):
            async with asyncio.timeout(30):
                async for message in watch.messages:
                    assert isinstance(message.payload, bytes)
                    sizes.append(len(message.payload))
                    batch = decode_batch(message.payload, str(message.topic))
                    received.extend(str(v) for v in batch.samples.value)
                    if len(received) >= len(values):
                        break
                # The subscriber may see the last batch before the uplink's PUBACK is in.
                await eventually(lambda: agent.buffer.stats().depth == 0, what="acks")
    assert received == values  # all of them, once, in order
    assert max(sizes) <= LIMIT
    assert agent.uplink.stats.batches_split >= 1
    assert agent.buffer.stats().depth == 0
