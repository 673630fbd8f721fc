"""A throwaway PKI for tests: one CA, a server certificate for the loopback broker, client
certificates by name, and an unrelated CA (for "wrong CA" cases). EC P-256, PEM files."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.servers import LOOPBACK


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass
class Pki:
    folder: Path
    ca: Path
    server: CertPair
    other_ca: Path
    """A CA that signed nothing we use: verifying the broker against it must fail."""
    _ca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    _ca_cert: x509.Certificate = field(repr=False)

    def client(self, name: str) -> CertPair:
        """A client certificate (CN = ``name``) signed by the CA; made once per name."""
        pair = CertPair(self.folder / f"{name}.pem", self.folder / f"{name}.key")
        if not pair.cert.exists():
            key, cert = _leaf(name, self._ca_key, self._ca_cert, server=False)
            _write_key(key, pair.key)
            _write_cert(cert, pair.cert)
        return pair


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("plantkpi test CA")
    server_key, server_cert = _leaf("mosquitto", ca_key, ca_cert, server=True)
    _, other = _ca("someone else's CA")
    return Pki(
        folder=folder,
        ca=_write_cert(ca_cert, folder / "ca.pem"),
        server=CertPair(
            _write_cert(server_cert, folder / "server.pem"),
            _write_key(server_key, folder / "server.key"),
        ),
        other_ca=_write_cert(other, folder / "other-ca.pem"),
        _ca_key=ca_key,
        _ca_cert=ca_cert,
    )


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


def _builder(subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> Any:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
    )


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        _builder(common, _name(common), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    common: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, *, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(common, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())
