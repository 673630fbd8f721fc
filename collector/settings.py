"""The collector's one settings object (env prefix ``COLLECTOR_``; nested with ``__``).

Example: ``COLLECTOR_REGISTERS='["plant.yaml"]' COLLECTOR_INFLUX__URL=http://influx:8086``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from collector.kpi.thresholds import Thresholds
from collector.storage.settings import InfluxSettings
from common.durations import Duration
from common.endpoints import parse_broker_url
from common.topics import DEFAULT_PREFIX


class KpiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window: Duration = 3600.0
    """Length of the evaluation window (KPI.md default: the last hour)."""
    period: Duration = 60.0
    """How often the window is evaluated (default: every minute)."""
    lag: Duration = 10.0
    """The window ends this long before now, so samples still in flight are counted."""
    thresholds: Thresholds = Field(default_factory=Thresholds)


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COLLECTOR_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    registers: list[Path]
    """Register files, one per enterprise."""
    broker: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = DEFAULT_PREFIX
    client_id: str = "plantkpi-collector"
    """Stable: the broker keeps this client's session (and queued batches) across restarts."""
    session_expiry: int = Field(3600, ge=0)
    share_group: str = Field("", pattern=r"^[A-Za-z0-9_-]*$")
    """Set the same group on several collectors to split the uplink between them (MQTT 5
    shared subscription); each needs its own ``client_id``."""
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    write_batch_lines: int = Field(5000, ge=1, le=50_000)

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @field_validator("registers")
    @classmethod
    def _at_least_one(cls, value: list[Path]) -> list[Path]:
        if not value:
            raise ValueError("name at least one register file")
        return value
