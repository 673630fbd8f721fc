"""The protocols the register knows: one line each (``common/register_base.py`` says what a
protocol provides, ``docs/protocols.md`` how to add one)."""

from __future__ import annotations

from common.protocols import modbus, mqtt, mtconnect, opcua, s7
from common.register_base import Protocol

PROTOCOLS: tuple[Protocol, ...] = (
    opcua.PROTOCOL,
    mqtt.PROTOCOL,
    modbus.PROTOCOL,
    s7.PROTOCOL,
    mtconnect.PROTOCOL,
)

BY_KIND: dict[str, Protocol] = {protocol.kind: protocol for protocol in PROTOCOLS}
