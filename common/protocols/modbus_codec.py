"""Registers ↔ a sample's value (pure): how the edge reads a Modbus register and how a
simulated device holds one.

pymodbus converts registers to numbers and strings in either word order
(``convert_from_registers``); the byte order within a register it leaves to the caller, so
a ``little`` byte order swaps each register's two bytes first (devices that store a float
as CDAB/BADC, e.g. some Schneider and Siemens gateways).
"""

from __future__ import annotations

from collections.abc import Sequence

from pymodbus.client.mixin import ModbusClientMixin

from common.protocols.modbus import ModbusSignalBinding, Order
from common.wire import Value

_TYPES = {
    "int16": ModbusClientMixin.DATATYPE.INT16,
    "uint16": ModbusClientMixin.DATATYPE.UINT16,
    "int32": ModbusClientMixin.DATATYPE.INT32,
    "uint32": ModbusClientMixin.DATATYPE.UINT32,
    "int64": ModbusClientMixin.DATATYPE.INT64,
    "uint64": ModbusClientMixin.DATATYPE.UINT64,
    "float32": ModbusClientMixin.DATATYPE.FLOAT32,
    "float64": ModbusClientMixin.DATATYPE.FLOAT64,
    "string": ModbusClientMixin.DATATYPE.STRING,
}


class DecodeError(ValueError):
    """Registers that hold no value of the signal's type (a string that is not text)."""


def _swap_bytes(words: Sequence[int]) -> list[int]:
    return [((word & 0xFF) << 8) | (word >> 8) for word in words]


def decode(
    words: Sequence[int], binding: ModbusSignalBinding, byte_order: Order, word_order: Order
) -> Value:
    """The value of ``binding`` from its registers (``words``, exactly ``binding.registers``
    of them); ``byte_order``/``word_order`` are the source's, unless the binding says."""
    kind = binding.data_type
    if binding.bit is not None:
        return bool((words[0] >> binding.bit) & 1)
    if (binding.byte_order or byte_order) == "little":
        words = _swap_bytes(words)
    order = binding.word_order or word_order
    if kind == "string":
        raw = b"".join(word.to_bytes(2, "big") for word in words)
        try:
            return raw.decode("utf-8").rstrip("\x00 ")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not UTF-8 text (byte {exc.start})") from None
    value = ModbusClientMixin.convert_from_registers(list(words), _TYPES[kind], word_order=order)
    assert isinstance(value, int | float)
    if binding.scale != 1.0 or binding.offset != 0.0:
        return value * binding.scale + binding.offset
    return value


def encode(
    value: Value, binding: ModbusSignalBinding, byte_order: Order, word_order: Order
) -> list[int]:
    """The registers a device holds for ``value`` (simulators, tests): ``decode``'s inverse."""
    kind = binding.data_type
    if kind == "string":
        raw = (
            str(value)
            .encode("utf-8")[: 2 * binding.registers]
            .ljust(2 * binding.registers, b"\x00")
        )
        words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    else:
        assert isinstance(value, int | float) and not isinstance(value, bool)
        raw_value = (
            (value - binding.offset) / binding.scale
            if binding.scale != 1.0 or binding.offset
            else value
        )
        if kind not in ("float32", "float64"):
            raw_value = round(raw_value)
        order = binding.word_order or word_order
        words = ModbusClientMixin.convert_to_registers(raw_value, _TYPES[kind], word_order=order)
    if (binding.byte_order or byte_order) == "little":
        words = _swap_bytes(words)
    return words
