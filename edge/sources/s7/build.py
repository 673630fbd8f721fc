"""The S7 reader of a register source, as the edge agent builds it (the protocol registry
names this module: ``common/protocols/s7.py``)."""

from __future__ import annotations

from common.protocols.s7 import S7SignalBinding, parse_address, parse_s7_endpoint
from common.protocols.s7 import S7Source as S7SourceConfig
from common.register import Signal
from common.register_base import SourceConfig
from edge.sources import BoundSignal, SourceContext
from edge.sources.s7.plan import Point
from edge.sources.s7.source import S7Source


def point(process: str, signal: Signal) -> Point:
    binding = signal.binding
    if not isinstance(binding, S7SignalBinding):
        raise ValueError(f"process {process}, signal {signal.id}: not bound to an S7 address")
    return Point(process, signal.id, parse_address(binding.address), binding)


def build_source(
    config: SourceConfig, signals: list[BoundSignal], context: SourceContext
) -> S7Source:
    assert isinstance(config, S7SourceConfig)
    endpoint = context.settings.endpoints.get(config.id) or config.endpoint
    parse_s7_endpoint(endpoint)  # an override is checked as the register's is
    return S7Source(
        config,
        [point(process, signal) for process, signal in signals],
        endpoint=endpoint,
        reconnect_max_delay=context.settings.reconnect_max_delay,
    )
