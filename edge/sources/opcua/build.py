"""The OPC UA reader of a register source, as the edge agent builds it (the protocol
registry names this module: ``common/protocols/opcua.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.endpoints import check_opcua_endpoint
from common.protocols.opcua import OpcUaSignalBinding
from common.protocols.opcua import OpcUaSource as OpcUaSourceConfig
from common.register import Signal
from common.register_base import SourceConfig
from common.register_loader import LoadedRegister
from edge.sources import BoundSignal, SourceContext
from edge.sources.opcua.nodes import NodeBinding
from edge.sources.opcua.pki import ApplicationPki, application_uri
from edge.sources.opcua.security import ClientSecurity, build_client_security
from edge.sources.opcua.source import OpcUaSource

if TYPE_CHECKING:
    from edge.settings import EdgeSettings


def opcua_pki(settings: EdgeSettings) -> ApplicationPki:
    """The agent's one OPC UA application identity (certificate) and trust folders."""
    return ApplicationPki(
        settings.resolved_opcua_pki_dir,
        application_uri(settings.resolved_edge_id),
        trust_unknown=settings.opcua_trust_unknown_servers,
    )


def opcua_source_security(
    config: OpcUaSourceConfig,
    register: LoadedRegister,
    settings: EdgeSettings,
    pki: ApplicationPki,
    endpoint: str | None = None,
) -> tuple[str, ClientSecurity]:
    """A source's endpoint (``endpoint``, else the settings' override, else the register's)
    and its security: the register's policy and identity, the password from the settings."""
    endpoint = check_opcua_endpoint(
        endpoint or settings.endpoints.get(config.id) or config.endpoint
    )
    password = settings.opcua_password(config.id)
    return endpoint, build_client_security(config, endpoint, pki, password, register.path.parent)


def node_binding(process: str, signal: Signal) -> NodeBinding:
    """What the reader needs of one register signal of an OPC UA source."""
    binding = signal.binding
    if not isinstance(binding, OpcUaSignalBinding) or binding.address is None:
        raise ValueError(f"process {process}, signal {signal.id}: not bound to an OPC UA node")
    return NodeBinding(
        binding.address,
        process,
        signal.id,
        signal.interval,
        deadband=binding.deadband,
        queue_size=binding.queue_size,
    )


def build_source(
    config: SourceConfig, signals: list[BoundSignal], context: SourceContext
) -> OpcUaSource:
    assert isinstance(config, OpcUaSourceConfig)
    settings = context.settings
    # One application certificate per agent, whichever of its sources makes it first.
    pki = context.once("opcua.pki", lambda: opcua_pki(settings))
    if config.security.policy != "None":
        pki.check_writable()
    endpoint, security = opcua_source_security(config, context.register, settings, pki)
    source = OpcUaSource(
        config,
        [node_binding(process, signal) for process, signal in signals],
        endpoint=endpoint,
        security=security,
        timeout=settings.opcua_timeout,
        watchdog=settings.opcua_watchdog,
        items_per_call=settings.monitored_items_per_call,
        nodes_per_read=settings.nodes_per_read,
        reconnect_max_delay=settings.reconnect_max_delay,
        marks=context.marks,
        room=context.room,
    )
    context.pending.append(source.pending_since)
    return source
