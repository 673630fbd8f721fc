"""Login and TLS for one device broker, built once at start-up, and errors that say what to fix.

The username and the TLS files come from the register (``MqttSource.username``,
``MqttSource.tls``); the password only from the edge settings, kept as a ``SecretStr`` so
that no repr, log line or health report shows it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
from pydantic import SecretStr

from common.endpoints import BrokerAddress
from common.register import MqttSource as MqttSourceConfig

# CONNACK codes a broker answers for a refused login: 3.1.1 (4, 5) and MQTT 5 (134, 135).
_LOGIN_REFUSED = {4, 5, 134, 135}


@dataclass(frozen=True)
class BrokerSecurity:
    username: str | None = None
    password: SecretStr | None = None
    tls: ssl.SSLContext | None = None
    ca_description: str = "the system CAs"

    def describe(self) -> str:
        """For the health report: what is used, never the secret itself."""
        login = f"user {self.username!r}" if self.username else "anonymous"
        tls = f"TLS verified against {self.ca_description}" if self.tls else "no TLS"
        return f"{login}, {tls}"


def build_security(
    config: MqttSourceConfig,
    broker: BrokerAddress,
    password: SecretStr | None,
    base_dir: Path,
) -> BrokerSecurity:
    """Raise ValueError naming the source and field for anything unusable (fail at start-up)."""
    where = f"MQTT source {config.id}"
    if password is not None and config.username is None:
        raise ValueError(
            f"{where}: a broker password is configured but the register gives no 'username'"
        )
    if config.tls is not None and not broker.tls:
        raise ValueError(f"{where}: 'tls' given but the broker in use, {broker}, is not mqtts://")
    context: ssl.SSLContext | None = None
    ca = "the system CAs"
    if broker.tls:
        tls = config.tls
        ca_file = _resolve(tls.ca_file, base_dir) if tls else None
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise ValueError(f"{where}: tls.ca_file {ca_file}: {_reason(exc)}") from None
        if ca_file is not None:
            ca = f"CA file {ca_file}"
        if tls is not None and tls.cert_file is not None:
            cert = str(_resolve(tls.cert_file, base_dir))
            key = _resolve(tls.key_file, base_dir)
            try:
                context.load_cert_chain(cert, key)
            except OSError as exc:  # ssl.SSLError is an OSError
                raise ValueError(
                    f"{where}: tls.cert_file {cert} / tls.key_file {key}: {_reason(exc)}"
                ) from None
    return BrokerSecurity(config.username, password, context, ca)


def explain_connect_error(
    exc: aiomqtt.MqttError, source_id: str, broker: BrokerAddress, security: BrokerSecurity
) -> str:
    """One line naming the source, the broker and what to check."""
    head = f"MQTT source {source_id}, device broker {broker}"
    rc = getattr(exc, "rc", None)
    code = getattr(rc, "value", rc)
    if isinstance(exc, aiomqtt.MqttCodeError) and code in _LOGIN_REFUSED:
        who = f"user {security.username!r}" if security.username else "anonymous login"
        return (
            f"{head}: login refused for {who} ({exc}); check the register's username and "
            f"the password for {source_id!r} in EDGE_BROKER_PASSWORDS / EDGE_BROKER_PASSWORD_FILES"
        )
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (
            f"{head}: TLS verification of the broker's certificate failed against "
            f"{security.ca_description} ({text}); check tls.ca_file and the broker's host name"
        )
    if "SSL" in text or "TLS" in text:
        return f"{head}: TLS handshake failed ({text})"
    return f"{head}: {text}"


def _resolve(path: Path | None, base_dir: Path) -> str | None:
    if path is None:
        return None
    return str(path if path.is_absolute() else base_dir / path)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
