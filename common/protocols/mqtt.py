"""MQTT in the register: a plant's device broker (``kind: mqtt``, JSON payloads or Sparkplug
B) and a signal's topic, payload paths or Sparkplug metric.

The edge's reader: ``edge/sources/mqtt/`` (README: payloads, wildcards, Sparkplug).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from common.durations import Duration
from common.register_base import Protocol, SignalBinding, SourceConfig, Strict
from common.topic_patterns import TopicPattern, filters_overlap

_MQTT_WILDCARD = re.compile(r"[+#]")


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


class MqttSignalBinding(SignalBinding):
    kind: Literal["mqtt"] = "mqtt"
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
    value_type: Literal["number", "boolean", "string"] | None = None
    """The kind of value the signal carries; a message with another kind (a string on a
    numeric parameter) is rejected with a reason instead of stored. Unset: any."""
    select: dict[str, str | int | bool] | None = None
    """For a topic that carries several signals, one message each naming its signal
    (``{"signal": "spindle", "value": 1200}``): the payload fields (dotted paths) a message
    must have, with these values, to be this signal's (``select: {signal: spindle}``).
    Messages of the topic that no signal selects are rejected. (Several signals in one
    message need no ``select``: bind each to the topic with its own ``path``.)"""

    @model_validator(mode="after")
    def _one_address(self) -> MqttSignalBinding:
        if self.topic is not None and (not self.topic or _MQTT_WILDCARD.search(self.topic)):
            raise ValueError(f"topic {self.topic!r} must be a concrete topic without + or #")
        if self.select is not None and (self.topic is None or not self.select):
            raise ValueError("select needs a topic and at least one payload field")
        if self.sparkplug is not None and self.topic is not None:
            raise ValueError(
                "sparkplug given with a topic: a Sparkplug signal names only its source and "
                "its sparkplug metric"
            )
        return self


class MqttSource(SourceConfig):
    kind: Literal["mqtt"]
    """Devices publishing to the plant's MQTT broker (JSON, plain values or Sparkplug B)."""
    broker: str = Field(pattern=r"^mqtts?://[^/:]+(:\d+)?/?$")
    """The plant's device broker, ``mqtt://host:port`` or ``mqtts://host:port`` (TLS)."""
    qos: Literal[0, 1, 2] = 1
    """The subscription's QoS: 1 or 2 for what must not be lost across an edge restart."""
    username: str | None = None
    """Login name; the password comes from the edge settings, never from the register."""
    tls: MqttTls | None = None
    """For ``mqtts://``: the CA file and, for client certificates, the edge's own."""
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

    def check_binding(self, binding: SignalBinding, process: str) -> None:
        assert isinstance(binding, MqttSignalBinding)
        if binding.sparkplug is not None and self.sparkplug is None:
            raise ValueError(
                f"'sparkplug' given but source {self.id!r} is not an MQTT source with "
                "'sparkplug: {group_id: ...}'"
            )
        if (
            self.sparkplug is not None
            and binding.topic is not None
            and binding.topic.startswith(f"{SPARKPLUG_NAMESPACE}/{self.sparkplug.group_id}/")
        ):
            raise ValueError(
                f"topic {binding.topic!r} is in the source's Sparkplug group: bind it "
                "with 'sparkplug: {node, device, metric}' instead"
            )
        if (
            binding.topic is None
            and binding.sparkplug is None
            and not any(s.process in (None, process) for s in self.subscriptions)
        ):
            raise ValueError(
                f"MQTT source {self.id!r} needs a 'topic', or a subscription of the "
                "source whose pattern has {process} or whose 'process' is this one"
            )

    def check_processes(self, plant: str, processes: frozenset[str]) -> None:
        for number, sub in enumerate(self.subscriptions):
            if sub.process is not None and sub.process not in processes:
                raise ValueError(
                    f"source {self.id}, subscriptions[{number}]: process {sub.process!r} is "
                    f"not a process of plant {plant}"
                )


PROTOCOL = Protocol("mqtt", MqttSource, MqttSignalBinding, "edge.sources.mqtt.build")
