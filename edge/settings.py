"""The edge agent's one settings object (env prefix ``EDGE_``, ``.env`` or a secrets folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.durations import Duration
from common.endpoints import parse_broker_url
from common.topics import DEFAULT_PREFIX


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EDGE_", env_file=".env", extra="ignore", secrets_dir=None
    )

    register_file: Path
    """The enterprise register (YAML)."""
    plant: str
    """Which plant of the register this agent serves."""
    edge_id: str = ""
    """Defaults to ``edge-<plant>``."""
    uplink_broker: str = "mqtt://127.0.0.1:1883"
    """The central broker the collector listens on."""
    topic_prefix: str = DEFAULT_PREFIX
    endpoints: dict[str, str] = Field(default_factory=dict)
    """Override OPC UA endpoints by source id (JSON in env: ``{"line1": "opc.tcp://..."}``)."""
    brokers: dict[str, str] = Field(default_factory=dict)
    """Override device broker URLs by source id."""
    broker_passwords: dict[str, SecretStr] = Field(default_factory=dict)
    """Device broker passwords by source id (``{"devices": "..."}``); the register names only
    the username. Never logged or reported."""
    broker_password_files: dict[str, Path] = Field(default_factory=dict)
    """Or files holding them, by source id (Docker/Kubernetes secrets); read at start-up."""
    batch_max_samples: int = Field(5000, ge=1, le=100_000)
    flush_interval: Duration = 0.5
    """How long samples may wait before a batch is sent (latency vs. messages/s)."""
    buffer_max_samples: int = Field(2_000_000, ge=1000)
    """Samples held while the uplink is down; the oldest are dropped (and counted) beyond it."""
    buffer_dir: Path | None = None
    """Where the store-and-forward log lives; default ``./edge-buffer-<edge id>``."""
    buffer_max_bytes: int = Field(1024**3, ge=1024**2)
    """Bytes on disk the buffer may use; the oldest segment is dropped (and counted) beyond it."""
    buffer_segment_bytes: int = Field(16 * 1024**2, ge=4096)
    """Size of one log file: the unit in which a full buffer drops its oldest data."""
    buffer_fsync: Literal["batch", "interval", "never"] = "interval"
    """``batch``: fsync every group commit; ``interval``: at most every ``buffer_fsync_interval``;
    ``never``: leave it to the OS. All three survive a crash of the agent (see
    docs/store-and-forward.md for power loss)."""
    buffer_fsync_interval: Duration = 1.0
    buffer_commit_interval: Duration = Field(0.1, le=5.0)
    """Group commit: how often received samples are written to the buffer's disk."""
    reconnect_max_delay: Duration = 30.0
    opcua_timeout: Duration = 4.0
    opcua_watchdog: Duration = 5.0
    """A subscription silent for this long (plus its keep-alive) is rebuilt."""
    monitored_items_per_call: int = Field(500, ge=1)
    nodes_per_read: int = Field(500, ge=1)
    status_interval: Duration = 10.0
    """How often a health report is published (and logged)."""

    @field_validator("uplink_broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    def broker_password(self, source_id: str) -> SecretStr | None:
        """The password for a device broker source, from the env or its file."""
        if source_id in self.broker_passwords and source_id in self.broker_password_files:
            raise ValueError(
                f"source {source_id}: password given both in EDGE_BROKER_PASSWORDS and "
                "EDGE_BROKER_PASSWORD_FILES; keep one"
            )
        path = self.broker_password_files.get(source_id)
        if path is None:
            return self.broker_passwords.get(source_id)
        try:
            # One trailing newline is what `echo secret > file` adds, not part of the secret.
            return SecretStr(path.read_text(encoding="utf-8").removesuffix("\n"))
        except OSError as exc:
            raise ValueError(
                f"source {source_id}: cannot read broker password file {path}: {exc.strerror}"
            ) from None

    @property
    def resolved_edge_id(self) -> str:
        return self.edge_id or f"edge-{self.plant}"

    @property
    def resolved_buffer_dir(self) -> Path:
        return self.buffer_dir or Path(f"edge-buffer-{self.resolved_edge_id}")
