"""Modbus TCP in the register: a device or gateway (``kind: modbus``) and a signal's table,
address and data type.

The edge's reader: ``edge/sources/modbus/`` (README: addressing, data types, limits).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from common.durations import Duration
from common.register_base import Protocol, SignalBinding, SourceConfig

Table = Literal["holding", "input", "coil", "discrete"]
"""Holding registers (function 3), input registers (4), coils (1), discrete inputs (2)."""
DataType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"
]
Order = Literal["big", "little"]

REGISTERS_PER_TYPE: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
}
MAX_REGISTERS_PER_READ = 125
"""Modbus's own limit for one read of holding or input registers (functions 3 and 4)."""
MAX_BITS_PER_READ = 2000
"""And for one read of coils or discrete inputs (functions 1 and 2)."""


def parse_modbus_endpoint(url: str) -> tuple[str, int]:
    """``modbus://host[:port]`` (port 502 by default) → host and port; ValueError naming it."""
    parts = urlsplit(url)
    if parts.scheme != "modbus" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"Modbus endpoint {url!r} is not modbus://host[:port]")
    if parts.username or parts.password:
        raise ValueError(f"Modbus endpoint {url!r}: Modbus TCP has no login; drop the user")
    try:
        port = parts.port or 502
    except ValueError as exc:
        raise ValueError(f"Modbus endpoint {url!r}: {exc}") from None
    return parts.hostname, port


class ModbusSignalBinding(SignalBinding):
    kind: Literal["modbus"] = "modbus"
    table: Table = "holding"
    """``holding`` (function 3), ``input`` (4), ``coil`` (1) or ``discrete`` (2)."""
    address: int = Field(ge=0, le=65535)
    """The protocol address, counted from 0 (holding register 40001 is address 0)."""
    type: DataType | None = None
    """Default: ``bool`` for coils, discrete inputs and a ``bit``; else ``uint16``."""
    length: int | None = Field(default=None, ge=1, le=MAX_REGISTERS_PER_READ)
    """For ``string``: how many registers it spans (two characters each)."""
    bit: int | None = Field(default=None, ge=0, le=15)
    """Read one bit of a register (0 = least significant) as a boolean."""
    device_id: int | None = Field(default=None, ge=0, le=255)
    """The unit / slave id behind a gateway; default the source's."""
    byte_order: Order | None = None
    """Byte order within a register; default the source's (big: the Modbus standard)."""
    word_order: Order | None = None
    """Order of the registers of a 32/64-bit value; default the source's."""
    scale: float = 1.0
    """A numeric value is stored as raw × scale + offset (raw 1234, scale 0.1 → 123.4)."""
    offset: float = 0.0
    """Added after ``scale``."""

    @model_validator(mode="after")
    def _consistent(self) -> ModbusSignalBinding:
        bits = self.table in ("coil", "discrete")
        kind = self.data_type
        if bits and kind != "bool":
            raise ValueError(f"a {self.table} is one bit: its type is bool, not {kind}")
        if bits and (self.bit is not None or self.length is not None):
            raise ValueError(f"a {self.table} is one bit: 'bit' and 'length' apply to registers")
        if self.bit is not None and kind != "bool":
            raise ValueError(f"'bit' reads a boolean: type {kind} does not go with it")
        if not bits and self.bit is None and kind == "bool":
            raise ValueError("a register read as bool needs 'bit' (which of its 16 bits)")
        if kind == "string" and self.length is None:
            raise ValueError("type string needs 'length' (registers, two characters each)")
        if kind != "string" and self.length is not None:
            raise ValueError(f"'length' applies to type string, not {kind}")
        numeric = kind not in ("bool", "string")
        if not numeric and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError(f"scale and offset apply to numbers, not to type {kind}")
        if self.address + self.registers - 1 > 65535:
            raise ValueError(f"address {self.address} + {self.registers} registers is past 65535")
        return self

    @property
    def data_type(self) -> str:
        if self.type is not None:
            return self.type
        return "bool" if self.table in ("coil", "discrete") or self.bit is not None else "uint16"

    @property
    def registers(self) -> int:
        """How many registers (or bits, for coils and discrete inputs) the value spans."""
        kind = self.data_type
        if kind == "string":
            return self.length or 1
        return REGISTERS_PER_TYPE.get(kind, 1)


class ModbusSource(SourceConfig):
    kind: Literal["modbus"]
    """A Modbus TCP device, or a gateway to several."""
    endpoint: str
    """``modbus://host[:port]`` (port 502 by default): the device, or a gateway in front of
    several (``device_id`` per signal)."""
    device_id: int = Field(1, ge=0, le=255)
    """The unit / slave id its signals are read from unless they say otherwise."""
    poll_interval: Duration = 1.0
    """Every signal of the source is read this often (its ``interval`` says what the KPI
    expects; keep it ≥ this)."""
    timeout: Duration = 3.0
    """One request's answer, after which the read is a timeout (BadTimeout on its samples)."""
    max_registers_per_read: int = Field(MAX_REGISTERS_PER_READ, ge=1, le=MAX_REGISTERS_PER_READ)
    """Some devices answer fewer than Modbus allows: lower it for them."""
    max_bits_per_read: int = Field(MAX_BITS_PER_READ, ge=1, le=MAX_BITS_PER_READ)
    """Coils or discrete inputs in one request (Modbus allows 2,000)."""
    max_gap: int = Field(8, ge=0, le=MAX_REGISTERS_PER_READ)
    """Registers between two signals read along in one request rather than split in two
    (a device refuses a read over an address it does not have: set 0 for such devices)."""
    requests_in_flight: int = Field(1, ge=1, le=16)
    """Requests sent before their answers arrive; 1 for devices (and gateways to serial
    lines) that answer one at a time."""
    byte_order: Order = "big"
    """Of the two bytes of a register: ``big`` (AB, the Modbus standard) or ``little``."""
    word_order: Order = "big"
    """Of the registers of a 32/64-bit value: ``big`` (first register most significant)
    or ``little`` (CDAB devices)."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parse_modbus_endpoint(value)
        return value

    def check_binding(self, binding: SignalBinding, process: str) -> None:
        assert isinstance(binding, ModbusSignalBinding)
        limit = (
            self.max_bits_per_read
            if binding.table in ("coil", "discrete")
            else self.max_registers_per_read
        )
        if binding.registers > limit:
            raise ValueError(
                f"{binding.registers} registers at address {binding.address} are more than "
                f"source {self.id!r} reads at once (max_registers_per_read {limit})"
            )


PROTOCOL = Protocol(
    "modbus",
    ModbusSource,
    ModbusSignalBinding,
    edge_module="edge.sources.modbus.build",
    simulator_module="simulators.modbus_server",
)
