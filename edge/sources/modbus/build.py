"""The Modbus TCP reader of a register source, as the edge agent builds it (the protocol
registry names this module: ``common/protocols/modbus.py``)."""

from __future__ import annotations

from common.protocols.modbus import ModbusSignalBinding, parse_modbus_endpoint
from common.protocols.modbus import ModbusSource as ModbusSourceConfig
from common.register import Signal
from common.register_base import SourceConfig
from edge.sources import BoundSignal, SourceContext
from edge.sources.modbus.plan import Point
from edge.sources.modbus.source import ModbusTcpSource


def point(config: ModbusSourceConfig, process: str, signal: Signal) -> Point:
    binding = signal.binding
    if not isinstance(binding, ModbusSignalBinding):
        raise ValueError(f"process {process}, signal {signal.id}: not bound to a Modbus register")
    device_id = config.device_id if binding.device_id is None else binding.device_id
    return Point(process, signal.id, device_id, binding)


def build_source(
    config: SourceConfig, signals: list[BoundSignal], context: SourceContext
) -> ModbusTcpSource:
    assert isinstance(config, ModbusSourceConfig)
    endpoint = context.settings.endpoints.get(config.id) or config.endpoint
    parse_modbus_endpoint(endpoint)  # an override is checked as the register's is
    return ModbusTcpSource(
        config,
        [point(config, process, signal) for process, signal in signals],
        endpoint=endpoint,
        reconnect_max_delay=context.settings.reconnect_max_delay,
    )
