"""Login and TLS for one MQTT link, built once at start-up, and errors that say what to fix.

One place for every MQTT link: the edge's device brokers, the edge's uplink and the
collector's consumer. Secrets are ``SecretStr`` (no repr, log line or health report shows
them); files are read at start-up so that a missing one fails there, naming the setting.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from pydantic import SecretStr

from common.endpoints import BrokerAddress

# CONNACK codes a broker answers for a refused login: 3.1.1 (4, 5) and MQTT 5 (134, 135).
LOGIN_REFUSED = frozenset({4, 5, 134, 135})
# MQTT 5 reason codes of a refused PUBLISH or SUBSCRIBE (PUBACK / SUBACK).
NOT_AUTHORIZED = 135


@dataclass(frozen=True)
class LinkSecurity:
    username: str | None = None
    password: SecretStr | None = None
    tls: ssl.SSLContext | None = None
    ca_description: str = "the system CAs"

    def describe(self) -> str:
        """For health reports and logs: what is used, never the secret itself."""
        login = f"user {self.username!r}" if self.username else "anonymous"
        tls = f"TLS verified against {self.ca_description}" if self.tls else "no TLS"
        return f"{login}, {tls}"

    def plain_password(self) -> str | None:
        """Only for handing to the MQTT client."""
        return self.password.get_secret_value() if self.password else None


@dataclass(frozen=True)
class TlsFileSettings:
    """The names under which the user configured the files (for error messages)."""

    ca_file: str = "ca_file"
    cert_file: str = "cert_file"
    key_file: str = "key_file"


def tls_context(
    broker: BrokerAddress,
    *,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    where: str,
    names: TlsFileSettings = TlsFileSettings(),
) -> tuple[ssl.SSLContext | None, str]:
    """The context for ``mqtts://`` (None for ``mqtt://``) and a description of its CA.

    The broker's certificate and host name are always verified: against ``ca_file`` or,
    without one, the system CAs. Raises ValueError naming ``where`` and the setting.
    """
    given = [name for name, value in _files(names, ca_file, cert_file, key_file) if value]
    if not broker.tls:
        if given:
            raise ValueError(
                f"{where}: {', '.join(given)} given but the broker, {broker}, is not mqtts://"
            )
        return None, "no TLS"
    if key_file is not None and cert_file is None:
        raise ValueError(f"{where}: {names.key_file} given without {names.cert_file}")
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except OSError as exc:  # ssl.SSLError is an OSError
        raise ValueError(f"{where}: {names.ca_file} {ca_file}: {_reason(exc)}") from None
    if cert_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        except OSError as exc:
            raise ValueError(
                f"{where}: {names.cert_file} {cert_file} / {names.key_file} {key_file}: "
                f"{_reason(exc)}"
            ) from None
    return context, f"CA file {ca_file}" if ca_file else "the system CAs"


def link_security(
    broker: BrokerAddress,
    *,
    env_prefix: str,
    username: str | None,
    password: SecretStr | None,
    password_file: Path | None,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
) -> LinkSecurity:
    """Login and TLS of a link configured by ``<env_prefix>USERNAME``, ``…PASSWORD``,
    ``…PASSWORD_FILE``, ``…CA_FILE``, ``…CERT_FILE`` and ``…KEY_FILE`` settings.

    Raises ValueError naming the broker and the setting for anything unusable.
    """
    where = f"broker {broker}"
    if password is not None and password_file is not None:
        raise ValueError(
            f"{where}: both {env_prefix}PASSWORD and {env_prefix}PASSWORD_FILE are set; keep one"
        )
    if password_file is not None:
        password = read_secret_file(password_file, where, f"{env_prefix}PASSWORD_FILE")
    if password is not None and not username:
        raise ValueError(f"{where}: a password is configured but {env_prefix}USERNAME is not")
    context, ca = tls_context(
        broker,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        where=where,
        names=TlsFileSettings(
            f"{env_prefix}CA_FILE", f"{env_prefix}CERT_FILE", f"{env_prefix}KEY_FILE"
        ),
    )
    return LinkSecurity(username or None, password, context, ca)


def read_secret_file(path: Path, where: str, setting: str) -> SecretStr:
    try:
        # One trailing newline is what `echo secret > file` adds, not part of the secret.
        return SecretStr(path.read_text(encoding="utf-8").removesuffix("\n"))
    except OSError as exc:
        raise ValueError(f"{where}: cannot read {setting} {path}: {exc.strerror}") from None


def connect_error_kind(exc: aiomqtt.MqttError) -> str:
    """``login`` (refused credentials), ``tls-verify``, ``tls`` or ``other``.

    Only the broker's CONNACK refuses a login: paho's own error numbers overlap those
    codes (4 is also "the client is not currently connected", what a publish raises when a
    broker simply stopped), so a code counts as a refusal only on a connect error.
    """
    rc = getattr(exc, "rc", None)
    code = getattr(rc, "value", rc)
    if isinstance(exc, MqttConnectError) and code in LOGIN_REFUSED:
        return "login"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "tls-verify"
    if "SSL" in text or "TLS" in text:
        return "tls"
    return "other"


def explain_link_error(
    exc: aiomqtt.MqttError,
    head: str,
    security: LinkSecurity,
    *,
    login_hint: str,
    ca_hint: str,
) -> str:
    """One line: ``head`` (which link, which broker), what went wrong and what to check."""
    kind = connect_error_kind(exc)
    text = str(exc)
    if kind == "login":
        who = f"user {security.username!r}" if security.username else "anonymous login"
        return f"{head}: login refused for {who} ({exc}); check {login_hint}"
    if kind == "tls-verify":
        return (
            f"{head}: TLS verification of the broker's certificate failed against "
            f"{security.ca_description} ({text}); check {ca_hint} and the broker's host name"
        )
    if kind == "tls":
        return f"{head}: TLS handshake failed ({text})"
    return f"{head}: {text}"


def _files(
    names: TlsFileSettings,
    ca_file: str | Path | None,
    cert_file: str | Path | None,
    key_file: str | Path | None,
) -> list[tuple[str, str | Path | None]]:
    return [(names.ca_file, ca_file), (names.cert_file, cert_file), (names.key_file, key_file)]


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
