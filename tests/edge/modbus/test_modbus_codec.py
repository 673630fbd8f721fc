"""Registers ↔ values, and which reads a poll makes (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.protocols.modbus import ModbusSignalBinding, ModbusSource
from common.protocols.modbus_codec import DecodeError, decode, encode
from edge.sources.modbus.plan import Point, plan_reads, split

RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
ORDERS = st.sampled_from(["big", "little"])


def binding(**fields: Any) -> ModbusSignalBinding:
    return ModbusSignalBinding.model_validate({"address": 0, **fields})


@given(st.sampled_from(sorted(RANGES)), st.data(), ORDERS, ORDERS)
def test_every_integer_type_round_trips_in_every_order(
    kind: str, data: st.DataObject, byte_order: str, word_order: str
) -> None:
    low, high = RANGES[kind]
    value = data.draw(st.integers(low, high))
    b = binding(type=kind)
    words = encode(value, b, byte_order, word_order)  # type: ignore[arg-type]
    assert len(words) == b.registers and all(0 <= w <= 0xFFFF for w in words)
    assert decode(words, b, byte_order, word_order) == value  # type: ignore[arg-type]


@given(st.floats(allow_nan=False, width=32), ORDERS, ORDERS)
def test_float32_round_trips(value: float, byte_order: str, word_order: str) -> None:
    b = binding(type="float32")
    words = encode(value, b, byte_order, word_order)  # type: ignore[arg-type]
    assert decode(words, b, byte_order, word_order) == value  # type: ignore[arg-type]


@given(st.floats(allow_nan=False), ORDERS, ORDERS)
def test_float64_round_trips(value: float, byte_order: str, word_order: str) -> None:
    b = binding(type="float64")
    words = encode(value, b, byte_order, word_order)  # type: ignore[arg-type]
    assert decode(words, b, byte_order, word_order) == value  # type: ignore[arg-type]


def test_orders_are_the_ones_devices_document() -> None:
    """123456.0 as float32 is 0x47F12000: ABCD in big/big, CDAB with the words swapped,
    BADC with the bytes swapped, DCBA with both."""
    b = binding(type="float32")
    assert decode([0x47F1, 0x2000], b, "big", "big") == 123456.0
    assert decode([0x2000, 0x47F1], b, "big", "little") == 123456.0
    assert decode([0xF147, 0x0020], b, "little", "big") == 123456.0
    assert decode([0x0020, 0xF147], b, "little", "little") == 123456.0
    assert decode([0xFFFF], binding(type="int16"), "big", "big") == -1
    assert decode([0xFFFF], binding(), "big", "big") == 65535  # uint16 by default


def test_scale_offset_bits_and_strings() -> None:
    assert decode([235], binding(type="int16", scale=0.1), "big", "big") == pytest.approx(23.5)
    assert decode([10], binding(scale=2, offset=-1), "big", "big") == 19
    assert decode([0b1000], binding(bit=3), "big", "big") is True
    assert decode([0b0111], binding(bit=3), "big", "big") is False
    text = binding(type="string", length=4)
    assert decode(encode("RUN", text, "big", "big"), text, "big", "big") == "RUN"
    assert decode([0x5255, 0x4E20, 0, 0], text, "big", "big") == "RUN"
    halves = binding(type="int32", scale=0.5)
    assert decode(encode(12.5, halves, "big", "big"), halves, "big", "big") == 12.5
    with pytest.raises(DecodeError, match="not UTF-8"):
        decode([0xFFFE, 0, 0, 0], text, "big", "big")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"table": "coil", "type": "float32"}, "its type is bool, not float32"),
        ({"table": "coil", "bit": 2}, "'bit' and 'length' apply to registers"),
        ({"bit": 2, "type": "int16"}, "'bit' reads a boolean"),
        ({"type": "bool"}, "needs 'bit'"),
        ({"type": "string"}, "needs 'length'"),
        ({"type": "int32", "length": 2}, "'length' applies to type string"),
        ({"type": "string", "length": 2, "scale": 2}, "scale and offset apply to numbers"),
        ({"address": 65535, "type": "float32"}, "past 65535"),
        ({"address": -1}, "greater than or equal to 0"),
        ({"bit": 16}, "less than or equal to 15"),
    ],
)
def test_bindings_that_cannot_be_read_are_refused(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        binding(**fields)


@pytest.mark.parametrize(
    ("endpoint", "error"),
    [
        ("opc.tcp://h:4840", "is not modbus://host"),
        ("modbus://user:pw@h:502", "Modbus TCP has no login"),
        ("modbus://h:99999", "Port out of range"),
        ("modbus://h/path", "is not modbus://host"),
    ],
)
def test_endpoints_are_modbus_urls_without_a_login(endpoint: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ModbusSource.model_validate({"id": "plc", "kind": "modbus", "endpoint": endpoint})


def source(**fields: Any) -> ModbusSource:
    return ModbusSource.model_validate(
        {"id": "plc", "kind": "modbus", "endpoint": "modbus://h", **fields}
    )


def point(address: int, table: str = "holding", device_id: int = 1, **fields: Any) -> Point:
    return Point("p", f"s{address}", device_id, binding(address=address, table=table, **fields))


def test_neighbours_are_merged_up_to_the_gap_and_the_limit() -> None:
    points = [point(0), point(1, type="float32"), point(10), point(30), point(31, device_id=2)]
    reads = plan_reads(points, source(max_gap=8))
    assert [(r.device_id, r.table, r.address, r.count) for r in reads] == [
        (1, "holding", 0, 11),  # 0, 1-2, 10: gaps of 0 and 7
        (1, "holding", 30, 1),  # 19 past the last: a read of its own
        (2, "holding", 31, 1),  # another unit
    ]
    assert [p.signal for p in reads[0].points] == ["s0", "s1", "s10"]
    assert [(r.address, r.count) for r in plan_reads(points[:3], source(max_gap=0))] == [
        (0, 3),
        (10, 1),
    ]
    limited = plan_reads([point(a) for a in range(0, 300, 2)], source(max_gap=1))
    assert all(r.count <= 125 for r in limited)
    assert sum(len(r.points) for r in limited) == 150


def test_tables_are_never_mixed_and_bits_have_their_own_limit() -> None:
    points = [point(0), point(0, table="input"), *(point(a, table="coil") for a in range(3000))]
    reads = plan_reads(points, source())
    assert {r.table for r in reads} == {"holding", "input", "coil"}
    coils = [r for r in reads if r.table == "coil"]
    assert [r.count for r in coils] == [2000, 1000]


def test_a_refused_read_is_split_signal_by_signal() -> None:
    (read,) = plan_reads([point(0), point(0, bit=1), point(4), point(6)], source())
    parts = split(read)
    assert [(r.address, r.count, len(r.points)) for r in parts] == [(0, 1, 2), (4, 1, 1), (6, 1, 1)]
