"""The MTConnect reader of a register source, as the edge agent builds it (the protocol
registry names this module: ``common/protocols/mtconnect.py``)."""

from __future__ import annotations

from common.protocols.mtconnect import MtconnectSignalBinding, parse_mtconnect_endpoint
from common.protocols.mtconnect import MtconnectSource as MtconnectSourceConfig
from common.register import Signal
from common.register_base import SourceConfig
from edge.sources import BoundSignal, SourceContext
from edge.sources.mtconnect.source import BoundItem, MtconnectAgentSource


def bound_item(config: MtconnectSourceConfig, process: str, signal: Signal) -> BoundItem:
    binding = signal.binding
    if not isinstance(binding, MtconnectSignalBinding):
        raise ValueError(
            f"process {process}, signal {signal.id}: not bound to an MTConnect data item"
        )
    device = binding.device if binding.device is not None else config.device
    return BoundItem(process, signal.id, binding.data_item, device)


def build_source(
    config: SourceConfig, signals: list[BoundSignal], context: SourceContext
) -> MtconnectAgentSource:
    assert isinstance(config, MtconnectSourceConfig)
    endpoint = context.settings.endpoints.get(config.id) or config.endpoint
    parse_mtconnect_endpoint(endpoint)  # an override is checked as the register's is
    return MtconnectAgentSource(
        config,
        [bound_item(config, process, signal) for process, signal in signals],
        endpoint=endpoint,
        reconnect_max_delay=context.settings.reconnect_max_delay,
    )
