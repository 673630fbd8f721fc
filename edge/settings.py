"""The edge agent's one settings object (env prefix ``EDGE_``, nested with ``__``; ``.env`` or a
secrets folder)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from common.broker_link import BrokerLinkSettings, renamed_link_settings
from common.durations import Duration
from common.endpoints import check_source_endpoint, parse_broker_url
from common.limits import DEVICE_PAYLOAD_MAX_BYTES, FUTURE_TOLERANCE_S, STRING_MAX_CHARS
from common.mqtt_tls import LinkSecurity
from common.register import ON_CHANGE_MAX_HOLD, PERIODIC_HOLD_FACTOR
from common.settings_env import ServiceSettings
from common.topics import DEFAULT_PREFIX
from edge.buffer.segments import FsyncPolicy
from edge.buffer.store import BufferConfig
from edge.sources.opcua.connection import ConnectionOptions


# Defaults of the buffer and of OPC UA connections are theirs (``BufferConfig``,
# ``ConnectionOptions``): a setting only names them for the environment.
class EdgeSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="EDGE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        secrets_dir=None,
        # Errors must not echo their input: it holds passwords.
        hide_input_in_errors=True,
    )

    register_file: Path
    """The enterprise register (YAML)."""
    plant: str
    """Which plant of the register this agent serves."""
    edge_id: str = ""
    """Defaults to ``edge-<plant>``."""
    uplink: BrokerLinkSettings = Field(default_factory=BrokerLinkSettings)
    """The central broker the collector listens on: ``EDGE_UPLINK__URL`` (``mqtts://`` for
    TLS), ``…__USERNAME`` (the default ACL, ``plantkpi-collector acl``, expects the edge
    id), ``…__PASSWORD`` / ``…__PASSWORD_FILE``, ``…__CA_FILE``, ``…__CERT_FILE``,
    ``…__KEY_FILE``, ``…__CLIENT_ID`` (default ``plantkpi-<edge id>``;
    common/broker_link.py)."""
    topic_prefix: str = DEFAULT_PREFIX
    endpoints: dict[str, str] = Field(default_factory=dict)
    """Override source endpoints by source id (JSON in env: ``{"line1": "opc.tcp://...",
    "press-plc": "modbus://10.0.0.7:502"}``); each is checked by its source's protocol."""
    brokers: dict[str, str] = Field(default_factory=dict)
    """Override device broker URLs by source id."""
    broker_passwords: dict[str, SecretStr] = Field(default_factory=dict)
    """Device broker passwords by source id (``{"devices": "..."}``); the register names only
    the username. Never logged or reported."""
    broker_password_files: dict[str, Path] = Field(default_factory=dict)
    """Or files holding them, by source id (Docker/Kubernetes secrets); read at start-up."""
    opcua_passwords: dict[str, SecretStr] = Field(default_factory=dict)
    """OPC UA user passwords by source id, for sources whose register ``security.identity``
    is ``username``. Never logged or reported."""
    opcua_password_files: dict[str, Path] = Field(default_factory=dict)
    """Or files holding them, by source id (Docker/Kubernetes secrets); read at start-up."""
    opcua_pki_dir: Path | None = None
    """The OPC UA PKI folder: own/ (the edge's application certificate, made on first start),
    trusted/ (server certificates we trust), rejected/; default ``./edge-pki-<edge id>``."""
    opcua_trust_unknown_servers: bool = False
    """Trust on first use: an unknown server certificate is copied into trusted/ (logged)
    instead of refused. Off by default: a server is trusted only by putting its certificate
    in trusted/."""
    batch_max_samples: int = Field(5000, ge=1, le=100_000)
    batch_max_bytes: int = Field(4 * 1024**2, ge=64 * 1024, le=16 * 1024**2)
    """Larger encoded batches are split (the collector refuses more than its
    ``COLLECTOR_LIMITS__PAYLOAD_BYTES``, 16 MiB by default)."""
    flush_interval: Duration = 0.2
    """How long samples may wait for a batch to fill before it is sent: the edge's share of
    the end-to-end latency (a full batch goes at once). 0.5 s put p99 at 1.4 s at 10,000
    samples/s, 0.2 s at 0.7 s (docs/benchmarks.md, "Device path latency"); longer means
    fewer, larger uplink messages."""
    heartbeat_interval: Duration = Field(2.0, gt=0.0, le=60.0)
    """With nothing to send for this long, an empty batch carries the edge's watermark
    (everything acquired until now is delivered). Keep it under the collector's
    ``COLLECTOR_KPI__LAG``, or a quiet plant's windows are provisional until it comes."""
    buffer_max_samples: int = Field(BufferConfig.max_samples, ge=1000)
    """Samples held while the uplink is down; the oldest are dropped (and counted) beyond it."""
    buffer_dir: Path | None = None
    """Where the store-and-forward log lives; default ``./edge-buffer-<edge id>``."""
    buffer_max_bytes: int = Field(BufferConfig.max_bytes, ge=1024**2)
    """Bytes on disk the buffer may use; the oldest segment is dropped (and counted) beyond it."""
    buffer_segment_bytes: int = Field(BufferConfig.segment_bytes, ge=4096)
    """Size of one log file: the unit in which a full buffer drops its oldest data."""
    buffer_fsync: FsyncPolicy = BufferConfig.fsync
    """``batch``: fsync every group commit; ``interval``: at most every ``buffer_fsync_interval``;
    ``never``: leave it to the OS. All three survive a crash of the agent (see
    docs/store-and-forward.md for power loss)."""
    buffer_fsync_interval: Duration = BufferConfig.fsync_interval
    buffer_commit_interval: Duration = Field(BufferConfig.commit_interval, le=5.0)
    """Group commit: how often received samples are written to the buffer's disk."""
    buffer_commit_items: int = Field(BufferConfig.commit_items, ge=1)
    """Group commit as soon as this many samples (or device acknowledgements) wait."""
    reconnect_max_delay: Duration = ConnectionOptions.reconnect_max_delay
    opcua_timeout: Duration = ConnectionOptions.timeout
    opcua_watchdog: Duration = ConnectionOptions.watchdog
    """A subscription silent for this long (plus its keep-alive) is rebuilt."""
    monitored_items_per_call: int = Field(ConnectionOptions.items_per_call, ge=1)
    nodes_per_read: int = Field(ConnectionOptions.nodes_per_read, ge=1)
    status_interval: Duration = 10.0
    """How often a health report is published (and logged)."""
    signal_hold_factor: float = Field(PERIODIC_HOLD_FACTOR, gt=0.0)
    """A periodic signal with no valid sample for this many intervals while its source is
    up is a problem in the health report (keep it equal to the KPI's periodic_hold_factor)."""
    signal_on_change_hold: Duration = ON_CHANGE_MAX_HOLD
    """And an on-change signal after this long (the KPI's on_change_max_hold)."""
    device_payload_max_bytes: int = Field(DEVICE_PAYLOAD_MAX_BYTES, ge=64)
    """A device MQTT message larger than this is rejected unread (docs/hostile-input.md)."""
    device_string_max_chars: int = Field(STRING_MAX_CHARS, ge=1)
    """A longer string value is rejected, not cut."""
    device_future_tolerance: Duration = FUTURE_TOLERANCE_S
    """A device timestamp further ahead of the receive time is rejected (clock skew)."""
    health_enabled: bool = True
    """Serve ``/live``, ``/health`` and ``/metrics`` over HTTP on the edge host."""
    health_host: str = "127.0.0.1"
    """Loopback by default: the report names equipment and endpoints; open it deliberately."""
    health_port: int = Field(8081, ge=0, le=65535)
    """0 lets the OS choose (the log line says which)."""

    RENAMED_SETTINGS: ClassVar[dict[str, str]] = renamed_link_settings(
        "EDGE_UPLINK_", "EDGE_UPLINK__", url="EDGE_UPLINK_BROKER"
    )
    """Names the uplink's settings had before they were one model (still read)."""

    @field_validator("endpoints")
    @classmethod
    def _endpoint_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for url in value.values():
            check_source_endpoint(url)
        return value

    @field_validator("brokers")
    @classmethod
    def _device_broker_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for url in value.values():
            parse_broker_url(url)
        return value

    def broker_password(self, source_id: str) -> SecretStr | None:
        """The password for a device broker source, from the env or its file."""
        return _source_secret(
            source_id, self.broker_passwords, self.broker_password_files, "BROKER", "broker"
        )

    def opcua_password(self, source_id: str) -> SecretStr | None:
        """The OPC UA user password of a source, from the env or its file."""
        return _source_secret(
            source_id, self.opcua_passwords, self.opcua_password_files, "OPCUA", "OPC UA"
        )

    @property
    def resolved_opcua_pki_dir(self) -> Path:
        return self.opcua_pki_dir or Path(f"edge-pki-{self.resolved_edge_id}")

    def uplink_security(self) -> LinkSecurity:
        """Login and TLS for the uplink; raises ValueError naming the setting at fault."""
        return self.uplink.security("EDGE_UPLINK__")

    @property
    def uplink_client_id(self) -> str:
        return self.uplink.client_id or f"plantkpi-{self.resolved_edge_id}"

    @property
    def resolved_edge_id(self) -> str:
        return self.edge_id or f"edge-{self.plant}"

    @property
    def resolved_buffer_dir(self) -> Path:
        return self.buffer_dir or Path(f"edge-buffer-{self.resolved_edge_id}")


def check_buffer_dir(directory: Path) -> Path:
    """``directory`` if the store-and-forward buffer can live there. A file at its path, or
    at a folder's above it, cannot be made a directory: said here in one line naming the
    setting, before the buffer's own open turns it into an OS error."""
    for path in (directory, *directory.parents):
        if path.exists() and not path.is_dir():
            where = "" if path == directory else f"{directory}: "
            raise ValueError(f"EDGE_BUFFER_DIR {where}{path} is a file, not a directory")
    return directory


def _source_secret(
    source_id: str,
    values: dict[str, SecretStr],
    files: dict[str, Path],
    setting: str,
    what: str,
) -> SecretStr | None:
    """A per-source password from ``EDGE_<setting>_PASSWORDS`` or ``…_PASSWORD_FILES``."""
    if source_id in values and source_id in files:
        raise ValueError(
            f"source {source_id}: password given both in EDGE_{setting}_PASSWORDS and "
            f"EDGE_{setting}_PASSWORD_FILES; keep one"
        )
    path = files.get(source_id)
    if path is None:
        return values.get(source_id)
    try:
        # One trailing newline is what `echo secret > file` adds, not part of the secret.
        return SecretStr(path.read_text(encoding="utf-8").removesuffix("\n"))
    except OSError as exc:
        raise ValueError(
            f"source {source_id}: cannot read {what} password file {path}: {exc.strerror}"
        ) from None
