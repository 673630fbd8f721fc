"""One OPC UA server per OPC UA source of the register, serving its machines' signals.

Node ids are taken verbatim from the register (``nsu=<namespace uri>;s=<name>``): each
namespace URI is registered, each machine (process) gets one folder under Objects, and its
variables carry the exact string node ids; a process with a signal of an OPC 40001 or 40501
profile is served as a standard machine instead (``simulators/opcua_machines.py``). Values
are written server-side with a real status code and source timestamp, so a client sees what
an actual PLC gateway would send.

Before any sample is written a variable holds BadWaitingForInitialData. The first tick is
written before the server listens, so a client only ever sees that for machines that never
report (offline); those initial values are recorded in the ledger when listening starts.

History (off unless a history folder is given: ``history_dir``, ``plantkpi-sim run
--history DIR``): the server keeps every value it serves in ``<folder>/<source id>.sqlite``
(asyncua's SQLite history, ``simulators/opcua_history.py``), as a PLC or SCADA server with
Historical Access does, and answers HistoryRead (raw) from it: what the ledger records,
exactly (value, status, source and server timestamps; Bad writes with their value; the
initial BadWaitingForInitialData of a variable not written when the server starts to
listen), kept across restarts (kill -9 too: each batch is committed as it is written).
Its variables then say so: AccessLevel and UserAccessLevel have HistoryRead, Historizing is
true. Without a folder they are CurrentRead and not historizing, as before.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.internal_server import InternalServer
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.attribute_ids import AttributeIds
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from common.protocols.opcua import OpcUaSignalBinding, OpcUaSource
from common.quality import BAD_WAITING_FOR_INITIAL_DATA
from common.register import UpdateKind
from common.register_base import SourceConfig
from common.timestamps import ns_to_datetime
from simulators.equipment import Served, SimulatorError
from simulators.ledger import Ledger
from simulators.machine import Sample, SignalSpec, Value, value_type
from simulators.opcua_history import SQLiteHistory, history_file
from simulators.opcua_machines import MachineSpace, Placement, layout
from simulators.opcua_machines import signal_spec as signal_spec

log = logging.getLogger(__name__)

_NSU_STRING = re.compile(r"^nsu=([^;]+);s=(.+)$", re.DOTALL)
_YIELD_EVERY = 200
"""Writes (or node creations) between two yields to the event loop."""

_VARIANTS: dict[type, ua.VariantType] = {
    str: ua.VariantType.String,
    int: ua.VariantType.Int64,
    float: ua.VariantType.Double,
    bool: ua.VariantType.Boolean,
}
_DEFAULTS: dict[type, Value] = {str: "", int: 0, float: 0.0, bool: False}


class NodeIdError(ValueError):
    """A register node id the simulator cannot serve."""


@dataclass(frozen=True)
class NodeAddress:
    uri: str
    identifier: str


def parse_node_id(node: str) -> NodeAddress:
    """Split ``nsu=<uri>;s=<name>``; any other form raises NodeIdError naming the node."""
    match = _NSU_STRING.match(node)
    if match is None:
        raise NodeIdError(
            f"node {node!r}: the simulator serves only string node ids with a namespace URI, "
            "nsu=<namespace uri>;s=<process>.<signal>"
        )
    return NodeAddress(match.group(1), match.group(2))


@dataclass(frozen=True)
class ServerSecurity:
    """Optional security of a simulated server (tests of the edge's security)."""

    cert_file: Path
    """The server's certificate (DER), made for ``urn:plantkpi:sim:<source id>``."""
    key_file: Path
    """Its private key (PEM)."""
    policies: tuple[ua.SecurityPolicyType, ...] = (
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    )
    """The endpoints offered (policy + mode each)."""
    users: dict[str, str] = field(default_factory=dict)
    """Username → password; when given, only these users may log in (no anonymous)."""
    trusted_dir: Path | None = None
    """Client application certificates accepted; None: any client certificate."""
    user_certificates: tuple[Path, ...] = ()
    """User certificates (DER or PEM) that may log in with an X.509 identity token; when
    given, that token is offered (beside username when ``users`` is given too)."""


class _Users(UserManager):
    """Only the given users (username + password) and user certificates may log in."""

    def __init__(self, users: dict[str, str], certificates: dict[bytes, str]) -> None:
        self.users = users
        self.certificates = certificates
        """DER of each accepted user certificate → the user's name (its subject)."""

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: object = None,
    ) -> User | None:
        if username is not None:
            ok = self.users.get(username) == password
            return User(role=UserRole.User, name=username) if ok else None
        # An X.509 token's certificate, its signature verified by asyncua (the client holds
        # the key); for other tokens asyncua passes the channel's client certificate here,
        # but those tokens are not offered beside a certificate (set_identity_tokens).
        name = self.certificates.get(certificate) if isinstance(certificate, bytes) else None
        return None if name is None else User(role=UserRole.User, name=name)


async def _user_manager(security: ServerSecurity) -> UserManager | None:
    """None (asyncua's: anyone) when the server names no users nor user certificates."""
    if not security.users and not security.user_certificates:
        return None
    certificates: dict[bytes, str] = {}
    for path in security.user_certificates:
        certificate: x509.Certificate = await uacrypto.load_certificate(path)
        der = certificate.public_bytes(serialization.Encoding.DER)
        certificates[der] = certificate.subject.rfc4514_string()
    return _Users(security.users, certificates)


@dataclass(frozen=True)
class OpcUaBinding:
    """One signal of one machine, served at ``node``."""

    process: str
    signal: SignalSpec
    node: str


def brief_list(names: Sequence[str], limit: int = 8) -> str:
    """``a, b, c`` or ``a, b, … (+40 more)``: start-up lines stay readable for big plants."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, … (+{len(names) - limit} more)"


def to_datetime(ns: int) -> ua.DateTime:
    """An aware UTC datetime; exact to the microsecond (what OPC UA clients decode)."""
    return cast(ua.DateTime, ns_to_datetime(ns))


def _node_id(identifier: str, namespace: int) -> ua.NodeId:
    return ua.NodeId(ua.String(identifier), ua.Int16(namespace))


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


def seen_ts(ns: int) -> int:
    """The source timestamp a client decodes from ``to_datetime(ns)``, in ns."""
    return ns // 1000 * 1000


class _Variable:
    __slots__ = ("address", "binding", "last", "node_id", "placement", "variant", "written")

    def __init__(
        self, binding: OpcUaBinding, address: NodeAddress, placement: Placement | None
    ) -> None:
        self.binding = binding
        self.address = address
        self.placement = placement
        """Its standard place below its machine, or None: directly below its folder."""
        self.variant = (
            _VARIANTS[value_type(binding.signal)] if placement is None else placement.variant
        )
        self.node_id: ua.NodeId | None = None
        self.last: tuple[Value, int] | None = None
        self.written = False


class OpcUaSourceServer:
    """The OPC UA server of one register source.

    Lifecycle: ``await prepare()`` (address space), optional first ``write``,
    ``await listen()``, then ``write`` per tick, ``await stop()``.
    """

    def __init__(
        self,
        source_id: str,
        endpoint: str,
        bindings: Sequence[OpcUaBinding],
        *,
        ledger: Ledger | None = None,
        polled: bool = False,
        security: ServerSecurity | None = None,
        history_dir: Path | None = None,
    ) -> None:
        """``polled``: the edge reads this source by polling (register ``mode: poll``).
        ``security``: None serves anonymous clients without security (policy None).
        ``history_dir``: keep the history of every variable there (module docstring)."""
        self.source_id = source_id
        self.history_dir = history_dir
        self.security = security
        self.endpoint = endpoint
        self.ledger = ledger
        self.polled = polled
        self._vars: dict[tuple[str, str], _Variable] = {}
        self._layout = layout((b.process, b.signal) for b in bindings)
        seen_nodes: dict[tuple[str, str], str] = {}
        for binding in bindings:
            where = f"source {source_id}, process {binding.process}, signal {binding.signal.id}"
            try:
                address = parse_node_id(binding.node)
            except NodeIdError as exc:
                raise NodeIdError(f"{where}: {exc}") from None
            key = (address.uri, address.identifier)
            if key in seen_nodes:
                raise NodeIdError(
                    f"{where}: node {binding.node!r} is also used by {seen_nodes[key]}"
                )
            seen_nodes[key] = where
            placement = self._layout.placements.get((binding.process, binding.signal.id))
            self._vars[(binding.process, binding.signal.id)] = _Variable(
                binding, address, placement
            )
        self._folders: dict[str, str] = {}
        """Machine → namespace URI of its folder or object (that of its first variable)."""
        for var in self._vars.values():
            process = var.binding.process
            if process not in self._folders:
                self._folders[process] = var.address.uri
                if (var.address.uri, process) in seen_nodes:
                    raise NodeIdError(
                        f"{seen_nodes[(var.address.uri, process)]}: node "
                        f"'nsu={var.address.uri};s={process}' is the folder of machine {process}"
                    )
        self._server: Server | None = None
        self._start_ns = 0
        self.writes = 0
        self.history: SQLiteHistory | None = None
        """The history, from ``prepare`` when ``history_dir`` is set."""

    def keep_history(self, folder: Path) -> None:
        """Keep the history of every variable in ``folder`` (before ``prepare``)."""
        self.history_dir = folder

    @property
    def history_path(self) -> Path | None:
        """``<history_dir>/<source id>.sqlite``, or None: no history."""
        return None if self.history_dir is None else history_file(self.history_dir, self.source_id)

    @property
    def processes(self) -> list[str]:
        return sorted({process for process, _ in self._vars})

    @property
    def namespaces(self) -> list[str]:
        return sorted({v.address.uri for v in self._vars.values()})

    @property
    def url(self) -> str:
        """The endpoint actually listened on (port resolved when the endpoint's port is 0)."""
        server = self._server
        if server is not None and server.bserver is not None:
            return f"opc.tcp://{server.bserver.hostname}:{server.bserver.port}"
        return self.endpoint

    async def prepare(self) -> None:
        """Build the address space; every variable starts as BadWaitingForInitialData."""
        # Per message logs of the server would drown the simulator's own lines.
        server_logger = logging.getLogger("asyncua.server")
        if server_logger.getEffectiveLevel() < logging.WARNING:
            server_logger.setLevel(logging.WARNING)
        security = self.security
        server = Server(user_manager=await _user_manager(security) if security else None)
        history_path = self.history_path
        if history_path is not None:
            history_path.parent.mkdir(parents=True, exist_ok=True)
            self.history = SQLiteHistory(history_path)
            # asyncua opens its history storage in init().
            server.iserver.history_manager.set_storage(self.history)
        await server.init()
        self._server = server  # stop() closes what init() opened, whatever fails next
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"plantkpi simulator {self.source_id}")
        await server.set_application_uri(f"urn:plantkpi:sim:{self.source_id}")
        if security is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        else:
            await self._secure(server, security)
        self._start_ns = time.time_ns()

        indexes = {uri: await server.register_namespace(uri) for uri in self.namespaces}
        by_process: dict[str, list[_Variable]] = {}
        for var in self._vars.values():
            var.node_id = _node_id(var.address.identifier, indexes[var.address.uri])
            by_process.setdefault(var.binding.process, []).append(var)
        machines = MachineSpace(server, self._layout)
        await machines.prepare()
        if self.history is not None:
            self.history.namespaces = dict(enumerate(await server.get_namespace_array()))
        created = 0
        # One folder per machine: asyncua adds siblings under one parent in quadratic time.
        for process, variables in by_process.items():
            folder_id = _node_id(process, indexes[self._folders[process]])
            if machines.is_machine(process):
                folder = await machines.add_machine(folder_id)
            else:
                folder = await server.nodes.objects.add_folder(
                    folder_id, ua.QualifiedName(process, folder_id.NamespaceIndex)
                )
            for var in variables:
                assert var.node_id is not None
                spec = var.binding.signal
                if var.placement is not None:
                    assert spec.profile is not None
                    await machines.add_variable(folder, var.placement, var.node_id, spec.profile)
                else:
                    await folder.add_variable(
                        var.node_id,
                        ua.QualifiedName(spec.id, var.node_id.NamespaceIndex),
                        _DEFAULTS[value_type(spec)],
                        var.variant,
                    )
                await server.write_attribute_value(var.node_id, self._initial_value())
                if self.history is not None:
                    await self._historize(server, self.history, var.node_id)
                created += 1
                if created % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)

    @staticmethod
    async def _historize(server: Server, history: SQLiteHistory, node_id: ua.NodeId) -> None:
        """What asyncua's ``enable_history_data_change`` does, but for the monitored item:
        the server records what it writes itself (``opcua_history.py`` says why)."""
        node = server.get_node(node_id)
        historizing = ua.DataValue(ua.Variant(True, ua.VariantType.Boolean))
        await node.write_attribute(AttributeIds.Historizing, historizing)
        await node.set_attr_bit(AttributeIds.AccessLevel, ua.AccessLevel.HistoryRead)
        await node.set_attr_bit(AttributeIds.UserAccessLevel, ua.AccessLevel.HistoryRead)
        await history.new_historized_node(node_id, period=None, count=0)  # all values, forever

    @staticmethod
    async def _secure(server: Server, security: ServerSecurity) -> None:
        server.set_security_policy(list(security.policies))
        await server.load_certificate(str(security.cert_file))
        await server.load_private_key(str(security.key_file))
        tokens: list[type] = [ua.UserNameIdentityToken] if security.users else []
        if security.user_certificates:
            tokens.append(ua.X509IdentityToken)
        server.set_identity_tokens(tokens or [ua.AnonymousIdentityToken])
        trusted_dir = security.trusted_dir
        if trusted_dir is None:
            return

        async def validate(certificate: x509.Certificate, peer: ua.ApplicationDescription) -> None:
            # Read at every session, as real servers do: a certificate dropped into the folder
            # is trusted from the client's next attempt.
            if not any(trusted_dir.iterdir()):  # asyncua cannot build an empty TrustStore
                raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)  # type: ignore[attr-defined]
            store = TrustStore([trusted_dir], [])
            await store.load()
            options = (
                CertificateValidatorOptions.TRUSTED_VALIDATION
                | CertificateValidatorOptions.PEER_CLIENT
            )
            await CertificateValidator(options, store).validate(certificate, peer)

        server.set_certificate_validator(validate)

    async def listen(self) -> None:
        """Start accepting clients; record the initial value of variables not yet written."""
        server = self._require_server()
        try:
            await server.start()
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"OPC UA source {self.source_id}: cannot listen on {self.endpoint}: {exc.strerror}",
            ) from exc
        ts = seen_ts(self._start_ns)
        for var in self._vars.values():
            if var.written:
                continue
            if self.history is not None:
                assert var.node_id is not None
                self.history.record(var.node_id, self._initial_value())
            if self.ledger is not None:
                self.ledger.record(
                    self.source_id,
                    var.binding.process,
                    var.binding.signal.id,
                    ts,
                    None,
                    BAD_WAITING_FOR_INITIAL_DATA,
                )
        log.info(
            "OPC UA source %s: %d nodes of %d machines (%s) in %s on %s%s",
            self.source_id,
            len(self._vars),
            len(self.processes),
            brief_list(self.processes),
            ", ".join(self.namespaces),
            self.url,
            f"; history in {self.history_path}" if self.history is not None else "",
        )

    async def write(self, samples: Iterable[tuple[str, Sample]]) -> int:
        """Write (process, sample) pairs; return how many were written.

        A variable is never written with the (value, status) it already holds when a
        subscription could not tell the writes apart: on-change signals always, and
        periodic ones of a subscribed source (a state string that stays RUNNING). The
        ledger counts only what a subscriber receives. A polled source gets every write,
        so its source timestamp keeps advancing for the poller.
        """
        server = self._require_server()
        written = 0
        server_ts = cast(ua.DateTime, datetime.now(UTC))
        for process, sample in samples:
            var = self._vars.get((process, sample.signal))
            if var is None:
                raise KeyError(f"source {self.source_id} serves no {process}.{sample.signal}")
            value = float(sample.value) if var.variant is ua.VariantType.Double else sample.value
            repeat = var.last == (value, sample.status)
            if repeat and (not self.polled or var.binding.signal.update is UpdateKind.ON_CHANGE):
                continue
            assert var.node_id is not None
            # A state's name as LocalizedText: a client reads (and the ledger keeps) its text.
            served = (
                ua.LocalizedText(str(value))
                if var.variant is ua.VariantType.LocalizedText
                else value
            )
            datavalue = ua.DataValue(
                ua.Variant(served, var.variant),
                _status(sample.status),
                SourceTimestamp=to_datetime(sample.ts),
                ServerTimestamp=server_ts,
            )
            if datavalue.StatusCode is not None and datavalue.StatusCode.is_bad():
                await self._write_keeping_value(var.node_id, datavalue)
            else:
                await server.write_attribute_value(var.node_id, datavalue)
            var.last = (value, sample.status)
            var.written = True
            if self.history is not None:
                self.history.record(var.node_id, datavalue)
            if self.ledger is not None:
                self.ledger.record(
                    self.source_id, process, sample.signal, seen_ts(sample.ts), value, sample.status
                )
            written += 1
            if written % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
        self.writes += written
        return written

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            try:
                await server.stop()  # asyncua's stop writes out and closes the history
            finally:
                if self.history is not None:  # (again, a no-op, unless that stop failed)
                    await self.history.stop()

    async def _write_keeping_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        """Write a Bad DataValue without dropping its value.

        asyncua nulls the value of a Bad write (Part 4, 7.7.1 says a server shall), but the
        scenario's bad_quality machine is a device that reports its reading with Bad status,
        as many field gateways do; the value must reach the client so every write stays a
        distinct, countable notification. So the stored value is set directly and the
        subscriptions are notified the way ``write_attribute_value`` does it.
        """
        server = self._require_server()
        attribute = server.iserver.aspace[node_id].attributes[AttributeIds.Value]
        attribute.value = datavalue
        attribute.value_callback = None
        for handle, callback in list(attribute.datachange_callbacks.items()):
            try:
                await callback(handle, datavalue)
            except Exception:  # as in asyncua: one broken subscription must not stop writes
                log.exception("OPC UA source %s: data change callback failed", self.source_id)

    def _initial_value(self) -> ua.DataValue:
        ts = to_datetime(self._start_ns)
        return ua.DataValue(
            ua.Variant(None, ua.VariantType.Null),
            _status(BAD_WAITING_FOR_INITIAL_DATA),
            SourceTimestamp=ts,
            ServerTimestamp=ts,
        )

    def _require_server(self) -> Server:
        if self._server is None:
            raise RuntimeError(f"OPC UA source {self.source_id}: prepare() first")
        return self._server


def serve(
    source: SourceConfig, endpoint: str, served: Sequence[Served], ledger: Ledger | None
) -> OpcUaSourceServer:
    """The simulated OPC UA server of a register source (``simulators/equipment.py``)."""
    assert isinstance(source, OpcUaSource)
    bindings = []
    for item in served:
        binding = item.binding
        assert isinstance(binding, OpcUaSignalBinding)
        if binding.node is None:
            raise SimulatorError(
                f"signal {item.process}.{item.spec.id} is addressed by browse path "
                f"{binding.browse_path!r}; the simulator serves node ids only (give the "
                "signal a 'node')"
            )
        bindings.append(OpcUaBinding(item.process, item.spec, binding.node))
    return OpcUaSourceServer(
        source.id, endpoint, bindings, ledger=ledger, polled=source.mode == "poll"
    )
