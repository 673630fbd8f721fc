"""Broker addresses in config: ``mqtt://host:port`` (1883 default) or ``mqtts://host:port`` (8883).

Login and TLS for a broker link: ``common/mqtt_tls.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def _without_credentials(url: str) -> str:
    """The URL as it may be shown: a ``user:password@`` part is replaced by ``***@``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def _refuse_credentials(url: str, what: str, settings: str) -> None:
    if "@" in urlsplit(url).netloc:
        raise ValueError(
            f"{what} {_without_credentials(url)!r}: credentials do not belong in the URL "
            f"(it is logged and shown in health reports); use {settings}"
        )


def parse_broker_url(url: str) -> BrokerAddress:
    _refuse_credentials(url, "broker", "the username and password settings")
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker {url!r} is not mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"broker {url!r}: {exc}") from None
    return BrokerAddress(parts.hostname, port, tls)


def check_source_endpoint(url: str) -> str:
    """An endpoint override of any source kind (``EDGE_ENDPOINTS``): no credentials in it
    (endpoints are logged and reported); its scheme is checked by the source's protocol."""
    _refuse_credentials(url, "endpoint", "the source's login settings")
    if "://" not in url:
        raise ValueError(f"endpoint {url!r} is not a URL (opc.tcp://host:port, modbus://host:port)")
    return url


def check_opcua_endpoint(url: str) -> str:
    """An ``opc.tcp://host:port[/path]`` endpoint without credentials in it (asyncua would
    take ``user:password@`` from the URL, and endpoints are logged)."""
    _refuse_credentials(
        url, "OPC UA endpoint", "the source's security identity and EDGE_OPCUA_PASSWORDS"
    )
    parts = urlsplit(url)
    if parts.scheme != "opc.tcp" or not parts.hostname:
        raise ValueError(f"OPC UA endpoint {url!r} is not opc.tcp://host:port")
    return url


def parse_overrides(items: list[str] | None, what: str) -> dict[str, str]:
    """Turn ``["id=url", ...]`` (CLI form) into a mapping; errors name the bad item."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{what} override {item!r} is not SOURCE_ID=URL")
        result[key.strip()] = value.strip()
    return result
