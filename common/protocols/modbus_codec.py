"""Registers ↔ a sample's value (pure): how the edge reads a Modbus register and how a
simulated device holds one.

A ``little`` byte order swaps each register's two bytes, a ``little`` word order reverses
a value's registers (devices that store a float as CDAB, BADC or DCBA: some Schneider and
Siemens gateways). Encoding (simulated devices) is pymodbus's ``convert_to_registers``.
Decoding is written out here: pymodbus's ``convert_from_registers`` took 4.7 µs per value,
45 % of the reader's CPU polling 1,000 registers back to back (docs/benchmarks.md, "Modbus
path"); the property tests hold the two to each other for every type and order.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from pymodbus.client.mixin import ModbusClientMixin

from common.protocols.modbus import REGISTERS_PER_TYPE, ModbusSignalBinding, Order
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


_FLOATS = {"float32": struct.Struct(">f"), "float64": struct.Struct(">d")}


class DecodeError(ValueError):
    """Registers that hold no value of the signal's type (a string that is not text)."""


def _swap_bytes(words: Sequence[int]) -> list[int]:
    return [((word & 0xFF) << 8) | (word >> 8) for word in words]


Decoder = Callable[[Sequence[int]], Value]


def decoder(binding: ModbusSignalBinding, byte_order: Order, word_order: Order) -> Decoder:
    """The function that turns ``binding``'s registers (exactly ``binding.registers`` of
    them) into its value; ``byte_order``/``word_order`` are the source's, unless the
    binding says. Resolved once per signal: a poll calls it for every signal."""
    kind = binding.data_type
    bit = binding.bit
    swap = (binding.byte_order or byte_order) == "little"
    order = binding.word_order or word_order
    scaled = binding.scale != 1.0 or binding.offset != 0.0
    scale, offset = binding.scale, binding.offset

    if bit is not None:

        def read_bit(words: Sequence[int]) -> Value:
            return bool((words[0] >> bit) & 1)

        return read_bit

    if kind == "bool":  # a coil or discrete input: the answer holds the bit itself

        def read_flag(bits: Sequence[int]) -> Value:
            return bool(bits[0])

        return read_flag

    if kind == "string":

        def read_text(words: Sequence[int]) -> Value:
            raw = b"".join(w.to_bytes(2, "big") for w in (_swap_bytes(words) if swap else words))
            try:
                return raw.decode("utf-8").rstrip("\x00 ")
            except UnicodeDecodeError as exc:
                raise DecodeError(f"not UTF-8 text (byte {exc.start})") from None

        return read_text

    size = REGISTERS_PER_TYPE[kind]
    reverse = order == "little"
    signed_from = 1 << (16 * size - 1) if kind.startswith("int") else None
    floating = _FLOATS.get(kind)

    if kind == "uint16" and not (scaled or swap):  # most registers: the word is the value

        def read_word(words: Sequence[int]) -> Value:
            return words[0]

        return read_word

    def read_number(words: Sequence[int]) -> Value:
        if swap:
            words = _swap_bytes(words)
        raw = 0
        for word in reversed(words) if reverse else words:
            raw = (raw << 16) | word
        value: int | float
        if floating is not None:
            value = floating.unpack(raw.to_bytes(2 * size, "big"))[0]
        elif signed_from is not None and raw >= signed_from:
            value = raw - 2 * signed_from
        else:
            value = raw
        return value * scale + offset if scaled else value

    return read_number


def decode(
    words: Sequence[int], binding: ModbusSignalBinding, byte_order: Order, word_order: Order
) -> Value:
    """The value of ``binding`` from its registers (one-off; a reader keeps its ``decoder``)."""
    return decoder(binding, byte_order, word_order)(words)


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
