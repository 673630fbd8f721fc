"""The ledger: every sample the simulators delivered, so a test can count it in the database.

A sample is recorded once it is on the wire: after the OPC UA write (the server's value
changed, so a subscription sees it) or after the MQTT publish was acknowledged (QoS 1).
Records are JSON lines ``{"source", "process", "signal", "ts", "value", "status"}`` with
``ts`` the source timestamp in ns exactly as the receiving side will see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import IO, NamedTuple

Value = float | int | str | bool | None


class LedgerRecord(NamedTuple):
    source: str
    process: str
    signal: str
    ts: int
    """Source timestamp, ns since the epoch, as the receiver decodes it."""
    value: Value
    status: int

    @property
    def ts_ns(self) -> int:
        """The same as ``ts`` (the name callers that spell out units use)."""
        return self.ts


class Ledger:
    """Collects records; writes them to ``path`` (if given) every ``flush_interval`` seconds.

    ``keep=True`` also keeps every record in memory (``records``) for in-process tests.
    """

    def __init__(
        self, path: str | Path | None = None, *, keep: bool = False, flush_interval: float = 0.5
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.keep = keep
        self.flush_interval = flush_interval
        self.records: list[LedgerRecord] = []
        self.count = 0
        self._pending: list[str] = []
        self._file: IO[str] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closing = asyncio.Event()

    async def start(self) -> None:
        if self.path is not None and self._file is None:
            self._file = await asyncio.to_thread(self.path.open, "w", encoding="utf-8")
            self._flusher = asyncio.create_task(self._flush_loop(), name="ledger-flush")

    def record(
        self, source: str, process: str, signal: str, ts: int, value: Value, status: int
    ) -> None:
        self.count += 1
        if self.keep:
            self.records.append(LedgerRecord(source, process, signal, ts, value, status))
        if self.path is not None:
            self._pending.append(
                json.dumps(
                    {
                        "source": source,
                        "process": process,
                        "signal": signal,
                        "ts": ts,
                        "value": value,
                        "status": status,
                    },
                    separators=(",", ":"),
                )
            )

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending or self._file is None:
                return
            lines, self._pending = self._pending, []
            # File I/O blocks: keep it off the event loop.
            await asyncio.to_thread(_write_lines, self._file, lines)

    async def close(self) -> None:
        if self._flusher is not None:
            # Not cancelled: a write running in a thread would race the close below.
            self._closing.set()
            await self._flusher
            self._flusher = None
        await self.flush()
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None

    async def _flush_loop(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._closing.wait()
            await self.flush()


def _write_lines(file: IO[str], lines: list[str]) -> None:
    file.write("\n".join(lines) + "\n")
    file.flush()


def read_ledger(path: str | Path) -> list[LedgerRecord]:
    """Load a ledger file written by ``Ledger`` (blocking; for tests and tools)."""
    records = []
    with Path(path).open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                records.append(
                    LedgerRecord(
                        data["source"],
                        data["process"],
                        data["signal"],
                        data["ts"],
                        data["value"],
                        data["status"],
                    )
                )
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{number}: not a ledger record: {exc}") from None
    return records
