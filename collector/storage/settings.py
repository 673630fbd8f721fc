"""Where and how the collector stores and reads data: one model for writer and reader.

Embedded in the collector's settings (env prefix ``COLLECTOR_INFLUX__``). ``v1`` talks to
InfluxDB 1.x (``/write``, optional user/password); ``v2`` talks to InfluxDB 2.x or to the
1.8+ compatibility API (``/api/v2/write`` with a token; ``database`` is the bucket).
Reads use InfluxQL over ``/query`` in both modes (2.x serves it through DBRP mappings).
"""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from common.durations import Duration


class InfluxSettings(BaseModel):
    # Errors must not echo their input: it holds the token and the password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str = "http://127.0.0.1:8086"
    """Base URL of the InfluxDB HTTP API."""
    mode: Literal["v1", "v2"] = "v1"
    database: str = Field("plantkpi", min_length=1)
    """Database (v1) or bucket (v2)."""
    retention_policy: str | None = None
    """v1: the ``rp`` to write to (default policy when unset); v2: sent as ``bucket/rp``."""
    org: str = ""
    """v2 organisation (ignored by the 1.8 compatibility API)."""
    token: SecretStr | None = None
    """v2 API token (1.8 compatibility API: ``username:password``, or anything with auth off)."""
    username: str | None = None
    """v1 user, sent with HTTP basic auth."""
    password: SecretStr | None = None
    token_file: Path | None = None
    """Read ``token`` from this file at start-up (Docker/Kubernetes secrets)."""
    password_file: Path | None = None
    """Read ``password`` from this file at start-up."""
    timeout: Duration = 10.0
    """Per HTTP request, in seconds (``10s``, ``500ms``)."""
    gzip: Literal["auto", "on", "off"] = "auto"
    """Compress write bodies. ``auto``: on, unless the server is on this host (a loopback
    URL), where compressing costs both sides CPU and saves no network (docs/benchmarks.md,
    "MQTT device burst")."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"InfluxDB url {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        """Secrets come from the environment or a file, never from a command line."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for secret in ("token", "password"):
            path = data.get(f"{secret}_file")
            if path is None:
                continue
            if data.get(secret) is not None:
                raise ValueError(f"give influx {secret} or {secret}_file, not both")
            try:
                # One trailing newline is what `echo secret > file` adds, not the secret's.
                text = Path(path).read_text(encoding="utf-8").removesuffix("\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ValueError(f"influx {secret}_file {path}: cannot read it: {reason}") from None
            if not text:
                raise ValueError(f"influx {secret}_file {path} is empty")
            data[secret] = text
        return data

    @model_validator(mode="after")
    def _credentials_fit_mode(self) -> InfluxSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self

    @property
    def compresses(self) -> bool:
        """Whether write bodies are gzipped (``gzip``, with ``auto`` resolved)."""
        if self.gzip != "auto":
            return self.gzip == "on"
        host = (urlsplit(self.url).hostname or "").lower()
        if host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:  # a host name: assume it is another machine
            return True

    @property
    def bucket(self) -> str:
        """The v2 bucket: ``database`` or, with a retention policy, ``database/rp``."""
        return (
            f"{self.database}/{self.retention_policy}" if self.retention_policy else self.database
        )

    def auth_headers(self) -> dict[str, str]:
        """HTTP headers that authenticate: ``Token`` in v2 mode, basic auth for a v1 user."""
        if self.mode == "v2" and self.token is not None:
            return {"Authorization": f"Token {self.token.get_secret_value()}"}
        if self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password.get_secret_value()}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}

    def describe(self) -> str:
        """For logs and errors: where data goes, never the secrets."""
        target = self.bucket if self.mode == "v2" else self.database
        return f"InfluxDB {self.mode} at {self.url}, {'bucket' if self.mode == 'v2' else 'db'} {target}"
