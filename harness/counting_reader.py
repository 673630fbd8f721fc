"""The project's reader, counting the raw samples it reads (benchmarks, tests of what is read)."""

from __future__ import annotations

from collections.abc import Sequence

from collector.storage.reader import InfluxQLReader, SignalColumns


class CountingReader(InfluxQLReader):
    read = 0
    """Samples returned by ``samples``."""
    calls = 0
    """Calls of ``samples``."""

    async def samples(
        self,
        start_ns: int,
        end_ns: int,
        lookback_ns: int,
        enterprise: str,
        plant: str | None = None,
        processes: Sequence[str] | None = None,
    ) -> dict[tuple[str, str], SignalColumns]:
        found = await super().samples(start_ns, end_ns, lookback_ns, enterprise, plant, processes)
        self.calls += 1
        self.read += sum(len(columns) for columns in found.values())
        return found
