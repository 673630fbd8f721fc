"""Which reads a poll makes (pure): signals merged into items, items packed into requests
that fit the PDU the CPU granted, and a refused item split by signal."""

from __future__ import annotations

from typing import Any

from common.protocols.s7 import S7SignalBinding, parse_address
from edge.sources.s7.plan import ANSWER_ITEM, HEADER, REQUEST_ITEM, Point, pack, plan_items, split


def point(signal: str, address: str, **fields: Any) -> Point:
    binding = S7SignalBinding.model_validate({"address": address, **fields})
    return Point("press", signal, parse_address(address), binding)


def test_neighbours_of_one_area_are_one_item_and_areas_never_mix() -> None:
    points = [
        point("a", "DB1.DBD0", type="real"),
        point("b", "DB1.DBW4"),
        point("c", "DB1.DBX6.1"),
        point("d", "DB1.DBX6.2"),  # the same byte as c
        point("e", "DB1.DBW40"),  # 34 bytes on: past the gap
        point("f", "DB2.DBW0"),
        point("g", "MW0"),
        point("h", "I0.0"),
    ]
    items = plan_items(points, max_gap=16, room=222)
    described = [(item.describe(), [p.signal for p in item.points]) for item in items]
    assert described == [
        ("IB0", ["h"]),
        ("MB0-1", ["g"]),
        ("DB1.DBB0-6", ["a", "b", "c", "d"]),
        ("DB1.DBB40-41", ["e"]),
        ("DB2.DBB0-1", ["f"]),
    ]


def test_an_item_never_grows_past_one_answer() -> None:
    points = [point(f"v{n}", f"DB1.DBD{4 * n}", type="real") for n in range(100)]
    items = plan_items(points, max_gap=16, room=222)
    assert [item.length for item in items] == [220, 180]
    assert sum(len(item.points) for item in items) == 100


def test_requests_fit_the_granted_pdu_both_ways_and_the_item_limit() -> None:
    scattered = [point(f"v{n}", f"DB{n + 1}.DBD0", type="real") for n in range(30)]
    items = plan_items(scattered, max_gap=0, room=222)
    for pdu, max_items in ((240, 20), (480, 20), (480, 8)):
        requests = pack(items, pdu, max_items)
        assert [i for r in requests for i in r.items] == items
        for request in requests:
            assert len(request.items) <= max_items
            assert HEADER + REQUEST_ITEM * len(request.items) <= pdu
            assert HEADER + sum(i.answer_bytes for i in request.items) <= pdu
    # 30 four-byte items: the answer (8 bytes each) allows 28 in 240, the request 18.
    assert [len(r.items) for r in pack(items, 240, 20)] == [18, 12]
    assert [len(r.items) for r in pack(items, 480, 20)] == [20, 10]
    big = plan_items([point("s", "DB1.DBB0", type="string", length=200)], 0, 222)
    # 14 + 206 for the string leaves room in an answer of 240 for two 8-byte items.
    assert [len(r.items) for r in pack(big + items[:3], 240, 20)] == [3, 1]
    assert big[0].answer_bytes == ANSWER_ITEM + 202


def test_a_refused_item_splits_into_one_item_per_byte_range() -> None:
    (item,) = plan_items(
        [
            point("a", "DB1.DBW0"),
            point("b", "DB1.DBX2.0"),
            point("c", "DB1.DBX2.5"),
            point("d", "DB1.DBW8"),
        ],
        max_gap=16,
        room=222,
    )
    parts = split(item)
    assert [(p.describe(), [q.signal for q in p.points]) for p in parts] == [
        ("DB1.DBB0-1", ["a"]),
        ("DB1.DBB2", ["b", "c"]),
        ("DB1.DBB8-9", ["d"]),
    ]
