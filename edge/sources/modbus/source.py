"""One register Modbus TCP source: a device (or a gateway to several) polled over one
connection.

Every ``poll_interval`` the reads of ``plan.py`` are sent, at most ``requests_in_flight``
at a time, and each answer becomes one sample per signal, stamped with its arrival (Modbus
carries no source time). What a device answers instead of values is never made into a
value: an exception or a timeout is a sample with a Bad status and no value
(``status_for``), so the KPI sees the signal unreadable rather than silent, and the address
is reported by name once (``rejected``). An address the device refuses (exception 2) fails
the whole merged read: that read is split signal by signal for good, so one wrong address
costs only its own signal. A lost connection (refused, reset, or every read of a cycle
timing out) is liveness down, reconnected with capped jittered backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from common.protocols.modbus import ModbusSource as ModbusSourceConfig
from common.protocols.modbus import parse_modbus_endpoint
from common.protocols.modbus_codec import DecodeError, Decoder, decoder
from common.quality import BAD, BAD_NO_COMMUNICATION, GOOD
from common.wire import Sample
from edge.sources import Backoff, SourceSink, now_ns, stop_if_cancelled
from edge.sources.modbus.plan import Point, Read, plan_reads, split
from edge.sources.reports import Liveness, Refusals, poll_health

log = logging.getLogger(__name__)

BAD_TIMEOUT = 0x800A0000
BAD_DATA_ENCODING_INVALID = 0x80380000
_EXCEPTION_STATUS = {
    1: 0x803D0000,  # illegal function → BadNotSupported
    2: 0x80340000,  # illegal data address → BadNodeIdUnknown
    3: 0x803C0000,  # illegal data value → BadOutOfRange
    4: 0x808B0000,  # server device failure → BadDeviceFailure
    6: 0x80040000,  # server device busy → BadResourceUnavailable
    10: BAD_NO_COMMUNICATION,  # gateway path unavailable
    11: BAD_NO_COMMUNICATION,  # gateway target device failed to respond
}
ILLEGAL_DATA_ADDRESS = 2


Layout = list[tuple[str, str, int, int, Decoder, Point]]
"""Per point of a read: process, signal, its first and past-last register in the answer,
its decoder, the point (resolved once: a poll goes through every point)."""


def status_for(exception_code: int) -> int:
    """The OPC UA status a Modbus exception code stands for on a sample."""
    return _EXCEPTION_STATUS.get(exception_code, BAD)


@dataclass
class ModbusHealth:
    state: str = "starting"
    connects: int = 0
    failed_connects: int = 0
    cycles: int = 0
    reads: int = 0
    failed_reads: int = 0
    """Reads answered with an exception or not answered in time."""
    requests_per_cycle: int = 0
    last_cycle_s: float = 0.0
    last_error: str = ""
    refused: dict[str, str] = field(default_factory=dict)
    """Addresses the device answers with an exception, and why (first 100)."""


class ModbusTcpSource:
    def __init__(
        self,
        config: ModbusSourceConfig,
        points: Sequence[Point],
        *,
        endpoint: str | None = None,
        reconnect_max_delay: float = 30.0,
    ) -> None:
        self.id = config.id
        self.config = config
        self.endpoint = endpoint or config.endpoint
        self.host, self.port = parse_modbus_endpoint(self.endpoint)
        self.points = list(points)
        self.reads: list[tuple[Read, Layout]] = [
            (read, self._layout(read)) for read in plan_reads(self.points, config)
        ]
        self.backoff = Backoff(cap=reconnect_max_delay)
        self.stats = ModbusHealth(requests_per_cycle=len(self.reads))
        self.liveness = Liveness(self.id, log)
        self.refusals = Refusals(self.id, "Modbus source", log)
        self.stats.refused = self.refusals.named

    def _layout(self, read: Read) -> Layout:
        """Where each point's registers sit in ``read``'s answer, and its decoder."""
        order = (self.config.byte_order, self.config.word_order)
        return [
            (
                point.process,
                point.signal,
                point.binding.address - read.address,
                point.binding.address - read.address + point.binding.registers,
                decoder(point.binding, *order),
                point,
            )
            for point in read.points
        ]

    def health(self) -> dict[str, object]:
        return poll_health(self.endpoint, len(self.points), self.config.poll_interval, self.stats)

    async def run(self, sink: SourceSink) -> None:
        while True:
            client = AsyncModbusTcpClient(
                self.host,
                port=self.port,
                timeout=self.config.timeout,
                retries=0,
                reconnect_delay=0,  # reconnecting is this loop's, with its backoff
                name=f"modbus-{self.id}",
            )
            try:
                self.stats.state = "connecting"
                if not await client.connect():
                    raise ConnectionException(f"cannot connect to {self.host}:{self.port}")
                self.stats.connects += 1
                await self._poll(client, sink)
            except asyncio.CancelledError:
                self.liveness.report(sink, False, "stopped")
                raise
            except (ModbusException, OSError) as exc:
                self.stats.failed_connects += self.stats.state == "connecting"
                self.stats.last_error = f"Modbus source {self.id} ({self.endpoint}): {exc}"
                self.stats.state = "disconnected"
                self.liveness.report(sink, False, self.stats.last_error)
            finally:
                client.close()
            delay = self.backoff.next_delay()
            log.debug("Modbus source %s: reconnecting in %.1f s", self.id, delay)
            await asyncio.sleep(delay)

    async def _poll(self, client: AsyncModbusTcpClient, sink: SourceSink) -> None:
        interval = self.config.poll_interval
        next_cycle = time.monotonic()
        self.stats.state = "polling"
        while True:
            started = time.monotonic()
            answered = await self._cycle(client, sink)
            self.stats.cycles += 1
            self.stats.last_cycle_s = time.monotonic() - started
            if self.reads and not answered:
                raise ConnectionException("no read of the cycle was answered")
            self.backoff.reset()
            self.liveness.report(sink, True, "")
            next_cycle = max(next_cycle + interval, time.monotonic())
            await asyncio.sleep(next_cycle - time.monotonic())

    async def _cycle(self, client: AsyncModbusTcpClient, sink: SourceSink) -> int:
        """One poll of every read; how many were answered (with values or an exception)."""
        if self.config.requests_in_flight == 1:  # the common case: no task per request
            return sum([await self._read(client, planned, sink) for planned in list(self.reads)])
        gate = asyncio.Semaphore(self.config.requests_in_flight)

        async def one(planned: tuple[Read, Layout]) -> bool:
            async with gate:
                return await self._read(client, planned, sink)

        results = await asyncio.gather(*(one(planned) for planned in list(self.reads)))
        return sum(results)

    async def _read(
        self, client: AsyncModbusTcpClient, planned: tuple[Read, Layout], sink: SourceSink
    ) -> bool:
        read, layout = planned
        self.stats.reads += 1
        try:
            response = await _request(client, read)
        except ModbusIOException:  # no answer within the timeout
            self.stats.failed_reads += 1
            self._bad(read, BAD_TIMEOUT, sink)
            return False
        recv = now_ns()
        if isinstance(response, ExceptionResponse) or response.isError():
            self.stats.failed_reads += 1
            code = getattr(response, "exception_code", 0)
            if code == ILLEGAL_DATA_ADDRESS and len({p.binding.address for p in read.points}) > 1:
                self._split(planned)
                return True
            self._refused(read, code, sink)
            self._bad(read, status_for(code), sink, recv)
            return True
        if read.table in ("coil", "discrete"):
            bits = response.bits
            for process, signal, start, _, _, _ in layout:
                sink.sample(Sample(process, signal, recv, bits[start], GOOD, recv))
            return True
        words = response.registers
        report = sink.sample
        for process, signal, start, end, decode, point in layout:
            try:
                value = decode(words[start:end])
            except DecodeError as exc:
                self._reject(sink, point.name, str(exc), point)
                report(Sample(process, signal, recv, None, BAD_DATA_ENCODING_INVALID, recv))
                continue
            report(Sample(process, signal, recv, value, GOOD, recv))
        return True

    def _split(self, planned: tuple[Read, Layout]) -> None:
        """Read the points of a read one address range at a time from now on."""
        read, _ = planned
        index = self.reads.index(planned)
        parts = split(read)
        self.reads[index : index + 1] = [(part, self._layout(part)) for part in parts]
        self.stats.requests_per_cycle = len(self.reads)
        log.warning(
            "Modbus source %s: %s refused an address (exception 2); reading its %d signals "
            "one by one to find which",
            self.id,
            read.describe(),
            len(parts),
        )

    def _refused(self, read: Read, code: int, sink: SourceSink) -> None:
        reason = f"Modbus exception {code}"
        for point in read.points:
            if point.name not in self.refusals:
                self._reject(sink, point.name, f"{reason} ({point.process}.{point.signal})", point)

    def _reject(self, sink: SourceSink, culprit: str, reason: str, point: Point) -> None:
        self.refusals.refuse(sink, culprit, reason, [(point.process, point.signal)])

    def _bad(self, read: Read, status: int, sink: SourceSink, recv: int | None = None) -> None:
        recv = recv or now_ns()
        for point in read.points:
            sink.sample(Sample(point.process, point.signal, recv, None, status, recv))


async def _request(client: AsyncModbusTcpClient, read: Read) -> ModbusPDU:
    call = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }[read.table]
    response = await call(read.address, count=read.count, device_id=read.device_id)
    stop_if_cancelled()  # pymodbus's wait_for may have swallowed our cancellation
    return response
