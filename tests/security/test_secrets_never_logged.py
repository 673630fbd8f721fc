"""A run with every secret configured, logging at DEBUG, and no secret anywhere in its output.

Real processes (edge agent and collector through their command lines), a TLS + password +
ACL mosquitto, an OPC UA server demanding SignAndEncrypt and a password, InfluxDB v2 mode
with a token from a secrets file, API bearer tokens, and a device broker login. The run
includes the failure paths that are most tempted to print a secret: a refused uplink
password, a refused OPC UA password, a refused device-broker password and a wrong API
token. Everything the processes wrote (stdout, stderr) and everything they serve (the
edge's /health, the collector's /api/v1/edges) is searched for every secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from edge.sources.opcua.pki import ApplicationPki, application_uri
from harness.servers import InfluxServer, V2ProxyServer, free_port
from simulators.opcua_server import ServerSecurity
from tests import registers
from tests.edge.opcua.security_kit import (
    PASSWORD as OPCUA_PASSWORD,
)
from tests.edge.opcua.security_kit import (
    URI,
    USER,
    make_keys,
    policy_type,
    secured_server,
    trust,
)
from tests.security.conftest import OBSERVER, PASSWORDS, SecureBroker

pytestmark = pytest.mark.integration

EDGE = "edge-plant-a"
INFLUX_TOKEN = "influx-Token-7f3a9c-secret"
API_TOKEN = "api-Token-4b8d2e-secret"
WRONG = {
    "uplink": "wrong-Uplink-Pw-91c",
    "opcua": "wrong-Opcua-Pw-5d2",
    "device": "wrong-Device-Pw-3e7",
    "api": "wrong-Api-Token-8a1",
}


def register_text(opcua_endpoint: str, device_broker: str) -> str:
    """Plant-a of the demo enterprise (so the generated ACL applies), one secured OPC UA
    source and one device broker that needs a login."""
    identity = {"type": "username", "username": USER}
    sources = [
        registers.opcua_source(
            "s1",
            opcua_endpoint,
            publishing_interval="100ms",
            security={"policy": "Basic256Sha256", "mode": "SignAndEncrypt", "identity": identity},
        ),
        registers.mqtt_source(
            "dev",
            device_broker,
            username=OBSERVER,
            tls={"ca_file": "ca.pem", "cert_file": "device.pem", "key_file": "device.key"},
        ),
    ]
    signals = [
        registers.sig("state", "state", "s1", "on_change", node=f"nsu={URI};s=m0.state"),
        registers.sig("speed", source="s1", interval="100ms", node=f"nsu={URI};s=m0.speed"),
        registers.sig("power", source="dev", topic="dev/m0/power"),
    ]
    machine = registers.process("m0", signals, name="Machine")
    plant = registers.plant("plant-a", sources, [registers.line("l1", [machine])])
    doc = registers.document([plant], enterprise="jinhua-machinery", version="secrets-test")
    return registers.to_yaml(doc)


class Processes:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=self.folder,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append((name, proc))

    def stop(self, name: str | None = None) -> None:
        for proc_name, proc in self.procs:
            if name is None or proc_name == name:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("*.log")))


@contextmanager
def processes(folder: Path) -> Iterator[Processes]:
    running = Processes(folder)
    try:
        yield running
    finally:
        running.stop()


async def _until(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def test_no_secret_appears_in_any_log_or_report(
    tmp_path: Path,
    secure_broker: SecureBroker,
    influxdb: InfluxServer,
    v2_proxy: V2ProxyServer,
    influx_db: str,
) -> None:
    pki = secure_broker.pki
    keys = await asyncio.to_thread(make_keys, tmp_path / "keys")
    edge_pki = ApplicationPki(tmp_path / "edge-pki", application_uri(EDGE))
    own = await edge_pki.own_certificate()
    trust(keys.server_cert, edge_pki.trusted_dir)
    server_trusted = tmp_path / "server-trusted"
    trust(own.cert_file, server_trusted)
    offered = ServerSecurity(
        keys.server_cert,
        keys.server_key,
        (policy_type("Basic256Sha256", "SignAndEncrypt"),),
        users={USER: OPCUA_PASSWORD},
        trusted_dir=server_trusted,
    )
    opcua_endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    run = tmp_path / "run"
    run.mkdir()
    (run / "register.yaml").write_text(register_text(opcua_endpoint, secure_broker.url))
    device = pki.client(OBSERVER)
    (run / "ca.pem").write_bytes(pki.ca.read_bytes())
    (run / "device.pem").write_bytes(device.cert.read_bytes())
    (run / "device.key").write_bytes(device.key.read_bytes())
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "influx-token").write_text(INFLUX_TOKEN + "\n")
    (secrets / "opcua").write_text(OPCUA_PASSWORD)
    api_port, health_port = free_port(), free_port()
    edge_client = pki.client(EDGE)
    collector_client = pki.client("plantkpi-collector")
    collector_env = {
        "COLLECTOR_REGISTERS": json.dumps([str(run / "register.yaml")]),
        "COLLECTOR_BROKER__URL": secure_broker.url,
        "COLLECTOR_BROKER__USERNAME": "plantkpi-collector",
        "COLLECTOR_BROKER__PASSWORD": PASSWORDS["plantkpi-collector"],
        "COLLECTOR_BROKER__CA_FILE": str(pki.ca),
        "COLLECTOR_BROKER__CERT_FILE": str(collector_client.cert),
        "COLLECTOR_BROKER__KEY_FILE": str(collector_client.key),
        "COLLECTOR_BROKER__CLIENT_ID": f"secrets-test-{api_port}",
        "COLLECTOR_INFLUX__URL": v2_proxy.url,
        "COLLECTOR_INFLUX__MODE": "v2",
        "COLLECTOR_INFLUX__DATABASE": influx_db,
        "COLLECTOR_INFLUX__TOKEN_FILE": str(secrets / "influx-token"),
        "COLLECTOR_API__PORT": str(api_port),
        "COLLECTOR_API__TOKENS": json.dumps([API_TOKEN]),
        "COLLECTOR_KPI__PERIOD": "2s",
        "COLLECTOR_KPI__WINDOW": "20s",
    }
    edge_env = {
        "EDGE_UPLINK__USERNAME": EDGE,
        "EDGE_UPLINK__PASSWORD_FILE": str(secure_broker.password_file(EDGE)),
        "EDGE_UPLINK__CA_FILE": str(pki.ca),
        "EDGE_UPLINK__CERT_FILE": str(edge_client.cert),
        "EDGE_UPLINK__KEY_FILE": str(edge_client.key),
        "EDGE_OPCUA_PKI_DIR": str(edge_pki.root),
        "EDGE_OPCUA_PASSWORD_FILES": json.dumps({"s1": str(secrets / "opcua")}),
        "EDGE_BROKER_PASSWORDS": json.dumps({"dev": PASSWORDS[OBSERVER]}),
        "EDGE_BUFFER_DIR": str(tmp_path / "buffer"),
        "EDGE_HEALTH_PORT": str(health_port),
        "EDGE_STATUS_INTERVAL": "1s",
        "EDGE_FLUSH_INTERVAL": "200ms",
        "EDGE_RECONNECT_MAX_DELAY": "1s",
    }
    edge_args = ["-m", "edge", "run", "--register", "register.yaml", "--plant", "plant-a"]
    edge_args += ["--uplink-broker", secure_broker.url, "--log-level", "DEBUG"]
    api = f"http://127.0.0.1:{api_port}"
    reader = InfluxQLReader(InfluxSettings(url=influxdb.url, database=influx_db))

    async def stored() -> bool:
        series = await reader.query('SELECT count("value") FROM "sample" WHERE "process" = \'m0\'')
        counts = [row.get("count", 0) for s in series for row in s.rows()]
        return bool(counts) and counts[0] > 10

    with processes(run) as procs:
        async with secured_server(opcua_endpoint, offered):
            procs.start(
                "collector", ["-m", "collector", "run", "--log-level", "DEBUG"], collector_env
            )
            procs.start("edge", edge_args, edge_env)
            await _until(stored, "samples from the secured edge in InfluxDB")
            async with httpx.AsyncClient(base_url=api, timeout=10) as client:
                edges = await client.get(
                    "/api/v1/edges", headers={"Authorization": f"Bearer {API_TOKEN}"}
                )
                refused = await client.get(
                    "/api/v1/kpi", headers={"Authorization": f"Bearer {WRONG['api']}"}
                )
                health = (await client.get(f"http://127.0.0.1:{health_port}/health")).text
            procs.stop("edge")
            # The failure paths: every login refused, once each, with a wrong secret.
            wrong_env = {
                **edge_env,
                "EDGE_UPLINK__PASSWORD_FILE": "",
                "EDGE_UPLINK__PASSWORD": WRONG["uplink"],
                "EDGE_OPCUA_PASSWORD_FILES": "{}",
                "EDGE_OPCUA_PASSWORDS": json.dumps({"s1": WRONG["opcua"]}),
                "EDGE_BROKER_PASSWORDS": json.dumps({"dev": WRONG["device"]}),
                "EDGE_BUFFER_DIR": str(tmp_path / "buffer-wrong"),
            }
            del wrong_env["EDGE_UPLINK__PASSWORD_FILE"]
            procs.start("edge-wrong", edge_args, wrong_env)
            await _until(lambda: _refusals_logged(run / "edge-wrong.log"), "the three refusals", 45)
    assert edges.status_code == 200 and EDGE in edges.text
    assert refused.status_code == 401
    output = procs.output() + health + edges.text
    # The run did log what it did: secured links, refusals (so the search below means something).
    assert "TLS verified against CA file" in output
    assert "refused the user identity" in output
    assert "login refused for user 'test-observer'" in output
    secrets_used = [
        *PASSWORDS.values(),
        OPCUA_PASSWORD,
        INFLUX_TOKEN,
        API_TOKEN,
        *WRONG.values(),
    ]
    leaked = [secret for secret in secrets_used if secret in output]
    assert not leaked, f"secrets in the output: {leaked}"


async def _refusals_logged(log: Path) -> bool:
    text = await asyncio.to_thread(_read, log)
    return (
        "refused the user identity" in text  # OPC UA
        and "uplink: central broker" in text
        and "login refused for user 'edge-plant-a'" in text  # the uplink
        and "login refused for user 'test-observer'" in text  # the device broker
    )


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""
