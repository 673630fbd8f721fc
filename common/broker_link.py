"""The settings of one link to an MQTT broker: where it is, who logs in, which TLS files,
which client id. The collector's ``COLLECTOR_BROKER__*`` and the edge's ``EDGE_UPLINK__*``
are this one model (nested with ``__``: ``EDGE_UPLINK__URL``, ``EDGE_UPLINK__CA_FILE``).

The names these had before they were one model (``EDGE_UPLINK_BROKER``,
``COLLECTOR_BROKER_USERNAME``, ...) still work, with a warning at start-up:
:func:`renamed_link_settings` lists them for a settings class.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from common.endpoints import BrokerAddress, parse_broker_url
from common.mqtt_tls import LinkSecurity, link_security

LINK_FIELDS = ("username", "password", "password_file", "ca_file", "cert_file", "key_file")
"""Fields whose earlier flat name was the link's prefix plus the field (``…_CA_FILE``)."""


class BrokerLinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = "mqtt://127.0.0.1:1883"
    """``mqtt://host[:port]``, or ``mqtts://`` for TLS."""
    username: str | None = None
    """Login at the broker (the default ACL, ``plantkpi-collector acl``, expects an edge to
    log in as its edge id)."""
    password: SecretStr | None = None
    """From the environment only; never logged or reported."""
    password_file: Path | None = None
    """Or a file holding it (Docker/Kubernetes secrets); read at start-up."""
    ca_file: Path | None = None
    """CA certificate(s) the broker's certificate is verified against (default: the system
    CAs). Only with an ``mqtts://`` URL."""
    cert_file: Path | None = None
    """Client certificate, where the broker asks for one."""
    key_file: Path | None = None
    """Its private key (unencrypted PEM; may also be inside ``cert_file``)."""
    client_id: str | None = None
    """MQTT client id; the service's own default when unset (the broker keeps a session
    under it, so keep it stable across restarts)."""

    @field_validator("url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @property
    def address(self) -> BrokerAddress:
        return parse_broker_url(self.url)

    def security(self, env_prefix: str) -> LinkSecurity:
        """Login and TLS; raises ValueError naming the setting at fault, as
        ``<env_prefix>CA_FILE`` (``env_prefix`` is how the user sets this link)."""
        return link_security(
            self.address,
            env_prefix=env_prefix,
            username=self.username,
            password=self.password,
            password_file=self.password_file,
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
        )


def renamed_link_settings(
    old_prefix: str, new_prefix: str, *, url: str, client_id: str | None = None
) -> dict[str, str]:
    """Earlier flat names of a link's settings → their nested names: ``url`` and
    ``client_id`` name the earlier variables of those two (their names did not follow the
    prefix), the rest were ``<old_prefix><FIELD>``."""
    renamed = {url: f"{new_prefix}URL"}
    if client_id is not None:
        renamed[client_id] = f"{new_prefix}CLIENT_ID"
    for field in LINK_FIELDS:
        renamed[f"{old_prefix}{field.upper()}"] = f"{new_prefix}{field.upper()}"
    return renamed
