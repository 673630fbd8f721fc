"""Which reads one poll makes (pure): the signals of a PLC merged into items (one area, one
range of bytes), the items packed into requests that fit the PDU size the CPU negotiated.

One S7 read request carries up to 20 items, and both it and its answer must fit the PDU:
12 header and 2 parameter bytes, then 12 bytes per item in the request and 4 header bytes
plus the data (padded to even) per item in the answer. Signals of one area within
``max_gap`` bytes of each other are one item (what lies between is read and dropped). An
address the CPU refuses fails its whole item, so the reader re-plans such an item signal by
signal (``split``) and packs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.protocols.s7 import S7Address, S7SignalBinding

HEADER = 12 + 2
"""S7 header and the read's function and item count, in a request and in its answer."""
REQUEST_ITEM = 12
"""One item's address specification in a request."""
ANSWER_ITEM = 4
"""One item's return code, transport size and length in an answer, before its data."""


@dataclass(frozen=True)
class Point:
    """One signal of the source, resolved: where it is and how many bytes it spans."""

    process: str
    signal: str
    where: S7Address
    binding: S7SignalBinding

    @property
    def name(self) -> str:
        return self.binding.address

    @property
    def span(self) -> tuple[int, int]:
        """[first, past-last) byte."""
        return self.where.byte, self.where.byte + self.binding.size


@dataclass(frozen=True)
class Item:
    """One contiguous range of bytes of one area read in a request."""

    area: int
    db: int
    start: int
    length: int
    points: tuple[Point, ...]

    def describe(self) -> str:
        where = self.points[0].where
        prefix = f"DB{self.db}.DBB" if self.db else f"{where.area_name}B"
        last = self.start + self.length - 1
        return f"{prefix}{self.start}" + (f"-{last}" if last > self.start else "")

    @property
    def answer_bytes(self) -> int:
        return ANSWER_ITEM + self.length + self.length % 2


@dataclass(frozen=True)
class Request:
    items: tuple[Item, ...]


def plan_items(points: Sequence[Point], max_gap: int, room: int) -> list[Item]:
    """Points merged into items of at most ``room`` bytes (one answer's data)."""
    groups: dict[tuple[int, int], list[Point]] = {}
    for point in points:
        groups.setdefault((point.where.area, point.where.db), []).append(point)
    items: list[Item] = []
    for (area, db), members in sorted(groups.items()):
        members.sort(key=lambda p: p.span)
        current: list[Point] = []
        start = end = 0  # [start, end) of the current item
        for point in members:
            first, stop = point.span
            if current and first - end <= max_gap and max(end, stop) - start <= room:
                current.append(point)
                end = max(end, stop)
                continue
            if current:
                items.append(Item(area, db, start, end - start, tuple(current)))
            current, start, end = [point], first, stop
        if current:
            items.append(Item(area, db, start, end - start, tuple(current)))
    return items


def pack(items: Sequence[Item], pdu_size: int, max_items: int) -> list[Request]:
    """Items in order, as few requests as fit the PDU both ways and ``max_items`` each."""
    requests: list[Request] = []
    current: list[Item] = []
    asked = answered = HEADER
    for item in items:
        fits = (
            len(current) < max_items
            and asked + REQUEST_ITEM <= pdu_size
            and answered + item.answer_bytes <= pdu_size
        )
        if current and not fits:
            requests.append(Request(tuple(current)))
            current, asked, answered = [], HEADER, HEADER
        current.append(item)
        asked += REQUEST_ITEM
        answered += item.answer_bytes
    if current:
        requests.append(Request(tuple(current)))
    return requests


def split(item: Item) -> list[Item]:
    """``item`` as one item per distinct byte range of its points."""
    by_span: dict[tuple[int, int], list[Point]] = {}
    for point in item.points:
        by_span.setdefault(point.span, []).append(point)
    return [
        Item(item.area, item.db, first, stop - first, tuple(points))
        for (first, stop), points in sorted(by_span.items())
    ]
