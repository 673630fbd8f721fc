"""The register (plant model): enterprise → plants → lines → processes → signals.

One YAML file per enterprise, validated strictly: unknown keys are errors, every reference
is checked, and a bad file fails at start-up with the file, line, field path and reason
(see ``common.register_loader``).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from common.browse_paths import parse_browse_path
from common.durations import Duration
from common.endpoints import check_opcua_endpoint
from common.topic_patterns import TopicPattern, filters_overlap

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# ns=<index>;<type>=<id> or nsu=<uri>;<type>=<id> or a bare <type>=<id> (namespace 0).
_NODE_ID = re.compile(r"^(?:(?:ns=\d+|nsu=[^;]+);)?[isgb]=.+$", re.DOTALL)
_MQTT_WILDCARD = re.compile(r"[+#]")


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{value!r} is not a valid id: use letters, digits, '_', '-', '.', "
            "start with a letter or digit, at most 64 characters "
            "(ids become MQTT topic levels and InfluxDB tags)"
        )
    return value


Id = Annotated[str, AfterValidator(_check_id)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndustryType(StrEnum):
    DISCRETE = "discrete"
    PROCESS = "process"


class SignalRole(StrEnum):
    STATE = "state"
    """Machine state (running/idle/fault/...): proves the process is under digital control."""
    MODE = "mode"
    """Control mode (auto/manual); used by rule R6."""
    PARAMETER = "parameter"
    """A key process parameter (spindle speed, temperature, ...)."""


class UpdateKind(StrEnum):
    PERIODIC = "periodic"
    """A new sample arrives every expected interval (polled, or published on a timer)."""
    ON_CHANGE = "on_change"
    """Reported by exception: may stay silent while the value is unchanged."""


MANUAL = "manual"


class AnonymousIdentity(Strict):
    type: Literal["anonymous"]


class UsernameIdentity(Strict):
    """The password comes from the edge settings (``EDGE_OPCUA_PASSWORDS`` or
    ``EDGE_OPCUA_PASSWORD_FILES`` by source id), never from the register."""

    type: Literal["username"]
    username: str = Field(min_length=1)


class CertificateIdentity(Strict):
    """A user certificate (X509IdentityToken). Relative paths are relative to the register."""

    type: Literal["certificate"]
    cert_file: Path
    """The user certificate, DER or PEM."""
    key_file: Path
    """Its private key, PEM or DER, unencrypted."""


OpcUaIdentity = Annotated[
    AnonymousIdentity | UsernameIdentity | CertificateIdentity, Field(discriminator="type")
]


class OpcUaSecurity(Strict):
    """How the edge secures its session: the channel (policy + mode) and who it logs in as."""

    policy: Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
    mode: Literal["None", "Sign", "SignAndEncrypt"]
    identity: OpcUaIdentity = AnonymousIdentity(type="anonymous")

    @model_validator(mode="after")
    def _policy_matches_mode(self) -> OpcUaSecurity:
        if (self.policy == "None") != (self.mode == "None"):
            raise ValueError(
                f"policy {self.policy} with mode {self.mode}: policy None goes only with mode "
                "None, and a real policy needs mode Sign or SignAndEncrypt"
            )
        return self


_SECURITY_MISSING = (
    "'security' is required on an OPC UA source: write "
    "security: {policy: Basic256Sha256, mode: SignAndEncrypt} (recommended; also "
    "Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss, mode Sign), or, for a server without "
    "security only, security: {policy: None, mode: None} (unencrypted, unauthenticated; the "
    "edge warns at every start)"
)


class OpcUaSource(Strict):
    id: Id
    kind: Literal["opcua"]
    endpoint: Annotated[str, AfterValidator(check_opcua_endpoint)]
    security: OpcUaSecurity
    """Required: an unsecured connection must be asked for explicitly (policy None)."""
    mode: Literal["subscribe", "poll"] = "subscribe"
    """``poll`` reads all nodes every ``poll_interval`` for servers without subscriptions."""
    poll_interval: Duration = 1.0
    publishing_interval: Duration = 0.5
    max_nodes_per_connection: int = Field(3000, ge=1)
    """Above this many nodes the edge opens several connections (sessions) to the server,
    each with its own subscription (pure-Python asyncua handles ~3,000 tags at 1 s each)."""

    @model_validator(mode="before")
    @classmethod
    def _security_written(cls, data: object) -> object:
        if isinstance(data, dict) and "security" not in data:
            raise ValueError(_SECURITY_MISSING)
        return data


class MqttTls(Strict):
    """TLS to a device broker (``mqtts://``). Relative paths are relative to the register file."""

    ca_file: Path | None = None
    """PEM CA certificate(s) the broker's certificate must chain to; absent → the system CAs."""
    cert_file: Path | None = None
    """PEM client certificate, for brokers that require one."""
    key_file: Path | None = None
    """PEM private key of ``cert_file`` (absent when ``cert_file`` holds the key too)."""

    @model_validator(mode="after")
    def _key_needs_cert(self) -> MqttTls:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("tls.key_file given without tls.cert_file")
        return self


class MqttSubscription(Strict):
    """A wildcard topic whose levels name the signal (and the process) a message is for."""

    pattern: str
    """E.g. ``plant/+/{process}/{signal}``: ``+``/``#`` as in MQTT, named levels give ids."""
    process: str | None = None
    """The process of every signal matched, when the pattern has no ``{process}`` level."""

    @model_validator(mode="after")
    def _pattern_is_valid(self) -> MqttSubscription:
        pattern = TopicPattern.parse(self.pattern)
        if "process" in pattern.names and self.process is not None:
            raise ValueError(f"pattern {self.pattern!r} has a {{process}} level: drop 'process'")
        if "process" not in pattern.names and self.process is None:
            raise ValueError(
                f"pattern {self.pattern!r} has no {{process}} level: give 'process' "
                "(the process id its signals belong to)"
            )
        return self


def _check_sparkplug_id(value: str) -> str:
    if not value or any(c in value for c in "/+#"):
        raise ValueError(
            f"{value!r} is not a Sparkplug id: non-empty, without '/', '+' or '#' "
            "(it is one topic level)"
        )
    return value


SparkplugId = Annotated[str, AfterValidator(_check_sparkplug_id)]
SPARKPLUG_NAMESPACE = "spBv1.0"


class SparkplugGroup(Strict):
    """The Sparkplug B group an MQTT source reads (topics ``spBv1.0/<group_id>/...``)."""

    group_id: SparkplugId
    request_rebirth: bool = True
    """Let the edge publish NCMD ``Node Control/Rebirth`` to a node whose data it cannot
    read (sequence gap, data before birth — e.g. after the edge or its broker connection
    restarted —, unknown alias), as Sparkplug host applications do. Off: it only logs and
    counts, and a node that stays up is not read until it rebirths on its own (the edge
    then needs no write right on the device broker)."""
    primary_host_id: SparkplugId | None = None
    """Act as this Sparkplug 3.0 primary host application: publish the retained STATE
    ``spBv1.0/STATE/<id>`` (online at each connect, offline as MQTT will and at a clean
    stop), which edge nodes configured with this Primary Host ID wait for before their
    births. Needs write (and retain) rights on that topic."""


class SparkplugMetric(Strict):
    """A signal read from a Sparkplug B metric of the source's group."""

    node: SparkplugId
    """The edge node id."""
    device: SparkplugId | None = None
    """The device id; absent for a metric of the edge node itself (NBIRTH/NDATA)."""
    metric: str = Field(min_length=1)
    """The metric name as in the birth certificate, e.g. ``Inputs/Temperature``."""


class MqttSource(Strict):
    id: Id
    kind: Literal["mqtt"]
    broker: str = Field(pattern=r"^mqtts?://[^/:]+(:\d+)?/?$")
    """The plant's device broker, ``mqtt://host:port`` or ``mqtts://host:port`` (TLS)."""
    qos: Literal[0, 1, 2] = 1
    username: str | None = None
    """Login name; the password comes from the edge settings, never from the register."""
    tls: MqttTls | None = None
    persistent_session: bool = False
    """MQTT 5 session kept by the broker while the edge is away (clean start off), with
    each message acknowledged only once its samples are on the edge's disk. Default: on
    for QoS 1 and 2 (what an edge restart must not lose), off for QoS 0 and for a
    Sparkplug primary host (which connects clean)."""
    session_expiry: Duration = 3600.0
    """How long the broker keeps a persistent session (and queues QoS ≥ 1 messages)."""
    subscriptions: tuple[MqttSubscription, ...] = ()
    """Wildcard topics binding this source's signals that have no ``topic`` of their own."""
    sparkplug: SparkplugGroup | None = None
    """Read Sparkplug B: signals of this source then name a ``sparkplug`` metric."""

    @model_validator(mode="before")
    @classmethod
    def _reliable_by_default(cls, data: Any) -> Any:
        # Without a persistent session, what a device publishes while the edge restarts is
        # lost: a kill -9 of the edge lost 476 of 3,200 samples with the old default (off).
        if isinstance(data, dict) and "persistent_session" not in data:
            sparkplug = data.get("sparkplug")
            primary_host = isinstance(sparkplug, dict) and sparkplug.get("primary_host_id")
            qos = data.get("qos", 1)
            return {**data, "persistent_session": qos in (1, 2) and not primary_host}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> MqttSource:
        if self.tls is not None and not self.broker.startswith("mqtts://"):
            raise ValueError(f"tls given but broker {self.broker!r} is not mqtts://")
        if self.persistent_session and self.qos == 0:
            raise ValueError(
                "persistent_session needs qos 1 or 2 (brokers do not queue QoS 0 messages)"
            )
        if self.persistent_session and self.sparkplug and self.sparkplug.primary_host_id:
            raise ValueError(
                "sparkplug.primary_host_id needs persistent_session off: a Sparkplug host "
                "application connects with a clean session (Sparkplug 3.0)"
            )
        filters = [TopicPattern.parse(s.pattern).filter for s in self.subscriptions]
        if self.sparkplug is not None:
            group = f"{SPARKPLUG_NAMESPACE}/{self.sparkplug.group_id}/#"
            for first in filters:
                if filters_overlap(first, group):
                    raise ValueError(
                        f"subscription {first!r} overlaps the Sparkplug group's topics "
                        f"{group!r}: those are read as Sparkplug B, not JSON"
                    )
        for i, first in enumerate(filters):
            for second in filters[i + 1 :]:
                if filters_overlap(first, second):
                    raise ValueError(
                        f"subscriptions {first!r} and {second!r} overlap: a topic matching "
                        "both would be read twice; make them disjoint"
                    )
        return self


Source = Annotated[OpcUaSource | MqttSource, Field(discriminator="kind")]


class Deadband(Strict):
    """OPC UA data-change deadband: changes smaller than this are not reported."""

    type: Literal["absolute", "percent"]
    """``absolute``: in the value's unit; ``percent``: of the node's EURange (analog items)."""
    value: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _percent_in_range(self) -> Deadband:
        if self.type == "percent" and self.value > 100.0:
            raise ValueError(f"a percent deadband is 0..100, got {self.value}")
        return self


class Signal(Strict):
    id: Id
    role: SignalRole
    key: bool = True
    """For parameters: whether it is a key parameter the KPI requires."""
    source: str | None = None
    """A source id of this plant, ``manual`` for values typed in by people, or absent (unbound)."""
    node: str | None = None
    """OPC UA node id: ``ns=2;s=...``, or ``nsu=<namespace uri>;s=...`` resolved at connect."""
    browse_path: str | None = None
    """OPC UA, instead of ``node``: ``/Objects/{urn:vendor}Line1/Press/Temperature``
    (``common.browse_paths``), resolved at every connect."""
    topic: str | None = None
    """MQTT topic the device publishes on (no wildcards; see the source's ``subscriptions``)."""
    sparkplug: SparkplugMetric | None = None
    """The Sparkplug B metric this signal is read from (the source needs ``sparkplug``)."""
    path: str = "value"
    """Dotted path to the value in the JSON payload; ``.`` for a plain payload."""
    timestamp_path: str | None = "ts"
    """Dotted path to the source timestamp (ms since epoch, or ISO 8601)."""
    quality_path: str | None = "quality"
    """Dotted path to the quality (``good``/``uncertain``/``bad``/``override`` or a status code)."""
    interval: Duration = 1.0
    """Expected sampling interval."""
    update: UpdateKind = UpdateKind.PERIODIC
    deadband: Deadband | None = None
    """OPC UA only: report a change only beyond this deadband."""
    queue_size: int | None = Field(default=None, ge=1, le=100_000)
    """OPC UA only: monitored-item queue size (default: room for 20 publishing cycles)."""
    unit: str | None = None
    value_type: Literal["number", "boolean", "string"] | None = None
    """MQTT: the kind of value the signal carries; a message with another kind (a string
    on a numeric parameter) is rejected with a reason instead of stored. Unset: any."""
    manual_values: tuple[str | int | bool, ...] = ("MANUAL",)
    """For a ``mode`` signal: the values that mean manual control."""

    @model_validator(mode="after")
    def _binding_is_complete(self) -> Signal:
        if self.node is not None and not _NODE_ID.match(self.node):
            raise ValueError(
                f"node {self.node!r} is not an OPC UA node id "
                "(ns=2;s=Name, nsu=urn:...;s=Name, ns=3;i=1001)"
            )
        if self.browse_path is not None:
            if self.node is not None:
                raise ValueError("give either 'node' or 'browse_path', not both")
            parse_browse_path(self.browse_path)  # BrowsePathError is a ValueError
        if self.topic is not None and (not self.topic or _MQTT_WILDCARD.search(self.topic)):
            raise ValueError(f"topic {self.topic!r} must be a concrete topic without + or #")
        if self.source == MANUAL and (self.node or self.topic or self.browse_path):
            raise ValueError("a manual signal has no node or topic")
        if self.source is None and (self.node or self.topic or self.browse_path):
            raise ValueError("node/topic given but no source: name the source it is read from")
        if self.sparkplug is not None and (
            self.topic or self.node or self.browse_path or not self.is_automated
        ):
            raise ValueError(
                "sparkplug given with a topic, a node, or no automated source: a Sparkplug "
                "signal names only its source and its sparkplug metric"
            )
        return self

    @property
    def is_automated(self) -> bool:
        return self.source not in (None, MANUAL)


class Downtime(Strict):
    """A planned downtime window: the line is not scheduled from start to end."""

    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Downtime:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("downtime start and end need a time zone (e.g. 2026-11-28T08:00:00Z)")
        if self.end <= self.start:
            raise ValueError("downtime end must be after its start")
        return self


class Process(Strict):
    id: Id
    name: str
    key: bool
    industry: IndustryType
    equipment: str = ""
    signals: tuple[Signal, ...] = ()

    @model_validator(mode="after")
    def _unique_signals(self) -> Process:
        _require_unique("signal", [s.id for s in self.signals])
        return self

    def signals_with_role(self, role: SignalRole) -> tuple[Signal, ...]:
        return tuple(s for s in self.signals if s.role is role)


class Line(Strict):
    id: Id
    name: str = ""
    downtime: tuple[Downtime, ...] = ()
    processes: tuple[Process, ...] = ()


class Plant(Strict):
    id: Id
    name: str = ""
    sources: tuple[Source, ...] = ()
    lines: tuple[Line, ...] = ()

    @model_validator(mode="after")
    def _references_resolve(self) -> Plant:
        _require_unique("source", [s.id for s in self.sources])
        _require_unique("line", [line.id for line in self.lines])
        by_id = {s.id: s for s in self.sources}
        processes = {p.id for line in self.lines for p in line.processes}
        for source in self.sources:
            subscriptions = source.subscriptions if isinstance(source, MqttSource) else ()
            for number, sub in enumerate(subscriptions):
                if sub.process is not None and sub.process not in processes:
                    raise ValueError(
                        f"source {source.id}, subscriptions[{number}]: process "
                        f"{sub.process!r} is not a process of plant {self.id}"
                    )
        for line in self.lines:
            for process in line.processes:
                for signal in process.signals:
                    _check_binding(self.id, line.id, process.id, signal, by_id)
        return self

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)


def _check_binding(
    plant: str, line: str, process: str, signal: Signal, sources: dict[str, Source]
) -> None:
    where = f"plant {plant}, line {line}, process {process}, signal {signal.id}"
    if not signal.is_automated:
        return
    assert signal.source is not None
    source = sources.get(signal.source)
    if source is None:
        raise ValueError(
            f"{where}: source {signal.source!r} is not declared in this plant's sources "
            f"(declared: {sorted(sources) or 'none'}; or use 'manual')"
        )
    if signal.sparkplug is not None and (
        not isinstance(source, MqttSource) or source.sparkplug is None
    ):
        raise ValueError(
            f"{where}: 'sparkplug' given but source {source.id!r} is not an MQTT source with "
            "'sparkplug: {group_id: ...}'"
        )
    if isinstance(source, OpcUaSource) and signal.node is None and signal.browse_path is None:
        raise ValueError(f"{where}: OPC UA source {source.id!r} needs a 'node' or 'browse_path'")
    if (
        isinstance(source, MqttSource)
        and source.sparkplug is not None
        and signal.topic is not None
        and signal.topic.startswith(f"{SPARKPLUG_NAMESPACE}/{source.sparkplug.group_id}/")
    ):
        raise ValueError(
            f"{where}: topic {signal.topic!r} is in the source's Sparkplug group: bind it "
            "with 'sparkplug: {node, device, metric}' instead"
        )
    if (
        isinstance(source, MqttSource)
        and signal.topic is None
        and signal.sparkplug is None
        and not any(s.process in (None, process) for s in source.subscriptions)
    ):
        raise ValueError(
            f"{where}: MQTT source {source.id!r} needs a 'topic', or a subscription of the "
            "source whose pattern has {process} or whose 'process' is this one"
        )
    if isinstance(source, OpcUaSource) and signal.topic is not None:
        raise ValueError(f"{where}: 'topic' given for OPC UA source {source.id!r}")
    if isinstance(source, MqttSource) and (
        signal.deadband is not None or signal.queue_size is not None
    ):
        raise ValueError(f"{where}: deadband/queue_size apply to OPC UA signals only")
    if isinstance(source, MqttSource) and signal.node is not None:
        raise ValueError(f"{where}: 'node' given for MQTT source {source.id!r}")
    if isinstance(source, MqttSource) and signal.browse_path is not None:
        raise ValueError(f"{where}: 'browse_path' given for MQTT source {source.id!r}")


class Enterprise(Strict):
    id: Id
    name: str = ""
    region: str
    above_designated_size: bool
    declared_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    """The rate declared in the enterprise's self-assessment, shown beside the measured one."""


class Register(Strict):
    version: str | None = None
    """Declared version; when absent the content digest is the version."""
    enterprise: Enterprise
    plants: tuple[Plant, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> Register:
        _require_unique("plant", [p.id for p in self.plants])
        _require_unique(
            "process", [proc.id for p in self.plants for ln in p.lines for proc in ln.processes]
        )
        return self


def _require_unique(kind: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"duplicate {kind} id {item!r}")
        seen.add(item)
