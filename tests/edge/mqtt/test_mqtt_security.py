"""TLS and login to a real mosquitto that demands a client certificate and a password.

The source is built the way the agent builds it (register file + edge settings), so the
relative TLS paths, the password file and the error texts are tested as users meet them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pydantic import SecretStr

from common.endpoints import parse_broker_url
from common.register_loader import load_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources.mqtt.source import MqttDeviceSource
from harness.servers import MosquittoServer
from tests.edge.mqtt.helpers import (
    PASSWORD,
    USER,
    RecordingSink,
    TlsFiles,
    make_tls_files,
    secure_mosquitto,
    tls_url,
    write_register,
)
from tests.edge.source_kit import eventually

pytestmark = pytest.mark.integration

TOPIC = "plant/l1/press/torque"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def broker(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[MosquittoServer]:
    server = secure_mosquitto(tmp_path_factory.mktemp("secure-broker"), tls_files)
    server.start()
    yield server
    server.close()


def build(
    folder: Path, broker: MosquittoServer, tls: dict[str, str], password: str | None
) -> MqttDeviceSource:
    """Register with relative TLS paths (next to it), password in a secrets file."""
    register = write_register(
        folder,
        {"broker": tls_url(broker), "username": USER, "tls": tls},
        [{"id": "torque", "role": "parameter", "source": "devices", "topic": TOPIC}],
    )
    files: dict[str, Path] = {}
    if password is not None:
        secret = folder / "devices.password"
        secret.write_text(password + "\n")
        files["devices"] = secret
    settings = EdgeSettings(
        register_file=register,
        plant="plant-t",
        broker_password_files=files,
        reconnect_max_delay=0.2,
    )
    [source] = build_sources(load_register(register), settings)
    assert isinstance(source, MqttDeviceSource)
    return source


def copy_tls(folder: Path, tls_files: TlsFiles, ca: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = {"ca_file": ca, "cert_file": tls_files.client_cert, "key_file": tls_files.client_key}
    for target in names.values():
        (folder / target.name).write_bytes(target.read_bytes())
    return {field: target.name for field, target in names.items()}


@contextlib.asynccontextmanager
async def running(source: MqttDeviceSource, sink: RecordingSink) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish(broker: MosquittoServer, tls_files: TlsFiles, payload: bytes) -> None:
    context = ssl.create_default_context(cafile=str(tls_files.ca))
    context.load_cert_chain(str(tls_files.client_cert), str(tls_files.client_key))
    address = parse_broker_url(tls_url(broker))
    async with aiomqtt.Client(
        address.host,
        address.port,
        username=USER,
        password=PASSWORD,
        tls_context=context,
        identifier="test-device",
    ) as client:
        await client.publish(TOPIC, payload, qos=1)


async def test_right_credentials_and_client_certificate_read_samples(
    tmp_path: Path,
    broker: MosquittoServer,
    tls_files: TlsFiles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    source = build(tmp_path, broker, copy_tls(tmp_path, tls_files, tls_files.ca), PASSWORD)
    sink = RecordingSink()
    async with running(source, sink):
        await eventually(sink.is_up, what="the secured broker to accept the edge")
        await publish(broker, tls_files, b'{"value": 41.5}')
        await eventually(lambda: len(sink.samples) == 1, what="the sample")
    assert sink.samples[0][:2] == ("p1", "torque") and sink.samples[0][3] == 41.5
    health = source.health()
    assert (
        health["security"] == f"user '{USER}', TLS verified against CA file {tmp_path / 'ca.pem'}"
    )
    # The password is nowhere: not in the health report, the liveness details or the log.
    shown = repr(health) + repr(sink.events) + caplog.text + repr(source.security)
    assert PASSWORD not in shown


async def test_wrong_password_names_source_and_broker_and_keeps_retrying(
    tmp_path: Path, broker: MosquittoServer, tls_files: TlsFiles
) -> None:
    source = build(tmp_path, broker, copy_tls(tmp_path, tls_files, tls_files.ca), "not-it")
    sink = RecordingSink()
    async with running(source, sink):
        await eventually(lambda: source.stats.failed_connects >= 3, what="repeated attempts")
    assert source.stats.connects == 0
    [(name, up, detail)] = sink.events  # one "down", not one per attempt
    assert (name, up) == ("devices", False)
    assert f"MQTT source devices, device broker {tls_url(broker)}: login refused" in detail
    assert f"user '{USER}'" in detail and "EDGE_BROKER_PASSWORDS" in detail
    assert "not-it" not in detail


async def test_untrusted_broker_certificate_gives_a_tls_verification_error(
    tmp_path: Path, broker: MosquittoServer, tls_files: TlsFiles
) -> None:
    source = build(tmp_path, broker, copy_tls(tmp_path, tls_files, tls_files.other_ca), PASSWORD)
    sink = RecordingSink()
    async with running(source, sink):
        await eventually(lambda: source.stats.failed_connects >= 2, what="repeated attempts")
    [(_, up, detail)] = sink.events
    assert not up
    assert "TLS verification of the broker's certificate failed" in detail
    assert f"CA file {tmp_path / 'other-ca.pem'}" in detail
    assert "CERTIFICATE_VERIFY_FAILED" in detail


@pytest.mark.parametrize(
    ("source", "settings", "error"),
    [
        (
            {"broker": "mqtts://127.0.0.1:8883", "tls": {"ca_file": "missing.pem"}},
            {},
            r"MQTT source devices: tls.ca_file .*missing.pem: No such file",
        ),
        (
            {"broker": "mqtt://127.0.0.1:1883"},
            {"broker_passwords": {"devices": SecretStr("x")}},
            "a broker password is configured but the register gives no 'username'",
        ),
        (
            {"broker": "mqtts://127.0.0.1:8883", "tls": {"ca_file": "ca.pem"}},
            {"brokers": {"devices": "mqtt://127.0.0.1:1883"}},
            "'tls' given but the broker in use, mqtt://127.0.0.1:1883, is not mqtts://",
        ),
        (
            {"broker": "mqtt://127.0.0.1:1883", "username": "u"},
            {"broker_password_files": {"devices": Path("/nonexistent/secret")}},
            "source devices: cannot read broker password file /nonexistent/secret",
        ),
        (
            {"broker": "mqtt://127.0.0.1:1883"},
            {"broker_passwords": {"nodevice": SecretStr("x")}},
            r"setting for unknown source\(s\) \['nodevice'\]",
        ),
    ],
)
def test_unusable_security_settings_fail_at_start_up_naming_the_source(
    tmp_path: Path, source: dict[str, Any], settings: dict[str, Any], error: str
) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    register = write_register(
        tmp_path,
        source,
        [{"id": "torque", "role": "parameter", "source": "devices", "topic": TOPIC}],
    )
    edge = EdgeSettings(register_file=register, plant="plant-t", **settings)
    with pytest.raises(ValueError, match=error):
        build_sources(load_register(register), edge)


def test_password_from_env_is_a_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGE_BROKER_PASSWORDS", '{"devices": "from-env"}')
    settings = EdgeSettings(register_file=tmp_path / "r.yaml", plant="p")
    secret = settings.broker_password("devices")
    assert secret is not None and secret.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)
