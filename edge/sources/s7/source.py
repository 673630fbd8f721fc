"""One register S7 source: a PLC polled over one connection.

Every ``poll_interval`` the requests of ``plan.py`` are sent one after the other (a CPU
answers one request at a time per connection), and each answer becomes one sample per
signal, stamped with its arrival (S7 carries no source time). An item the CPU refuses
(a data block that does not exist, an address past its end, a block with optimized access)
is never made into a value: its signals get a Bad status and no value (``status_for``),
and the address is reported by name once. A refused item that merged several signals is
split signal by signal for good, so one wrong address costs only its own signal. A lost
connection (refused, reset, an answer that does not come within ``timeout``) is liveness
down, reconnected with capped jittered backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from common.protocols.s7 import S7Source as S7SourceConfig
from common.protocols.s7 import parse_s7_endpoint
from common.protocols.s7_codec import DecodeError, Decoder, decoder
from common.quality import BAD, GOOD
from common.wire import Sample
from edge.sources import Backoff, SourceSink, now_ns
from edge.sources.reports import Liveness, Refusals, poll_health
from edge.sources.s7.link import OK, S7ConnectionError, S7Link, S7ProtocolError, S7TimeoutError
from edge.sources.s7.plan import ANSWER_ITEM, HEADER, Item, Point, Request, pack, plan_items, split

log = logging.getLogger(__name__)

BAD_TIMEOUT = 0x800A0000
BAD_DATA_ENCODING_INVALID = 0x80380000
BAD_NODE_ID_UNKNOWN = 0x80340000
_ITEM_STATUS = {
    0x01: 0x808B0000,  # hardware fault → BadDeviceFailure
    0x03: 0x803A0000,  # access not allowed (optimized block access, protection) → BadNotReadable
    0x05: BAD_NODE_ID_UNKNOWN,  # address out of range
    0x06: 0x803D0000,  # data type not supported → BadNotSupported
    0x07: 0x80740000,  # data type inconsistent → BadTypeMismatch
    0x0A: BAD_NODE_ID_UNKNOWN,  # object does not exist (no such data block)
}
_ITEM_REASON = {
    0x01: "hardware fault",
    0x03: "access not allowed (a block with optimized access, or protection)",
    0x05: "address out of range",
    0x06: "data type not supported",
    0x07: "data type inconsistent",
    0x0A: "object does not exist",
}
_SPLITTABLE = {0x05, 0x0A}
"""Refusals that may come from one signal of a merged item: read it signal by signal."""

Layout = list[tuple[str, str, int, Decoder, Point]]
"""Per point of an item: process, signal, where its value starts in the item's bytes, its
decoder, the point (resolved once: a poll goes through every point)."""


def status_for(return_code: int) -> int:
    """The OPC UA status an S7 item return code stands for on a sample."""
    return _ITEM_STATUS.get(return_code, BAD)


@dataclass
class S7Health:
    state: str = "starting"
    connects: int = 0
    failed_connects: int = 0
    pdu_size: int = 0
    """What the CPU granted at the last connect."""
    cycles: int = 0
    requests: int = 0
    failed_items: int = 0
    """Items the CPU refused."""
    requests_per_cycle: int = 0
    last_cycle_s: float = 0.0
    last_error: str = ""
    refused: dict[str, str] = field(default_factory=dict)
    """Addresses the CPU refuses, and why (first 100)."""


class S7Source:
    def __init__(
        self,
        config: S7SourceConfig,
        points: Sequence[Point],
        *,
        endpoint: str | None = None,
        reconnect_max_delay: float = 30.0,
    ) -> None:
        self.id = config.id
        self.config = config
        self.endpoint = endpoint or config.endpoint
        self.host, self.port = parse_s7_endpoint(self.endpoint)
        self.points = list(points)
        self.backoff = Backoff(cap=reconnect_max_delay)
        self.stats = S7Health()
        self.items: list[Item] = []
        self._requests: list[tuple[Request, list[Layout]]] = []
        self.liveness = Liveness(self.id, log)
        self.refusals = Refusals(self.id, "S7 source", log)
        self.stats.refused = self.refusals.named

    def health(self) -> dict[str, object]:
        return poll_health(
            self.endpoint,
            len(self.points),
            self.config.poll_interval,
            self.stats,
            rack=self.config.rack,
            slot=self.config.slot,
        )

    def plan(self, pdu_size: int) -> None:
        """Group the signals for a CPU that granted ``pdu_size``."""
        room = pdu_size - HEADER - ANSWER_ITEM
        self.items = plan_items(self.points, self.config.max_gap, room)
        self._pack(pdu_size)

    def _pack(self, pdu_size: int) -> None:
        self._requests = [
            (request, [_layout(item) for item in request.items])
            for request in pack(self.items, pdu_size, self.config.max_items_per_read)
        ]
        self.stats.requests_per_cycle = len(self._requests)

    async def run(self, sink: SourceSink) -> None:
        config = self.config
        while True:
            link = S7Link(
                self.host, self.port, config.rack, config.slot, config.pdu_size, config.timeout
            )
            try:
                self.stats.state = "connecting"
                pdu_size = await link.open()
                self.stats.connects += 1
                if pdu_size != self.stats.pdu_size:
                    self.stats.pdu_size = pdu_size
                    self.plan(pdu_size)
                await self._poll(link, sink)
            except asyncio.CancelledError:
                self.liveness.report(sink, False, "stopped")
                raise
            except (S7ConnectionError, S7TimeoutError, S7ProtocolError, OSError) as exc:
                self.stats.failed_connects += self.stats.state == "connecting"
                self.stats.last_error = f"S7 source {self.id} ({self.endpoint}): {exc}"
                self.stats.state = "disconnected"
                self.liveness.report(sink, False, self.stats.last_error)
            finally:
                await link.close()
            delay = self.backoff.next_delay()
            log.debug("S7 source %s: reconnecting in %.1f s", self.id, delay)
            await asyncio.sleep(delay)

    async def _poll(self, link: S7Link, sink: SourceSink) -> None:
        interval = self.config.poll_interval
        next_cycle = time.monotonic()
        self.stats.state = "polling"
        while True:
            started = time.monotonic()
            for planned in list(self._requests):
                await self._read(link, planned, sink, link.pdu_size)
            self.stats.cycles += 1
            self.stats.last_cycle_s = time.monotonic() - started
            self.backoff.reset()
            self.liveness.report(sink, True, "")
            next_cycle = max(next_cycle + interval, time.monotonic())
            await asyncio.sleep(next_cycle - time.monotonic())

    async def _read(
        self,
        link: S7Link,
        planned: tuple[Request, list[Layout]],
        sink: SourceSink,
        pdu_size: int,
    ) -> None:
        request, layouts = planned
        self.stats.requests += 1
        try:
            results = await link.read(request)
        except S7TimeoutError:  # its samples say so; the connection is reopened
            recv = now_ns()
            for item in request.items:
                for point in item.points:
                    sink.sample(Sample(point.process, point.signal, recv, None, BAD_TIMEOUT, recv))
            raise
        recv = now_ns()
        report = sink.sample
        refused: list[Item] = []
        for item, layout, (code, data) in zip(request.items, layouts, results, strict=True):
            if code != OK:
                self.stats.failed_items += 1
                if code in _SPLITTABLE and len({p.span for p in item.points}) > 1:
                    refused.append(item)
                    continue
                self._refused(item, code, sink)
                status = status_for(code)
                for process, signal, _, _, _ in layout:
                    report(Sample(process, signal, recv, None, status, recv))
                continue
            for process, signal, at, decode, point in layout:
                try:
                    value = decode(data, at)
                except DecodeError as exc:
                    self._reject(sink, point.name, f"{exc} ({point.process}.{point.signal})", point)
                    report(Sample(process, signal, recv, None, BAD_DATA_ENCODING_INVALID, recv))
                    continue
                report(Sample(process, signal, recv, value, GOOD, recv))
        if refused:
            self._split(refused, pdu_size)

    def _split(self, refused: list[Item], pdu_size: int) -> None:
        """Read the signals of refused items one byte range at a time from now on (their
        signals get samples from the next cycle on)."""
        for item in refused:
            index = self.items.index(item)
            parts = split(item)
            self.items[index : index + 1] = parts
            log.warning(
                "S7 source %s: the CPU refused %s; reading its %d signals one by one to "
                "find which address",
                self.id,
                item.describe(),
                len(parts),
            )
        self._pack(pdu_size)

    def _refused(self, item: Item, code: int, sink: SourceSink) -> None:
        reason = _ITEM_REASON.get(code, f"return code 0x{code:02X}")
        for point in item.points:
            if point.name not in self.refusals:
                self._reject(sink, point.name, f"{reason} ({point.process}.{point.signal})", point)

    def _reject(self, sink: SourceSink, culprit: str, reason: str, point: Point) -> None:
        self.refusals.refuse(sink, culprit, reason, [(point.process, point.signal)])


def _layout(item: Item) -> Layout:
    return [
        (point.process, point.signal, point.where.byte - item.start, decoder(point.binding), point)
        for point in item.points
    ]
