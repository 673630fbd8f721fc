"""Bytes ↔ a sample's value (pure): how the edge reads an S7 address and how a simulated PLC
holds one. S7 is big-endian throughout; a STRING is its declared length, its current
length, then the characters (one byte each).

Written with ``struct`` rather than python-snap7's ``util`` getters, which take a
bytearray and an offset per call and check types on each: a poll decodes every signal of a
source, and the property tests hold the two to each other for every type.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from common.protocols.s7 import S7SignalBinding, parse_address
from common.wire import Value

_FORMATS = {
    "byte": ">B",
    "int": ">h",
    "uint": ">H",
    "word": ">H",
    "dint": ">i",
    "udint": ">I",
    "dword": ">I",
    "real": ">f",
    "lreal": ">d",
}
_RANGES = {
    "byte": (0, 0xFF),
    "int": (-(1 << 15), (1 << 15) - 1),
    "uint": (0, 0xFFFF),
    "word": (0, 0xFFFF),
    "dint": (-(1 << 31), (1 << 31) - 1),
    "udint": (0, 0xFFFFFFFF),
    "dword": (0, 0xFFFFFFFF),
}
STRING_ENCODING = "latin-1"
"""S7 STRING characters are single bytes in the PLC's code page; latin-1 maps each byte to
one character and never fails (a WSTRING, UTF-16, is not read yet)."""


class DecodeError(ValueError):
    """Bytes that hold no value of the signal's type (a STRING longer than declared)."""


Decoder = Callable[[bytes, int], Value]
"""(the bytes of a read, where the value starts in them) → the value."""


def decoder(binding: S7SignalBinding) -> Decoder:
    """The function that reads ``binding``'s value; resolved once per signal: a poll calls
    it for every signal."""
    kind = binding.data_type
    if kind == "bool":
        mask = 1 << (parse_address(binding.address).bit or 0)

        def read_bit(data: bytes, at: int) -> Value:
            return bool(data[at] & mask)

        return read_bit

    if kind == "string":
        declared = binding.length or 0

        def read_text(data: bytes, at: int) -> Value:
            current = data[at + 1]
            if current > declared:
                raise DecodeError(
                    f"STRING holds {current} characters, more than its declared {declared}"
                )
            return data[at + 2 : at + 2 + current].decode(STRING_ENCODING)

        return read_text

    unpack = struct.Struct(_FORMATS[kind]).unpack_from
    scale, offset = binding.scale, binding.offset
    if scale == 1.0 and offset == 0.0:

        def read_number(data: bytes, at: int) -> Value:
            value: int | float = unpack(data, at)[0]
            return value

        return read_number

    def read_scaled(data: bytes, at: int) -> Value:
        value: int | float = unpack(data, at)[0]
        return value * scale + offset

    return read_scaled


def decode(data: bytes, binding: S7SignalBinding) -> Value:
    """The value of ``binding`` from exactly its bytes (one-off; a reader keeps a
    ``decoder``)."""
    return decoder(binding)(data, 0)


def encode(value: Value, binding: S7SignalBinding, current: int = 0) -> bytes:
    """The bytes a PLC holds for ``value`` (simulators, tests): ``decode``'s inverse.
    ``current`` is the byte a bit is set in (its other bits are kept)."""
    kind = binding.data_type
    if kind == "bool":
        mask = 1 << (parse_address(binding.address).bit or 0)
        return bytes([(current | mask) if value else (current & ~mask & 0xFF)])
    if kind == "string":
        declared = binding.length or 0
        text = str(value).encode(STRING_ENCODING, errors="replace")[:declared]
        return bytes([declared, len(text)]) + text.ljust(declared, b"\x00")
    assert isinstance(value, int | float) and not isinstance(value, bool)
    raw: int | float = value
    if binding.scale != 1.0 or binding.offset != 0.0:
        raw = (value - binding.offset) / binding.scale
    if kind not in ("real", "lreal"):  # a PLC's integer saturates at its type's range
        low, high = _RANGES[kind]
        raw = min(max(round(raw), low), high)
    return struct.pack(_FORMATS[kind], raw)
