"""MTConnect in the register: an agent (``kind: mtconnect``) and a signal's data item.

The edge's reader: ``edge/sources/mtconnect/`` (README: addressing, values, limits).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from common.durations import Duration
from common.register_base import Protocol, SignalBinding, SourceConfig

MAX_SAMPLE_COUNT = 100_000
"""Observations one ``/sample`` answer may carry at most (agents cap it at their buffer)."""

_NAME = re.compile(r"^[^\s/?#%]{1,255}$")
"""A data item id or device name: it goes into a URL path (device) or is compared as it is
(data item); no white space, and none of the characters a URL path gives a meaning to."""


def _shown(url: str) -> str:
    """The URL as it may be shown: a ``user:password@`` part replaced by ``***@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def parse_mtconnect_endpoint(url: str) -> str:
    """``http(s)://host[:port][/path]`` → the agent's base URL (no trailing ``/``); a
    ValueError naming the URL when it is not one. The path is where the agent answers
    (``/probe`` is appended), for an agent behind a reverse proxy's prefix."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValueError(
            f"MTConnect endpoint {_shown(url)!r}: credentials do not belong in the URL (it "
            "is logged and shown in health reports), and the reader does not log in: drop them"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"MTConnect endpoint {url!r} is not http(s)://host[:port][/path]")
    if parts.query or parts.fragment:
        raise ValueError(
            f"MTConnect endpoint {url!r}: no query or fragment (the reader adds /probe, "
            "/current and /sample to the path)"
        )
    try:
        parts.port  # noqa: B018 - raises for a port that is no number or out of range
    except ValueError as exc:
        raise ValueError(f"MTConnect endpoint {url!r}: {exc}") from None
    return url.rstrip("/")


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} is not a name the agent can have: 1 to 255 characters, no "
            "white space, '/', '?', '#' or '%'"
        )
    return value


class MtconnectSignalBinding(SignalBinding):
    kind: Literal["mtconnect"] = "mtconnect"
    data_item: str
    """The DataItem's ``id`` in the agent's probe (``/probe``): unique in an agent."""
    device: str | None = None
    """The device (name or uuid) the data item must belong to; checked against the probe.
    Default: the source's ``device``, or any device of the agent."""

    @field_validator("data_item")
    @classmethod
    def _data_item(cls, value: str) -> str:
        return _check_name(value, "data item")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value, "device")


class MtconnectSource(SourceConfig):
    kind: Literal["mtconnect"]
    """An MTConnect agent (CNC machines), read over HTTP."""
    endpoint: str
    """``http(s)://host[:port][/path]``: the agent (port 5000 is the usual agent's)."""
    device: str | None = None
    """Read one device of the agent (name or uuid: ``/<device>/probe``, …); default all."""
    poll_interval: Duration = 1.0
    """How often ``/sample`` asks for what changed since the last answer (an answer that
    says more is waiting is followed at once)."""
    timeout: Duration = 5.0
    """One request's answer, after which the agent counts as unreachable."""
    sample_count: int = Field(1000, ge=1, le=MAX_SAMPLE_COUNT)
    """Observations asked for per ``/sample`` request (``count``)."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parse_mtconnect_endpoint(value)
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value, "device")

    def check_binding(self, binding: SignalBinding, process: str) -> None:
        assert isinstance(binding, MtconnectSignalBinding)
        if self.device is not None and binding.device not in (None, self.device):
            raise ValueError(
                f"data item {binding.data_item!r} is bound to device {binding.device!r}, but "
                f"source {self.id!r} reads only device {self.device!r}"
            )


PROTOCOL = Protocol(
    "mtconnect",
    MtconnectSource,
    MtconnectSignalBinding,
    edge_module="edge.sources.mtconnect.build",
    simulator_module="simulators.mtconnect_agent",
)
