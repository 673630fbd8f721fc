"""Bytes ↔ values for S7: every type encodes and decodes back, and decoding agrees with
python-snap7's own getters (the codec is written out for speed, not for a different
reading)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snap7.util import getters

from common.protocols.s7 import S7SignalBinding
from common.protocols.s7_codec import DecodeError, decode, decoder, encode

FIXED = {
    "byte": (st.integers(0, 0xFF), getters.get_byte),
    "int": (st.integers(-(1 << 15), (1 << 15) - 1), getters.get_int),
    "uint": (st.integers(0, 0xFFFF), getters.get_uint),
    "word": (st.integers(0, 0xFFFF), getters.get_word),
    "dint": (st.integers(-(1 << 31), (1 << 31) - 1), getters.get_dint),
    "udint": (st.integers(0, 0xFFFFFFFF), getters.get_udint),
    "dword": (st.integers(0, 0xFFFFFFFF), getters.get_dword),
    "real": (st.floats(width=32, allow_nan=False), getters.get_real),
    "lreal": (st.floats(allow_nan=False), getters.get_lreal),
}


def binding(kind: str, **fields: Any) -> S7SignalBinding:
    address = {1: "DB1.DBB0", 2: "DB1.DBW0", 4: "DB1.DBD0"}.get(
        {"byte": 1, "int": 2, "uint": 2, "word": 2, "lreal": 1}.get(kind, 4), "DB1.DBB0"
    )
    return S7SignalBinding.model_validate({"address": address, "type": kind, **fields})


@pytest.mark.parametrize("kind", sorted(FIXED))
@given(data=st.data())
def test_every_fixed_type_round_trips_and_reads_as_snap7_reads_it(
    kind: str, data: st.DataObject
) -> None:
    values, snap7_get = FIXED[kind]
    value = data.draw(values)
    b = binding(kind)
    raw = encode(value, b)
    assert len(raw) == b.size
    assert decode(raw, b) == value
    got = snap7_get(bytearray(raw), 0)
    assert got == value or (isinstance(got, float) and math.isclose(got, value))


@given(st.booleans(), st.integers(0, 7), st.integers(0, 0xFF))
def test_a_bit_is_set_in_its_byte_and_the_other_bits_kept(value: bool, bit: int, byte: int) -> None:
    b = S7SignalBinding(address=f"DB1.DBX0.{bit}")
    raw = encode(value, b, byte)
    assert decode(raw, b) is value
    assert getters.get_bool(bytearray(raw), 0, bit) is value
    assert raw[0] & ~(1 << bit) & 0xFF == byte & ~(1 << bit) & 0xFF


@given(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=12))
def test_a_string_holds_its_declared_and_current_length(text: str) -> None:
    b = S7SignalBinding(address="DB1.DBB0", type="string", length=12)
    raw = encode(text, b)
    assert raw[:2] == bytes([12, len(text)]) and len(raw) == 14
    assert decode(raw, b) == text == getters.get_string(bytearray(raw), 0)


def test_a_string_longer_than_declared_is_a_decode_error_not_a_value() -> None:
    b = S7SignalBinding(address="DB1.DBB0", type="string", length=4)
    with pytest.raises(DecodeError, match="6 characters, more than its declared 4"):
        decode(bytes([4, 6]) + b"ABCD", b)


def test_scale_and_offset_and_saturation() -> None:
    b = binding("int", scale=0.1, offset=-5.0)
    assert encode(23.5, b) == (285).to_bytes(2, "big")
    assert decode(encode(23.5, b), b) == pytest.approx(23.5)
    assert decoder(b)(b"\x00" + encode(23.5, b), 1) == pytest.approx(23.5)
    assert decode(encode(10**9, binding("int")), binding("int")) == (1 << 15) - 1
