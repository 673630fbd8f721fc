"""Shared by the MQTT device source tests: a recording sink, test certificates, and a real
mosquitto that demands TLS (with a client certificate) and a password.

Only the sink, the far end of the source, records; the brokers are real mosquitto processes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.servers import LOOPBACK, MosquittoServer

USER = "edge-a"
PASSWORD = "s3cret-Pa55"


class RecordingSink:
    def __init__(self) -> None:
        self.samples: list[tuple[Any, ...]] = []
        self.events: list[tuple[str, bool, str]] = []
        self.rejections: list[tuple[str, str, str]] = []

    def sample(self, *args: Any) -> None:
        self.samples.append(args)

    def liveness(self, source: str, up: bool, detail: str = "") -> None:
        self.events.append((source, up, detail))

    def after_durable(self, callback: Callable[[], None]) -> None:
        callback()  # nothing to persist here: the sample is already recorded

    def rejected(self, source: str, culprit: str, reason: str) -> None:
        self.rejections.append((source, culprit, reason))

    def is_up(self) -> bool:
        return bool(self.events) and self.events[-1][1]


async def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    """A CA that did not sign the broker's certificate."""


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    common: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    server: bool,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
                if server
                else [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def make_tls_files(folder: Path) -> TlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("plantkpi test CA")
    server_key, server_cert = _leaf("mosquitto", ca_key, ca_cert, server=True)
    client_key, client_cert = _leaf("edge-a", ca_key, ca_cert, server=False)
    _, other = _ca("someone else's CA")
    return TlsFiles(
        ca=_write_cert(ca_cert, folder / "ca.pem"),
        server_cert=_write_cert(server_cert, folder / "server.pem"),
        server_key=_write_key(server_key, folder / "server.key"),
        client_cert=_write_cert(client_cert, folder / "client.pem"),
        client_key=_write_key(client_key, folder / "client.key"),
        other_ca=_write_cert(other, folder / "other-ca.pem"),
    )


def secure_mosquitto(folder: Path, tls: TlsFiles) -> MosquittoServer:
    """A mosquitto whose only listener wants TLS, a client certificate of our CA and a login."""
    passwords = folder / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwords), USER, PASSWORD],
        check=True,
        capture_output=True,
    )
    return MosquittoServer(
        folder / "broker",
        extra_config=[
            # These follow the server's own `listener` line, so they secure that listener.
            f"cafile {tls.ca}",
            f"certfile {tls.server_cert}",
            f"keyfile {tls.server_key}",
            "require_certificate true",
            "allow_anonymous false",
            f"password_file {passwords}",
        ],
    )


def tls_url(server: MosquittoServer) -> str:
    return f"mqtts://{LOOPBACK}:{server.port}"


def write_register(folder: Path, source: dict[str, Any], signals: list[dict[str, Any]]) -> Path:
    """A one-plant register with one MQTT source and process ``p1`` (plus ``p2``, empty)."""
    import yaml

    document = {
        "version": "test",
        "enterprise": {"id": "ent", "region": "r", "above_designated_size": True},
        "plants": [
            {
                "id": "plant-t",
                "sources": [{"id": "devices", "kind": "mqtt", **source}],
                "lines": [
                    {
                        "id": "l1",
                        "processes": [
                            {
                                "id": "p1",
                                "name": "Press",
                                "key": True,
                                "industry": "discrete",
                                "signals": signals,
                            },
                            {"id": "p2", "name": "Other", "key": False, "industry": "discrete"},
                        ],
                    }
                ],
            }
        ],
    }
    path = folder / "register.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
