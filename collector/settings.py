"""The collector's one settings object (env prefix ``COLLECTOR_``; nested with ``__``).

Example: ``COLLECTOR_REGISTERS='["plant.yaml"]' COLLECTOR_INFLUX__URL=http://influx:8086
COLLECTOR_BROKER__URL=mqtts://broker:8883``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from collector.kpi.sharding import Shard, replica_from_hostname
from collector.kpi.thresholds import Thresholds
from collector.storage.settings import InfluxSettings
from common.broker_link import BrokerLinkSettings, renamed_link_settings
from common.durations import Duration
from common.limits import UplinkLimits
from common.mqtt_tls import LinkSecurity
from common.settings_env import ServiceSettings
from common.topics import DEFAULT_PREFIX


class KpiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window: Duration = 3600.0
    """Length of the evaluation window (KPI.md default: the last hour)."""
    period: Duration = 60.0
    """How often the window is evaluated (default: every minute)."""
    lag: Duration = 10.0
    """The window ends this long before now, so samples still in flight are counted."""
    correction_horizon: Duration = Field(86400.0, gt=0.0)
    """How far back a window evaluated before its plant's data had all arrived (an uplink
    gap the edge buffered) is re-evaluated and its stored result corrected once the backlog
    has arrived; older ones keep what was stored."""
    corrections_per_period: int = Field(10, ge=1, le=1000)
    """At most this many such windows are re-evaluated per period (the rest wait)."""
    replicas: int = Field(1, ge=1, le=1000)
    """Collectors sharing the KPI (docs/scaling.md): each enterprise is evaluated by one of
    them, and a dead one's share is taken over within a few periods. 1: this one does all."""
    replica: int | None = Field(None, ge=0)
    """This collector's ordinal among ``replicas`` (default: from a StatefulSet pod's host
    name, ``…-<ordinal>``)."""
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @model_validator(mode="after")
    def _replica_known(self) -> KpiSettings:
        if self.replicas > 1:
            self.shard()  # fails at start-up, naming what to set
        return self

    def shard(self) -> Shard | None:
        """This collector's share of the KPI; None when it evaluates everything."""
        if self.replicas == 1:
            return None
        replica = replica_from_hostname() if self.replica is None else self.replica
        return Shard(replica, self.replicas)


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tokens: list[SecretStr] = Field(default_factory=list)
    """Read-only bearer tokens (``COLLECTOR_API__TOKENS='["…"]'``). When any is set, every
    ``/api/*`` route needs ``Authorization: Bearer <token>``; /health, /ready, /metrics stay
    open (probes and scrapers carry no secrets; they reveal no plant data but edge/KPI counts)."""
    shift_start: str = Field("00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """UTC time of day (HH:MM) the first shift, and the production day, start."""
    shift_length: Duration = 8 * 3600.0
    """Length of one shift; must divide 24 h (default: 3 shifts of 8 h)."""
    max_recompute: Duration = 86400.0
    """Longest window one recomputation (/recompute, one /report window) may cover."""
    max_range: Duration = 31 * 86400.0
    """Longest time range of /history, /report and the CSV exports."""
    report_max_windows: int = Field(100, ge=1, le=10_000)
    """How many windows one /report request may compute (each reads raw samples)."""
    report_doc_max_range: Duration = 366 * 86400.0
    """Longest period of one /report-doc (the report an enterprise sends upward): a year,
    leap years included. It reads only stored results, summed by InfluxDB."""

    @field_validator("shift_length")
    @classmethod
    def _divides_day(cls, value: float) -> float:
        if value < 60 or 86400 % value:
            raise ValueError(f"shift_length {value:g}s must divide 24h (e.g. 8h, 12h)")
        return value

    @property
    def shift_start_s(self) -> int:
        hours, minutes = self.shift_start.split(":")
        return int(hours) * 3600 + int(minutes) * 60


class CollectorSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="COLLECTOR_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        # Errors must not echo their input: it holds tokens and passwords.
        hide_input_in_errors=True,
    )

    registers: list[Path]
    """Register files, one per enterprise."""
    broker: BrokerLinkSettings = Field(default_factory=BrokerLinkSettings)
    """The central broker: ``COLLECTOR_BROKER__URL`` (``mqtts://`` for TLS),
    ``…__USERNAME``, ``…__PASSWORD`` / ``…__PASSWORD_FILE``, ``…__CA_FILE``,
    ``…__CERT_FILE``, ``…__KEY_FILE``, ``…__CLIENT_ID`` (common/broker_link.py)."""
    topic_prefix: str = DEFAULT_PREFIX
    session_expiry: int = Field(3600, ge=0)
    receive_maximum: int = Field(8, ge=1, le=1000)
    """Uplink batches the broker may send before the collector acknowledged one (MQTT 5
    Receive Maximum; a batch is acknowledged once written). Bounds what a backlog costs in
    memory: without it the broker sends a whole backlog at once (up to 65,535 batches).
    Also the messages held unhandled before the consumer stops reading a broker that sends
    more than it should (``collector/ingest/intake.py``)."""
    broker_silence_warning: Duration = 120.0
    """Warn when nothing at all arrives this long after subscribing (edges send health every
    few seconds): no edge publishes, or the broker's ACL does not let the collector read."""
    share_group: str = Field("", pattern=r"^[A-Za-z0-9_-]*$")
    """Set the same group on several collectors to split the uplink between them (MQTT 5
    shared subscription); each needs its own ``COLLECTOR_BROKER__CLIENT_ID``."""
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    write_batch_lines: int = Field(5000, ge=1, le=50_000)
    limits: UplinkLimits = Field(default_factory=UplinkLimits)
    """What an edge may send (``COLLECTOR_LIMITS__PAYLOAD_BYTES`` ...; docs/hostile-input.md)."""

    RENAMED_SETTINGS: ClassVar[dict[str, str]] = renamed_link_settings(
        "COLLECTOR_BROKER_",
        "COLLECTOR_BROKER__",
        url="COLLECTOR_BROKER",
        client_id="COLLECTOR_CLIENT_ID",
    )
    """Names the broker link's settings had before they were one model (still read)."""

    @property
    def client_id(self) -> str:
        """Stable: the broker keeps this client's session (and queued batches) across
        restarts."""
        return self.broker.client_id or "plantkpi-collector"

    def broker_security(self) -> LinkSecurity:
        """Login and TLS for the broker; raises ValueError naming the setting at fault."""
        return self.broker.security("COLLECTOR_BROKER__")

    @field_validator("registers")
    @classmethod
    def _at_least_one(cls, value: list[Path]) -> list[Path]:
        if not value:
            raise ValueError("name at least one register file")
        return value
