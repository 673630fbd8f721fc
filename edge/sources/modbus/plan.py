"""Which reads one poll makes (pure): the signals of a source grouped by device and table,
neighbours merged into one request up to the source's limits.

Modbus answers at most 125 registers or 2,000 bits per read. Signals whose addresses lie
within ``max_gap`` of each other are read in one request (what lies between is read and
dropped): one request for a device's 60 registers instead of 30, which is what bounds a
poll cycle on a slow link. An address the device refuses (exception 2) fails the whole
request, so the reader re-plans such a read signal by signal (``split``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.protocols.modbus import ModbusSignalBinding, ModbusSource


@dataclass(frozen=True)
class Point:
    """One register signal of the source, resolved: which device and what to decode."""

    process: str
    signal: str
    device_id: int
    binding: ModbusSignalBinding

    @property
    def name(self) -> str:
        table = self.binding.table
        return f"{table} {self.binding.address} (device {self.device_id})"


@dataclass(frozen=True)
class Read:
    device_id: int
    table: str
    address: int
    count: int
    points: tuple[Point, ...]

    def describe(self) -> str:
        last = self.address + self.count - 1
        span = f"{self.address}" if self.count == 1 else f"{self.address}-{last}"
        return f"{self.table} {span} (device {self.device_id})"


def plan_reads(points: Sequence[Point], source: ModbusSource) -> list[Read]:
    groups: dict[tuple[int, str], list[Point]] = {}
    for point in points:
        groups.setdefault((point.device_id, point.binding.table), []).append(point)
    reads: list[Read] = []
    for (device_id, table), members in sorted(groups.items()):
        limit = (
            source.max_bits_per_read
            if table in ("coil", "discrete")
            else source.max_registers_per_read
        )
        members.sort(key=lambda p: (p.binding.address, p.binding.registers))
        current: list[Point] = []
        start = end = 0  # [start, end) of the current read
        for point in members:
            first, stop = point.binding.address, point.binding.address + point.binding.registers
            if current and first - end <= source.max_gap and max(end, stop) - start <= limit:
                current.append(point)
                end = max(end, stop)
                continue
            if current:
                reads.append(Read(device_id, table, start, end - start, tuple(current)))
            current, start, end = [point], first, stop
        if current:
            reads.append(Read(device_id, table, start, end - start, tuple(current)))
    return reads


def split(read: Read) -> list[Read]:
    """``read`` as one read per distinct address range of its points."""
    by_range: dict[tuple[int, int], list[Point]] = {}
    for point in read.points:
        key = (point.binding.address, point.binding.registers)
        by_range.setdefault(key, []).append(point)
    return [
        Read(read.device_id, read.table, address, count, tuple(points))
        for (address, count), points in sorted(by_range.items())
    ]
