"""The edge's OPC UA PKI folder: its own application certificate and the servers it trusts.

Layout (that of node-opcua and the OPC UA reference stacks, so plant engineers know it)::

    <pki>/own/certs/plantkpi-edge.der     our application certificate (give it to servers)
    <pki>/own/private/plantkpi-edge.pem   its private key (never leaves the machine)
    <pki>/trusted/certs/                  server certificates (or their CAs) we trust
    <pki>/rejected/certs/                 server certificates we refused, to inspect and move

The certificate is made on first start and reused afterwards: a server trusts it by its
thumbprint, so a new one would have to be trusted again on every server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CERTIFICATE_DAYS = 5 * 365
"""Validity of our certificate; rotating it means re-trusting it on every server."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def application_uri(edge_id: str) -> str:
    """The edge's ApplicationUri: in its certificate and in every session it creates (servers
    compare the two)."""
    return f"urn:plantkpi:edge:{edge_id}"


def thumbprint(certificate: x509.Certificate) -> str:
    """SHA-1 of the DER form, hex: how OPC UA tools (UaExpert, Kepware, TIA) show a certificate."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()  # a name, not a check


def load_any_certificate(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


@dataclass(frozen=True)
class OwnCertificate:
    cert_file: Path
    key_file: Path
    certificate: x509.Certificate

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.certificate)


class UntrustedServerCertificate(Exception):
    """The server's certificate is not in trusted/ (nor issued by a CA there)."""

    def __init__(self, rejected_file: Path, trusted_dir: Path, certificate: x509.Certificate):
        self.rejected_file = rejected_file
        self.trusted_dir = trusted_dir
        subject = certificate.subject.rfc4514_string()
        super().__init__(
            f"server certificate {subject!r} (thumbprint {thumbprint(certificate)}) is not "
            f"trusted; it was saved as {rejected_file}: move it into {trusted_dir} if you "
            "trust it"
        )


class ApplicationPki:
    def __init__(self, root: Path, app_uri: str, *, trust_unknown: bool = False) -> None:
        self.root = root
        self.application_uri = app_uri
        self.trust_unknown = trust_unknown
        """Trust on first use: copy an unknown server certificate into trusted/ (logged)."""
        self.cert_file = root / "own" / "certs" / "plantkpi-edge.der"
        self.key_file = root / "own" / "private" / "plantkpi-edge.pem"
        self.trusted_dir = root / "trusted" / "certs"
        self.rejected_dir = root / "rejected" / "certs"
        self._own: OwnCertificate | None = None
        self._lock = asyncio.Lock()

    def check_writable(self) -> None:
        """At start-up (blocking): the folders exist and are writable, or a config error
        names the folder — rather than every connection failing later."""
        try:
            for folder in self._make_folders():
                probe = folder / ".plantkpi-write-check"
                probe.write_bytes(b"")
                probe.unlink()
        except OSError as exc:
            raise ValueError(
                f"OPC UA PKI folder {self.root} (EDGE_OPCUA_PKI_DIR) is not writable: "
                f"{exc.strerror} ({exc.filename}); point EDGE_OPCUA_PKI_DIR at a persistent, "
                "writable folder (our certificate must survive restarts)"
            ) from None

    async def own_certificate(self) -> OwnCertificate:
        """Ours, made on first use (RSA key generation takes a while: off the event loop)."""
        async with self._lock:
            if self._own is None:
                self._own = await asyncio.to_thread(self._load_or_create)
            return self._own

    def _make_folders(self) -> tuple[Path, ...]:
        folders = (self.cert_file.parent, self.key_file.parent, self.trusted_dir, self.rejected_dir)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        self.key_file.parent.chmod(0o700)
        return folders

    def _load_or_create(self) -> OwnCertificate:
        self._make_folders()
        if self.key_file.is_file() and self.cert_file.is_file():
            certificate = x509.load_der_x509_certificate(self.cert_file.read_bytes())
            problem = self._unusable(certificate)
            if problem is None:
                return OwnCertificate(self.cert_file, self.key_file, certificate)
            log.warning(
                "OPC UA application certificate %s %s: making a new one, which every server "
                "must trust again",
                self.cert_file,
                problem,
            )
            key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{self.key_file}: not an RSA private key")
        else:
            key = cert_gen.generate_private_key()
            self.key_file.write_bytes(cert_gen.dump_private_key_as_pem(key))
            self.key_file.chmod(0o600)
        certificate = cert_gen.generate_self_signed_app_certificate(
            key,
            self.application_uri,
            {},
            [
                x509.UniformResourceIdentifier(self.application_uri),
                x509.DNSName(socket.gethostname()),
            ],
            extended=[ExtendedKeyUsageOID.CLIENT_AUTH],
            days=CERTIFICATE_DAYS,
        )
        self.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
        log.info(
            "OPC UA application certificate created: %s (thumbprint %s, %s); copy it into "
            "each server's trusted folder",
            self.cert_file,
            thumbprint(certificate),
            self.application_uri,
        )
        return OwnCertificate(self.cert_file, self.key_file, certificate)

    def _unusable(self, certificate: x509.Certificate) -> str | None:
        if certificate.not_valid_after_utc < datetime.now(UTC):
            return f"expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return "has no subject alternative name"
        if self.application_uri not in san.value.get_values_for_type(
            x509.UniformResourceIdentifier
        ):
            return f"is not for {self.application_uri} (the edge id changed)"
        return None

    async def check_server(self, der: bytes) -> x509.Certificate:
        """The server's certificate if trusted; else UntrustedServerCertificate (and the
        certificate in rejected/), or, with trust on first use, it is added to trusted/."""
        return await asyncio.to_thread(self._check_server, der)

    def _check_server(self, der: bytes) -> x509.Certificate:
        certificate = x509.load_der_x509_certificate(der)
        if self._trusted(certificate):
            return certificate
        name = _file_name(certificate)
        if self.trust_unknown:
            self.trusted_dir.mkdir(parents=True, exist_ok=True)
            (self.trusted_dir / name).write_bytes(der)
            log.warning(
                "OPC UA trust on first use: server certificate %r (thumbprint %s) added to %s",
                certificate.subject.rfc4514_string(),
                thumbprint(certificate),
                self.trusted_dir,
            )
            return certificate
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        rejected = self.rejected_dir / name
        rejected.write_bytes(der)
        raise UntrustedServerCertificate(rejected, self.trusted_dir, certificate)

    def _trusted(self, certificate: x509.Certificate) -> bool:
        """Trusted: the certificate itself is in trusted/, or a CA there issued it."""
        if not self.trusted_dir.is_dir():
            return False
        for path in sorted(self.trusted_dir.iterdir()):
            if path.suffix.lower() not in (".der", ".pem", ".crt", ".cer"):
                continue
            try:
                candidate = load_any_certificate(path.read_bytes())
            except ValueError:
                log.warning("OPC UA trusted folder: %s is not a certificate; ignored", path)
                continue
            if candidate == certificate:
                return True
            if _is_ca(candidate) and candidate.subject == certificate.issuer:
                try:
                    certificate.verify_directly_issued_by(candidate)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                return certificate.not_valid_after_utc >= datetime.now(UTC)
        return False


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _file_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common = str(names[0].value) if names else "server"
    return f"{_UNSAFE.sub('_', common).strip('_')[:60] or 'server'}_{thumbprint(certificate)}.der"
