"""The edge agent's one settings object (env prefix ``EDGE_``, ``.env`` or a secrets folder)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
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
    batch_max_samples: int = Field(5000, ge=1, le=100_000)
    flush_interval: Duration = 0.5
    """How long samples may wait before a batch is sent (latency vs. messages/s)."""
    buffer_max_samples: int = Field(2_000_000, ge=1000)
    """Samples held while the uplink is down; the oldest are dropped (and counted) beyond it."""
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

    @property
    def resolved_edge_id(self) -> str:
        return self.edge_id or f"edge-{self.plant}"
