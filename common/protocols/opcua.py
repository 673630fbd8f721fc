"""OPC UA in the register: a server (``kind: opcua``) and a signal's node or browse path.

The edge's reader: ``edge/sources/opcua/`` (README: addressing, security, limits).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from common.browse_paths import parse_browse_path
from common.durations import Duration
from common.endpoints import check_opcua_endpoint
from common.register_base import Protocol, SignalBinding, SourceConfig, Strict

# ns=<index>;<type>=<id> or nsu=<uri>;<type>=<id> or a bare <type>=<id> (namespace 0).
_NODE_ID = re.compile(r"^(?:(?:ns=\d+|nsu=[^;]+);)?[isgb]=.+$", re.DOTALL)


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


class OpcUaSignalBinding(SignalBinding):
    kind: Literal["opcua"] = "opcua"
    node: str | None = None
    """OPC UA node id: ``ns=2;s=...``, or ``nsu=<namespace uri>;s=...`` resolved at connect."""
    browse_path: str | None = None
    """Instead of ``node``: ``/Objects/{urn:vendor}Line1/Press/Temperature``
    (``common.browse_paths``), resolved at every connect."""
    deadband: Deadband | None = None
    """Report a change only beyond this deadband."""
    queue_size: int | None = Field(default=None, ge=1, le=100_000)
    """Monitored-item queue size (default: room for 20 publishing cycles)."""

    @model_validator(mode="after")
    def _one_address(self) -> OpcUaSignalBinding:
        if self.node is not None and not _NODE_ID.match(self.node):
            raise ValueError(
                f"node {self.node!r} is not an OPC UA node id "
                "(ns=2;s=Name, nsu=urn:...;s=Name, ns=3;i=1001)"
            )
        if self.browse_path is not None:
            if self.node is not None:
                raise ValueError("give either 'node' or 'browse_path', not both")
            parse_browse_path(self.browse_path)  # BrowsePathError is a ValueError
        return self

    @property
    def address(self) -> str | None:
        """The node id or the browse path (told apart by ``edge/sources/opcua/nodes.py``)."""
        return self.node or self.browse_path


class OpcUaSource(SourceConfig):
    kind: Literal["opcua"]
    """An OPC UA server (a CNC, a PLC's, a gateway's)."""
    endpoint: Annotated[str, AfterValidator(check_opcua_endpoint)]
    """``opc.tcp://host:port[/path]``, without a login in it."""
    security: OpcUaSecurity
    """Required: an unsecured connection must be asked for explicitly (policy None)."""
    mode: Literal["subscribe", "poll"] = "subscribe"
    """``poll`` reads all nodes every ``poll_interval`` for servers without subscriptions."""
    poll_interval: Duration = 1.0
    """With ``mode: poll``: every node is read this often."""
    publishing_interval: Duration = 0.5
    """With ``mode: subscribe``: how often the server sends the changes (its sampling is
    each signal's ``interval``)."""
    max_nodes_per_connection: int = Field(3000, ge=1)
    """Above this many nodes the edge opens several connections (sessions) to the server,
    each with its own subscription (pure-Python asyncua handles ~3,000 tags at 1 s each)."""
    backfill: Literal["auto", "off"] = "auto"
    """``auto``: after any gap (an edge restart, a lost connection or subscription) read what
    changed meanwhile from the server's history, for every node the server lets us read
    history of (its UserAccessLevel has HistoryRead); ``off``: a gap stays a gap."""
    backfill_max_gap: Duration = Field(86400.0, gt=0)
    """The longest gap backfilled: of a longer one, only its last part this long."""
    backfill_values_per_request: int = Field(100, ge=1, le=100_000)
    """Values per node in one HistoryRead request (the rest follows by continuation point):
    small answers keep live data flowing beside a backfill (docs/benchmarks.md, "OPC UA
    backfill": live p99 × 1.35 at 100, × 8.3 at 1,000, for 9 % less backfill rate)."""

    @model_validator(mode="before")
    @classmethod
    def _security_written(cls, data: object) -> object:
        if isinstance(data, dict) and "security" not in data:
            raise ValueError(_SECURITY_MISSING)
        return data

    def check_binding(self, binding: SignalBinding, process: str) -> None:
        assert isinstance(binding, OpcUaSignalBinding)
        if binding.address is None:
            raise ValueError(f"OPC UA source {self.id!r} needs a 'node' or 'browse_path'")


PROTOCOL = Protocol(
    "opcua",
    OpcUaSource,
    OpcUaSignalBinding,
    edge_module="edge.sources.opcua.build",
    simulator_module="simulators.opcua_server",
)
