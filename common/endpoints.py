"""Broker addresses in config: ``mqtt://host:port`` (1883 default) or ``mqtts://host:port`` (8883)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker {url!r} is not mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"broker {url!r}: {exc}") from None
    return BrokerAddress(parts.hostname, port, tls)


def parse_overrides(items: list[str] | None, what: str) -> dict[str, str]:
    """Turn ``["id=url", ...]`` (CLI form) into a mapping; errors name the bad item."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{what} override {item!r} is not SOURCE_ID=URL")
        result[key.strip()] = value.strip()
    return result


def tls_context(address: BrokerAddress) -> ssl.SSLContext | None:
    """For ``mqtts://``: verify the broker's certificate against the system CAs.

    Client certificates, a custom CA and credentials are configured per link in the
    security work; until then ``mqtts://`` at least never falls back to plain TCP.
    """
    return ssl.create_default_context() if address.tls else None
