"""Sparkplug B on an MQTT device source: births define metrics, data maps to signals,
deaths mark them stale.

Payloads are decoded by pysparkplug (protobuf); this module keeps the host-side state the
specification asks for, per edge node of the source's group:

* NBIRTH/DBIRTH define each metric's name, alias and datatype (and carry current values);
  NDATA/DDATA are decoded against that birth, so aliases map back to names.
* NDEATH (often the node's MQTT will, sent by the broker when the node's connection dies)
  and DDEATH mark every bound metric of that node/device stale: one sample with no value
  and status BadNoCommunication at the death time, so the KPI sees the gap as bad data.
  An NDEATH whose bdSeq is not the current birth's is the will of an older session and is
  ignored.
* ``seq`` runs 0..255 over every message of a node after its NBIRTH. A gap, data before
  any birth, or an alias the birth did not define means the state may be wrong: the edge
  asks the node to rebirth (NCMD ``Node Control/Rebirth``) when the register allows it
  (``request_rebirth``), otherwise it logs and counts it.

The state belongs to one broker connection: births are not retained and a clean session
misses what happened meanwhile, so ``reset`` forgets everything at every connect.
Pure logic apart from the sink it reports to; the source publishes ``take_commands()``.

With ``primary_host_id`` the edge is also the Sparkplug 3.0 primary host application
(``PrimaryHostState``): nodes configured with that host id publish their births only while
its retained STATE says online.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from common.protocols.mqtt import SPARKPLUG_NAMESPACE, SparkplugGroup
from common.quality import BAD, BAD_NO_COMMUNICATION, GOOD
from common.wire import Sample, Value
from edge.sources import SignalKey, SourceSink
from edge.sources.mqtt.payload import MAX_STRING
from edge.sources.mqtt.routing import TopicBinding

try:
    # The only import of pysparkplug: its payload/topic code works with paho-mqtt 2, its
    # client (which we do not use) does not, so it is installed without its dependencies
    # (scripts/bootstrap.sh, Dockerfile).
    import pysparkplug as spb
    from google.protobuf.message import DecodeError
except ImportError:  # pragma: no cover - exercised by a start-up error, see require_library
    spb = None  # type: ignore[assignment]
    DecodeError = ValueError

if TYPE_CHECKING:
    from pysparkplug import DBirth, DData, DDeath, Metric, NBirth, NData

__all__ = ["PrimaryHostState", "SparkplugReader", "SparkplugUnavailable", "rebirth_command"]

log = logging.getLogger(__name__)

STALE = BAD_NO_COMMUNICATION
"""Status of the sample that marks a metric stale at its node's or device's death."""
NULL = BAD
"""Status of a metric the node reports as null (no value available)."""
REBIRTH_METRIC = "Node Control/Rebirth"
BD_SEQ = "bdSeq"
REBIRTH_RETRY_NS = 5_000_000_000
"""A node that has not rebirthed this long after a request is asked again."""


class SparkplugUnavailable(ValueError):
    """The register uses Sparkplug B but pysparkplug is not installed (a ValueError, so the
    edge's command line reports it as a start-up configuration error)."""


def require_library(source_id: str) -> None:
    if spb is None:
        raise SparkplugUnavailable(
            f"MQTT source {source_id} reads Sparkplug B but the pysparkplug library is not "
            "installed; install it with: pip install --no-deps pysparkplug==0.6.1 "
            "(scripts/bootstrap.sh does this)"
        )


def rebirth_command(group_id: str, node: str, now_ms: int) -> tuple[str, bytes]:
    """The NCMD topic and payload that ask ``node`` to publish its births again."""
    assert spb is not None
    metric = spb.Metric(
        timestamp=now_ms, name=REBIRTH_METRIC, datatype=spb.DataType.BOOLEAN, value=True
    )
    payload = spb.NCmd(timestamp=now_ms, metrics=(metric,)).encode(include_dtypes=True)
    return f"{SPARKPLUG_NAMESPACE}/{group_id}/NCMD/{node}", payload


@dataclass
class PrimaryHostState:
    """The STATE messages of a Sparkplug 3.0 primary host application (spec 4.2.3, 5.3).

    At each connect the MQTT will is ``{"online": false, "timestamp": <connect ms>}`` and,
    once the group's topics and the STATE topic itself are subscribed, the birth is
    ``{"online": true}`` with the same timestamp; both retained, QoS 1, on
    ``spBv1.0/STATE/<host_id>``. A clean stop publishes offline (timestamp: now) before the
    DISCONNECT, which discards the will. An offline STATE delivered on our own topic after
    our birth came back to us (a late will of our previous connection, or another client)
    is answered by publishing online again, as the spec requires; one delivered before it
    is the retained state our birth has already replaced.
    """

    host_id: str
    connect_ms: int = 0
    births: int = 0
    """Online STATEs published, including republications."""
    republished: int = 0
    """Online STATEs published again because an offline one arrived on our topic."""
    _republish: bool = False
    _birth_seen: bool = False

    @property
    def topic(self) -> str:
        return f"{SPARKPLUG_NAMESPACE}/STATE/{self.host_id}"

    def will_payload(self, now_ms: int) -> bytes:
        """The death certificate of the connection about to be made (the MQTT will)."""
        self.connect_ms = now_ms
        self._republish = self._birth_seen = False
        return _state(online=False, ms=now_ms)

    def birth_payload(self) -> bytes:
        self.births += 1
        return _state(online=True, ms=self.connect_ms)

    def death_payload(self, now_ms: int) -> bytes:
        return _state(online=False, ms=now_ms)

    def handle(self, payload: bytes) -> None:
        """A message on our own STATE topic (our own births come back too)."""
        try:
            state = json.loads(payload)
        except ValueError:
            state = None
        online = isinstance(state, dict) and state.get("online") is True
        if online and state.get("timestamp") == self.connect_ms:
            self._birth_seen = True
        elif not online and self._birth_seen:
            log.warning(
                "Sparkplug primary host %s: STATE %s became %r: publishing online again",
                self.host_id,
                self.topic,
                payload[:100],
            )
            self._republish = True

    def take_republish(self) -> bool:
        republish, self._republish = self._republish, False
        if republish:
            self.republished += 1
        return republish

    def health(self) -> dict[str, object]:
        return {
            "id": self.host_id,
            "state_topic": self.topic,
            "births": self.births,
            "republished": self.republished,
        }


def _state(*, online: bool, ms: int) -> bytes:
    return json.dumps({"online": online, "timestamp": ms}).encode()


@dataclass
class SparkplugHealth:
    births: int = 0
    data: int = 0
    deaths: int = 0
    stale_marked: int = 0
    ignored_deaths: int = 0
    """NDEATHs of an older session (bdSeq not the current birth's)."""
    seq_gaps: int = 0
    data_before_birth: int = 0
    rebirth_requests: int = 0
    rebirths_needed: int = 0
    """Times a rebirth was needed but ``request_rebirth`` is off."""


@dataclass
class _Node:
    birth: NBirth | None = None
    bd_seq: int | None = None
    seq: int | None = None
    devices: dict[str, DBirth] = field(default_factory=dict)
    rebirth_requested_at: int | None = None


class Reject(Protocol):
    """How the reader rejects a message (the MQTT source's, which counts and logs it)."""

    def __call__(
        self,
        sink: SourceSink,
        topic: str,
        reason: str,
        rule: str = ...,
        signals: Collection[SignalKey] = ...,
    ) -> None: ...


_Key = tuple[str, str | None, str]
"""(edge node id, device id or None, metric name)."""


class SparkplugReader:
    def __init__(
        self,
        source_id: str,
        config: SparkplugGroup,
        bindings: Sequence[TopicBinding],
        reject: Reject,
    ) -> None:
        require_library(source_id)
        self.source_id = source_id
        self.group_id = config.group_id
        self.request_rebirth = config.request_rebirth
        self.prefix = f"{SPARKPLUG_NAMESPACE}/{config.group_id}/"
        self.reject = reject
        self.stats = SparkplugHealth()
        self.bindings: dict[_Key, list[tuple[str, str]]] = {}
        for binding in bindings:
            ref = binding.binding.sparkplug
            assert ref is not None
            key = (ref.node, ref.device, ref.metric)
            self.bindings.setdefault(key, []).append((binding.process, binding.signal.id))
        self.nodes: dict[str, _Node] = {}
        self.commands: list[tuple[str, bytes]] = []
        self.reset()

    def filters(self) -> list[str]:
        """One filter per bound edge node: its node and device messages (``#`` also matches
        the parent level, so ``.../+/<node>/#`` covers ``NBIRTH/<node>``)."""
        nodes = sorted({node for node, _, _ in self.bindings})
        return [f"{self.prefix}+/{node}/#" for node in nodes]

    def claims(self, topic: str) -> bool:
        return topic.startswith(self.prefix)

    def reset(self) -> None:
        """Forget every birth: called at each (re)connect to the broker."""
        self.nodes = {node: _Node() for node, _, _ in self.bindings}
        self.commands.clear()

    def take_commands(self) -> list[tuple[str, bytes]]:
        commands, self.commands = self.commands, []
        return commands

    def health(self) -> dict[str, object]:
        return {
            "group_id": self.group_id,
            "nodes_born": sorted(n for n, s in self.nodes.items() if s.birth is not None),
            # Bound nodes whose data cannot be read now (dead, or not born since we connected).
            "nodes_without_birth": sorted(n for n, s in self.nodes.items() if s.birth is None),
            **self.stats.__dict__,
        }

    # --- messages ------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, recv: int, sink: SourceSink) -> None:
        levels = topic.split("/")
        if len(levels) not in (4, 5):
            self.reject(sink, topic, "not a Sparkplug B node or device topic")
            return
        kind, node_id = levels[2], levels[3]
        device = levels[4] if len(levels) == 5 else None
        node = self.nodes.get(node_id)
        if node is None or kind in ("NCMD", "DCMD"):
            return  # a node no signal reads (also our own NCMD echoed back): nothing to do
        if (kind.startswith("N") and device is not None) or (
            kind.startswith("D") and device is None
        ):
            self.reject(sink, topic, f"{kind} on a topic with the wrong number of levels")
            return
        try:
            if kind == "NBIRTH":
                self._node_birth(topic, node_id, node, payload, recv, sink)
            elif kind == "NDEATH":
                self._node_death(topic, node_id, node, payload, recv, sink)
            elif kind in ("NDATA", "DBIRTH", "DDATA", "DDEATH"):
                self._after_birth(topic, kind, node_id, device, node, payload, recv, sink)
            else:
                self.reject(sink, topic, f"unknown Sparkplug B message type {kind!r}")
        except (DecodeError, ValueError, KeyError, NotImplementedError, IndexError) as exc:
            # pysparkplug raises the others for unsupported datatypes, unknown aliases and
            # malformed metrics.
            self.reject(sink, topic, f"undecodable {kind} payload: {exc!r}")

    def _node_birth(
        self, topic: str, node_id: str, node: _Node, payload: bytes, recv: int, sink: SourceSink
    ) -> None:
        assert spb is not None
        birth = spb.NBirth.decode(payload)
        self.stats.births += 1
        bd_seq = next((m.value for m in birth.metrics if m.name == BD_SEQ), None)
        self.nodes[node_id] = _Node(
            birth=birth, bd_seq=bd_seq if isinstance(bd_seq, int) else None, seq=birth.seq
        )
        self._emit(topic, node_id, None, birth.timestamp, birth.metrics, recv, sink, birth=True)

    def _node_death(
        self, topic: str, node_id: str, node: _Node, payload: bytes, recv: int, sink: SourceSink
    ) -> None:
        assert spb is not None
        death = spb.NDeath.decode(payload)
        bd_seq = death.bd_seq_metric.value
        if node.birth is None or (node.bd_seq is not None and bd_seq != node.bd_seq):
            # The will of an earlier session arriving after the new birth, or a death of a
            # node we never saw born: nothing of ours is alive to mark.
            self.stats.ignored_deaths += 1
            return
        self.stats.deaths += 1
        # The will's timestamp was set when the node connected; the broker sends it when
        # the connection died, so the receive time is the death time.
        keys = [k for k in self.bindings if k[0] == node_id]
        self._mark_stale(keys, recv, recv, sink)
        self.nodes[node_id] = _Node()

    def _after_birth(
        self,
        topic: str,
        kind: str,
        node_id: str,
        device: str | None,
        node: _Node,
        payload: bytes,
        recv: int,
        sink: SourceSink,
    ) -> None:
        assert spb is not None
        if node.birth is None:
            node.seq = None  # unreadable, so its seq is unknown too: no false gap next
            self._unreadable(node_id, node, recv, "data before birth")
            self.stats.data_before_birth += 1
            self.reject(sink, topic, f"{kind} before the node's NBIRTH: metrics unknown")
            return
        decoded: NData | DBirth | DData | DDeath
        if kind == "DBIRTH":
            decoded = spb.DBirth.decode(payload)
        elif kind == "DDEATH":
            decoded = spb.DDeath.decode(payload)
        else:
            birth = node.birth if kind == "NDATA" else node.devices.get(device or "")
            if birth is None:
                node.seq = None
                self._unreadable(node_id, node, recv, "data before birth")
                self.stats.data_before_birth += 1
                self.reject(sink, topic, f"DDATA before the DBIRTH of device {device}")
                return
            cls = spb.NData if kind == "NDATA" else spb.DData
            try:
                decoded = cls.decode(payload, birth=birth)
            except KeyError as exc:
                node.seq = None
                self._unreadable(node_id, node, recv, f"alias or metric {exc} not in the birth")
                raise
        self._check_seq(topic, node_id, node, decoded.seq, recv)
        if isinstance(decoded, spb.DBirth):
            assert device is not None
            self.stats.births += 1
            node.devices[device] = decoded
            self._emit(topic, node_id, device, decoded.timestamp, decoded.metrics, recv, sink, True)
        elif isinstance(decoded, spb.DDeath):
            assert device is not None
            if node.devices.pop(device, None) is None:
                self.stats.ignored_deaths += 1
                return
            self.stats.deaths += 1
            keys = [k for k in self.bindings if k[0] == node_id and k[1] == device]
            self._mark_stale(keys, _ms_to_ns(decoded.timestamp) or recv, recv, sink)
        else:
            self.stats.data += 1
            self._emit(topic, node_id, device, decoded.timestamp, decoded.metrics, recv, sink)

    # --- state checks ----------------------------------------------------------------------

    def _check_seq(self, topic: str, node_id: str, node: _Node, seq: int, recv: int) -> None:
        expected = None if node.seq is None else (node.seq + 1) % 256
        node.seq = seq
        if expected is not None and seq != expected:
            self.stats.seq_gaps += 1
            log.warning(
                "Sparkplug %s: seq %d on %s, expected %d: messages of node %s were lost",
                self.source_id,
                seq,
                topic,
                expected,
                node_id,
            )
            self._unreadable(node_id, node, recv, f"seq gap (expected {expected}, got {seq})")

    def _unreadable(self, node_id: str, node: _Node, recv: int, why: str) -> None:
        """The node's state cannot be trusted: ask for a rebirth if allowed."""
        if not self.request_rebirth:
            self.stats.rebirths_needed += 1
            if node.rebirth_requested_at is None:
                log.warning(
                    "Sparkplug %s: node %s/%s needs a rebirth (%s) but request_rebirth is off; "
                    "it is read again from its next NBIRTH",
                    self.source_id,
                    self.group_id,
                    node_id,
                    why,
                )
                node.rebirth_requested_at = recv  # log once per node state
            return
        last = node.rebirth_requested_at
        if last is not None and recv - last < REBIRTH_RETRY_NS:
            return
        node.rebirth_requested_at = recv
        self.stats.rebirth_requests += 1
        log.info("Sparkplug %s: asking node %s to rebirth (%s)", self.source_id, node_id, why)
        self.commands.append(rebirth_command(self.group_id, node_id, recv // 1_000_000))

    # --- samples ---------------------------------------------------------------------------

    def _emit(
        self,
        topic: str,
        node_id: str,
        device: str | None,
        payload_ms: int | None,
        metrics: Sequence[Metric],
        recv: int,
        sink: SourceSink,
        birth: bool = False,
    ) -> None:
        seen: set[str] = set()
        for metric in metrics:
            if metric.name is None:
                continue
            seen.add(metric.name)
            targets = self.bindings.get((node_id, device, metric.name))
            if not targets:
                continue
            ts = _ms_to_ns(metric.timestamp) or _ms_to_ns(payload_ms) or recv
            try:
                value, status = _sample_value(metric)
            except ValueError as exc:
                self.reject(sink, topic, f"metric {metric.name!r}: {exc}", signals=targets)
                continue
            for process, signal in targets:
                sink.sample(Sample(process, signal, ts, value, status, recv))
        if birth:
            where = f"{node_id}/{device}" if device else node_id
            for key in self.bindings:
                if key[0] == node_id and key[1] == device and key[2] not in seen:
                    self.reject(
                        sink,
                        topic,
                        f"metric {key[2]!r} bound to signal(s) "
                        f"{', '.join('.'.join(t) for t in self.bindings[key])} is not in the "
                        f"birth of {where}",
                        signals=self.bindings[key],
                    )

    def _mark_stale(self, keys: list[_Key], ts: int, recv: int, sink: SourceSink) -> None:
        for key in keys:
            for process, signal in self.bindings[key]:
                self.stats.stale_marked += 1
                sink.sample(Sample(process, signal, ts, None, STALE, recv))


def _ms_to_ns(ms: int | None) -> int | None:
    return None if not ms else ms * 1_000_000


def _sample_value(metric: Metric) -> tuple[Value, int]:
    """The sample value and status of a decoded metric, or ValueError naming the problem."""
    value = metric.value
    if metric.is_null or value is None:
        return None, NULL
    if isinstance(value, datetime):
        return value.isoformat(), GOOD
    if isinstance(value, bool | int | str):
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise ValueError(f"string value is longer than {MAX_STRING} characters")
        return value, GOOD
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"value {value} cannot be stored")
        return value, GOOD
    raise ValueError(f"{metric.datatype.name} values are not a number, bool or string")
