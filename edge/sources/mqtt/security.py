"""Login and TLS for one device broker, built once at start-up, and errors that say what to fix.

The username and the TLS files come from the register (``MqttSource.username``,
``MqttSource.tls``); the password only from the edge settings, kept as a ``SecretStr`` so
that no repr, log line or health report shows it.
"""

from __future__ import annotations

from pathlib import Path

import aiomqtt
from pydantic import SecretStr

from common.endpoints import BrokerAddress
from common.mqtt_tls import LinkSecurity, TlsFileSettings, explain_link_error, tls_context
from common.protocols.mqtt import MqttSource as MqttSourceConfig

# The same login-and-TLS record as the uplink's and the collector's (common/mqtt_tls.py).
BrokerSecurity = LinkSecurity


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
    tls = config.tls
    context, ca = tls_context(
        broker,
        ca_file=_resolve(tls.ca_file, base_dir) if tls else None,
        cert_file=_resolve(tls.cert_file, base_dir) if tls else None,
        key_file=_resolve(tls.key_file, base_dir) if tls else None,
        where=where,
        names=TlsFileSettings("tls.ca_file", "tls.cert_file", "tls.key_file"),
    )
    return BrokerSecurity(config.username, password, context, ca)


def explain_connect_error(
    exc: aiomqtt.MqttError, source_id: str, broker: BrokerAddress, security: BrokerSecurity
) -> str:
    """One line naming the source, the broker and what to check."""
    return explain_link_error(
        exc,
        f"MQTT source {source_id}, device broker {broker}",
        security,
        login_hint=(
            f"the register's username and the password for {source_id!r} in "
            "EDGE_BROKER_PASSWORDS / EDGE_BROKER_PASSWORD_FILES"
        ),
        ca_hint="tls.ca_file",
    )


def _resolve(path: Path | None, base_dir: Path) -> str | None:
    if path is None:
        return None
    return str(path if path.is_absolute() else base_dir / path)
