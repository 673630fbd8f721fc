"""Keys, certificates and secured servers for the OPC UA security tests.

RSA key generation is slow here, so each key is made once per test session: the edge's PKI
folder (made by the edge's own code) is copied into every test, and the servers share one
certificate.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from common.quality import GOOD
from common.register import SignalRole, UpdateKind
from edge.sources.opcua.pki import ApplicationPki, application_uri
from simulators.machine import Sample, SignalSpec
from simulators.opcua_server import OpcUaBinding, OpcUaSourceServer, ServerSecurity
from tests import registers

EDGE_ID = "edge-p1"
"""What EdgeSettings makes of plant p1 without an edge id."""
URI = "urn:test:secure"
USER = "operator"
PASSWORD = "s3cret-Pa55"


@dataclass(frozen=True)
class Keys:
    edge_pki: Path
    """A PKI folder with the edge's certificate for EDGE_ID, made by ApplicationPki."""
    server_cert: Path
    server_key: Path

    def edge_pki_copy(self, folder: Path) -> ApplicationPki:
        shutil.copytree(self.edge_pki, folder)
        return ApplicationPki(folder, application_uri(EDGE_ID))


def make_keys(folder: Path) -> Keys:
    edge = ApplicationPki(folder / "edge-pki", application_uri(EDGE_ID))
    asyncio.run(edge.own_certificate())
    key = cert_gen.generate_private_key()
    certificate = cert_gen.generate_self_signed_app_certificate(
        key,
        "urn:plantkpi:sim:s1",
        {},
        [x509.UniformResourceIdentifier("urn:plantkpi:sim:s1"), x509.DNSName(socket.gethostname())],
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=30,
    )
    server_cert = folder / "server" / "cert.der"
    server_key = folder / "server" / "key.pem"
    server_cert.parent.mkdir(parents=True)
    server_cert.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    server_key.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return Keys(folder / "edge-pki", server_cert, server_key)


def make_user_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A user's X.509 identity: ``(<folder>/<name>.der, <folder>/<name>.pem)``, certificate
    and key, self-signed for ``urn:test:user:<name>`` (client authentication only)."""
    key = cert_gen.generate_private_key()
    uri = f"urn:test:user:{name}"
    certificate = cert_gen.generate_self_signed_app_certificate(
        key,
        name,
        {},
        [x509.UniformResourceIdentifier(uri)],
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH],
        days=30,
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / f"{name}.der", folder / f"{name}.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    key_file.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return cert_file, key_file


def trust(certificate: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(certificate, folder / certificate.name)


def register_yaml(security: dict[str, Any]) -> str:
    """Machine m0 (state on change, speed every 100 ms) on source s1 with ``security``."""
    signals = [
        registers.sig("state", "state", "s1", "on_change", node=f"nsu={URI};s=m0.state"),
        registers.sig("speed", source="s1", interval="100ms", node=f"nsu={URI};s=m0.speed"),
    ]
    s1 = registers.opcua_source("s1", publishing_interval="100ms", security=security)
    machine = registers.process("m0", signals, name="Machine")
    plant = registers.plant("p1", [s1], [registers.line("l1", [machine])])
    doc = registers.document([plant], enterprise="test-ent", region="Test", version=None)
    return registers.to_yaml(doc)


@asynccontextmanager
async def secured_server(endpoint: str, security: ServerSecurity) -> AsyncIterator[None]:
    """The simulator's server for source s1 with ``security``; speed changes every 50 ms."""
    bindings = [
        OpcUaBinding(
            "m0",
            SignalSpec("state", SignalRole.STATE, 0.1, UpdateKind.ON_CHANGE),
            f"nsu={URI};s=m0.state",
        ),
        OpcUaBinding("m0", SignalSpec("speed", SignalRole.PARAMETER, 0.1), f"nsu={URI};s=m0.speed"),
    ]
    server = OpcUaSourceServer("s1", endpoint, bindings, security=security)
    await server.prepare()
    await server.listen()

    async def tick() -> None:
        count = 0
        while True:
            count += 1
            ts = time.time_ns()
            await server.write(
                [
                    ("m0", Sample("state", "RUNNING", GOOD, ts)),
                    ("m0", Sample("speed", float(count), GOOD, ts)),
                ]
            )
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(tick())
    try:
        yield
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await server.stop()


def policy_type(policy: str, mode: str) -> ua.SecurityPolicyType:
    return ua.SecurityPolicyType[f"{policy.replace('_', '')}_{mode}"]
