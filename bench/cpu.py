"""CPU time of processes and of the whole machine, read from /proc (Linux only).

A benchmark takes a snapshot before and after its measured window; the difference says
which process spent the CPU, and the machine's busy share says whether the cores were
saturated (on a 2-core machine the components compete for the same cores).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class CpuReadError(RuntimeError):
    """A /proc file could not be read (the process is gone, or this is not Linux)."""


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    path = Path(f"/proc/{pid}/stat")
    try:
        text = path.read_text()
    except OSError as exc:
        raise CpuReadError(f"{path}: {exc.strerror} (has process {pid} exited?)") from exc
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    # Fields 14 and 15 of proc(5) (utime, stime) are at 11 and 12 once pid and comm are cut.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (``VmHWM``) in MB; NaN once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from the first line of /proc/stat."""
    path = Path("/proc/stat")
    try:
        first = path.read_text().splitlines()[0]
    except (OSError, IndexError) as exc:
        raise CpuReadError(f"cannot read {path}: {exc}") from exc
    # user nice system idle iowait irq softirq steal (guest time is already in user).
    values = [int(v) for v in first.split()[1:9]]
    idle = values[3] + values[4]
    total = sum(values)
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    processes: dict[str, float]
    """Component name → CPU seconds so far."""
    machine_busy_s: float
    machine_total_s: float


def snapshot(pids: Mapping[str, int]) -> CpuSnapshot:
    busy, total = machine_cpu_s()
    return CpuSnapshot({name: process_cpu_s(pid) for name, pid in pids.items()}, busy, total)


@dataclass(frozen=True)
class CpuUsage:
    seconds: dict[str, float]
    """Component name → CPU seconds spent between the snapshots."""
    wall_s: float
    machine_busy: float
    """Share of all cores' time that was busy (0..1), whoever used it."""

    def core_share(self, name: str) -> float:
        """CPU seconds per wall second: 1.0 is one core fully used."""
        return self.seconds[name] / self.wall_s if self.wall_s > 0 else 0.0


def usage(before: CpuSnapshot, after: CpuSnapshot, wall_s: float) -> CpuUsage:
    seconds = {
        name: after.processes[name] - before.processes[name]
        for name in before.processes
        if name in after.processes
    }
    total = after.machine_total_s - before.machine_total_s
    busy = (after.machine_busy_s - before.machine_busy_s) / total if total > 0 else 0.0
    return CpuUsage(seconds, wall_s, busy)
