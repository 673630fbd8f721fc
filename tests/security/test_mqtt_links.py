"""The uplink and the collector's link against a real mosquitto with TLS (client certificates
required), a password file and the generated least-privilege ACL (see conftest.py).

The edge agent and the collector are the real ones, configured through their settings the
way users configure them (password files, CA file, client certificate and key).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from collector.service import Collector
from collector.settings import ApiSettings, CollectorSettings, KpiSettings
from collector.storage.settings import InfluxSettings
from common.endpoints import parse_broker_url
from common.register_loader import load_register
from common.topics import dead_letter_topic, edge_topic
from common.wire import Sample, SampleColumns, UplinkBatch
from edge.agent import EdgeAgent
from edge.health import verdict
from edge.settings import EdgeSettings
from harness.servers import InfluxServer, free_port
from tests import registers
from tests.edge.source_kit import eventually
from tests.security.conftest import (
    DEMO_REGISTER,
    HALF,
    NO_READ,
    OBSERVER,
    PASSWORDS,
    SecureBroker,
)

pytestmark = pytest.mark.integration

REGISTER = load_register(DEMO_REGISTER)
ENTERPRISE = REGISTER.enterprise_id


def edge_settings(
    tmp_path: Path, broker: SecureBroker, plant: str, user: str | None, **extra: Any
) -> EdgeSettings:
    """An edge for ``plant`` whose equipment is unreachable (a closed port): only the uplink
    matters here, and samples are fed to its buffer directly."""
    endpoints, brokers = registers.unreachable(REGISTER.plant(plant).sources, free_port())
    values: dict[str, Any] = {
        "register_file": DEMO_REGISTER,
        "plant": plant,
        "uplink": {"url": broker.url, "ca_file": broker.pki.ca},
        "endpoints": endpoints,
        "brokers": brokers,
        "buffer_dir": tmp_path / f"buffer-{uuid.uuid4().hex[:6]}",
        "reconnect_max_delay": 0.3,
        "flush_interval": 0.05,
        "health_enabled": False,
    }
    if user is not None:
        client = broker.pki.client(user)
        values["uplink"] |= {
            "username": user,
            "password_file": broker.password_file(user),
            "cert_file": client.cert,
            "key_file": client.key,
        }
    else:  # TLS with a client certificate, but no login
        client = broker.pki.client("anonymous-edge")
        values["uplink"] |= {"cert_file": client.cert, "key_file": client.key}
    values["uplink"] |= extra.pop("uplink", {})
    return EdgeSettings(_env_file=None, **(values | extra))


@contextlib.asynccontextmanager
async def running_edge(settings: EdgeSettings) -> AsyncIterator[EdgeAgent]:
    agent = EdgeAgent(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def running_uplink(settings: EdgeSettings) -> AsyncIterator[EdgeAgent]:
    """Only the agent's buffer and uplink, stopped without the shutdown drain (which would
    wait for a broker that refuses us)."""
    agent = EdgeAgent(settings)
    tasks = [asyncio.create_task(agent.buffer.run()), asyncio.create_task(agent.uplink.run())]
    try:
        yield agent
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await agent.buffer.close()


def feed(agent: EdgeAgent, values: list[float]) -> None:
    now = time.time_ns()
    for i, value in enumerate(values):
        agent.sink.sample(Sample("a1-turning", "spindle_speed", now + i, value, 0, now + i))


def collector_settings(
    server: SecureBroker, influx: InfluxServer, database: str, **extra: Any
) -> CollectorSettings:
    """``extra["broker"]`` adds to or replaces keys of the broker link."""
    client = server.pki.client("plantkpi-collector")
    values: dict[str, Any] = {
        "registers": [DEMO_REGISTER],
        "broker": {
            "url": server.url,
            "username": "plantkpi-collector",
            "password_file": server.password_file("plantkpi-collector"),
            "ca_file": server.pki.ca,
            "cert_file": client.cert,
            "key_file": client.key,
            "client_id": f"test-collector-{uuid.uuid4().hex[:6]}",
        },
        "influx": InfluxSettings(url=influx.url, database=database),
        "api": ApiSettings(port=free_port()),
        "kpi": KpiSettings(period=3600, window=60),
    }
    values["broker"] |= extra.pop("broker", {})
    return CollectorSettings(_env_file=None, **(values | extra))


@contextlib.asynccontextmanager
async def running_collector(settings: CollectorSettings) -> AsyncIterator[Collector]:
    service = Collector(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def collector(
    secure_broker: SecureBroker, influxdb: InfluxServer, influx_db: str
) -> AsyncIterator[Collector]:
    async with running_collector(collector_settings(secure_broker, influxdb, influx_db)) as service:
        await asyncio.wait_for(service.consumer.connected.wait(), 20)
        yield service


@contextlib.asynccontextmanager
async def observer(broker: SecureBroker, *filters: str) -> AsyncIterator[aiomqtt.Client]:
    """The test's own eyes on the broker (a user the ACL lets read everything)."""
    context = ssl.create_default_context(cafile=str(broker.pki.ca))
    pair = broker.pki.client(OBSERVER)
    context.load_cert_chain(str(pair.cert), str(pair.key))
    address = parse_broker_url(broker.url)
    async with aiomqtt.Client(
        address.host,
        address.port,
        username=OBSERVER,
        password=PASSWORDS[OBSERVER],
        tls_context=context,
        identifier=f"observer-{uuid.uuid4().hex[:6]}",
    ) as client:
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)
        yield client


async def test_edge_with_credentials_and_tls_gets_its_samples_to_the_collector(
    tmp_path: Path,
    secure_broker: SecureBroker,
    collector: Collector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = edge_settings(tmp_path, secure_broker, "plant-a", "edge-plant-a")
    async with running_edge(settings) as agent:
        await eventually(lambda: agent.uplink.stats.state == "connected", what="uplink up")
        feed(agent, [1200.0, 1210.0, 1220.0])
        await eventually(
            lambda: collector.pipeline.stats.samples_written >= 3, what="samples stored"
        )
    assert agent.uplink.stats.failed_connects == 0
    assert agent.uplink.stats.samples_sent >= 3
    assert collector.pipeline.stats.batches_malformed == 0
    # Neither secret shows in any log line of the run (both sides log in DEBUG here).
    for user in ("edge-plant-a", "plantkpi-collector"):
        assert PASSWORDS[user] not in caplog.text
    assert "user 'edge-plant-a', TLS verified against CA file" in caplog.text


async def test_edge_without_credentials_is_refused_and_keeps_retrying(
    tmp_path: Path, secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    settings = edge_settings(tmp_path, secure_broker, "plant-a", None)
    async with running_uplink(settings) as agent:
        feed(agent, [1.0])
        await eventually(lambda: agent.uplink.stats.failed_connects >= 3, what="retries")
    error = agent.uplink.stats.last_error
    assert f"central broker {secure_broker.url}: login refused for anonymous login" in error
    assert "EDGE_UPLINK__USERNAME" in error
    assert agent.uplink.stats.connects == 0 and agent.uplink.stats.batches_sent == 0
    assert error in caplog.text


async def test_wrong_password_names_broker_and_user_never_the_password(
    tmp_path: Path, secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    settings = edge_settings(
        tmp_path, secure_broker, "plant-a", "edge-plant-a", uplink={"password_file": wrong}
    )
    async with running_uplink(settings) as agent:
        await eventually(lambda: agent.uplink.stats.failed_connects >= 2, what="retries")
    error = agent.uplink.stats.last_error
    assert f"central broker {secure_broker.url}: login refused for user 'edge-plant-a'" in error
    assert "not-the-password" not in caplog.text + repr(agent.health())


async def test_edge_publishing_under_another_plant_is_refused_by_the_acl(
    tmp_path: Path, secure_broker: SecureBroker
) -> None:
    """plant-a's credentials, configured for plant-b: the broker lets nothing through, the
    edge says why and keeps the samples in its buffer."""
    settings = edge_settings(tmp_path, secure_broker, "plant-b", "edge-plant-a")
    async with observer(secure_broker, "plantkpi/v1/#") as watch:
        async with running_uplink(settings) as agent:
            feed(agent, [5.0, 6.0])
            await eventually(lambda: agent.uplink.stats.failed_connects >= 2, what="refusals")
        arrived = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for message in watch.messages:
                    if not message.retain:  # retained: left by an earlier test
                        arrived.append(str(message.topic))
    assert arrived == []
    error = agent.uplink.stats.last_error
    assert f"central broker {secure_broker.url}" in error
    assert "user 'edge-plant-a'" in error and "Not authorized" in error
    assert agent.uplink.stats.batches_sent == 0
    assert agent.buffer.stats().depth >= 2  # kept for when the configuration is fixed


async def test_birth_accepted_but_batches_refused_is_reported_and_keeps_the_samples(
    tmp_path: Path, secure_broker: SecureBroker
) -> None:
    """The broker takes the edge's birth but refuses its batches (a hand-edited ACL): the
    edge must not look healthy while connected, and must keep every sample."""
    settings = edge_settings(tmp_path, secure_broker, "plant-a", HALF, edge_id=HALF)
    async with running_uplink(settings) as agent:
        feed(agent, [1.0, 2.0, 3.0])
        await eventually(
            lambda: "Not authorized" in agent.uplink.stats.last_error, what="the refusal"
        )
        await eventually(lambda: agent.uplink.stats.connects >= 2, what="a reconnect")
        # Whatever the moment: the refusal stands (no reconnect wipes it), the samples stay.
        problems = verdict(agent.health(), settings.buffer_max_bytes, settings.buffer_max_samples)
    assert any(p.startswith("uplink ") and "Not authorized" in p for p in problems), problems
    assert agent.uplink.stats.batches_sent == 0
    assert agent.buffer.stats().depth >= 3


async def test_batch_claiming_another_plant_on_an_allowed_topic_is_dead_lettered(
    secure_broker: SecureBroker, collector: Collector
) -> None:
    """Where the ACL lets a batch through (the edge's own topic) but it claims another plant,
    the collector refuses it: the topic, which the broker authenticated, wins."""
    topic = edge_topic("plantkpi", ENTERPRISE, "plant-a", "edge-plant-a", "samples")
    cols = SampleColumns()
    now = time.time_ns()
    cols.append(Sample("b1-assembly", "running", now, 1.0, 0, now))
    forged = UplinkBatch(
        edge="edge-plant-b",
        enterprise=ENTERPRISE,
        plant="plant-b",
        register_version="v",
        boot=1,
        seq=0,
        sent=now,
        samples=cols,
    )
    letters = dead_letter_topic("plantkpi", ENTERPRISE, "plant-a", "edge-plant-a")
    async with observer(secure_broker, letters) as watch:
        await watch.publish(topic, forged.encode(), qos=1)
        async with asyncio.timeout(20):
            message = await anext(aiter(watch.messages))
    letter = json.loads(bytes(message.payload))
    assert letter["topic"] == topic
    assert "plant-b" in letter["reason"]
    assert collector.pipeline.stats.samples_written == 0


async def test_edge_verifying_against_the_wrong_ca_fails_with_a_clear_error(
    tmp_path: Path, secure_broker: SecureBroker
) -> None:
    settings = edge_settings(
        tmp_path,
        secure_broker,
        "plant-a",
        "edge-plant-a",
        uplink={"ca_file": secure_broker.pki.other_ca},
    )
    async with running_uplink(settings) as agent:
        await eventually(lambda: agent.uplink.stats.failed_connects >= 2, what="retries")
    error = agent.uplink.stats.last_error
    assert f"central broker {secure_broker.url}: TLS verification" in error
    assert f"CA file {secure_broker.pki.other_ca}" in error
    assert "EDGE_UPLINK__CA_FILE" in error and "CERTIFICATE_VERIFY_FAILED" in error


async def test_collector_with_the_wrong_ca_or_password_says_so_and_retries(
    secure_broker: SecureBroker, influxdb: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("nope\n")
    cases = [
        ({"broker": {"ca_file": secure_broker.pki.other_ca}}, "TLS verification"),
        ({"broker": {"password_file": wrong}}, "login refused for user 'plantkpi-collector'"),
    ]
    for extra, expected in cases:
        settings = collector_settings(secure_broker, influxdb, influx_db, **extra)
        async with running_collector(settings) as service:
            error = await _consumer_error(service, expected)
            assert not service.consumer.connected.is_set()
        assert f"broker {secure_broker.url}" in error


async def _consumer_error(service: Collector, expected: str) -> str:
    stats = service.consumer.stats
    await eventually(lambda: expected in stats.last_error, what=expected)
    return stats.last_error


async def test_a_collector_the_acl_does_not_let_read_says_so(
    tmp_path: Path,
    secure_broker: SecureBroker,
    influxdb: InfluxServer,
    influx_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """mosquitto grants the subscription and drops every delivery: no error to catch, so
    the consumer must notice the silence while an edge is publishing."""
    client = secure_broker.pki.client(NO_READ)
    settings = collector_settings(
        secure_broker,
        influxdb,
        influx_db,
        broker={
            "username": NO_READ,
            "password_file": secure_broker.password_file(NO_READ),
            "cert_file": client.cert,
            "key_file": client.key,
        },
        broker_silence_warning=0.5,
    )
    edge = edge_settings(tmp_path, secure_broker, "plant-a", "edge-plant-a")
    async with running_collector(settings) as service, running_uplink(edge) as agent:
        feed(agent, [1.0, 2.0])
        await eventually(lambda: agent.uplink.stats.batches_sent >= 1, what="a batch sent")
        await eventually(lambda: service.consumer.stats.silent_s > 0, what="the warning")
    assert service.consumer.stats.messages == 0
    assert "nothing received from" in caplog.text
    assert f"does not let user {NO_READ!r} read the uplink topics" in caplog.text
