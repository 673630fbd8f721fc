"""The baseline: how fast InfluxDB itself ingests ``sample`` points through ``/write``.

Bodies are built and gzip-compressed (level 1, as the collector's ``V1Writer`` sends them)
before the clock starts, so the figure is the database's ingest rate with a thin aiohttp
client, not the cost of making line protocol. Every point is distinct (series × time), so
nothing is an overwrite.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import time
from dataclasses import dataclass

import aiohttp

from bench.scaled_plant import ENTERPRISE, PLANT, parameter_id, process_id
from collector.storage.lineprotocol import StoredSample, sample_line

BATCH_LINES = 5000


class RawWriteError(RuntimeError):
    """InfluxDB refused a baseline write; the message has its answer."""


@dataclass(frozen=True)
class RawWriteResult:
    mode: str
    concurrency: int
    batches: int
    points: int
    seconds: float

    @property
    def points_per_s(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else 0.0


def make_bodies(
    batches: int,
    *,
    start_ns: int,
    series: int = 500,
    params_per_process: int = 5,
    interval_ns: int = 100_000_000,
    batch_lines: int = BATCH_LINES,
    seed: int = 1,
) -> list[bytes]:
    """``batches`` gzip bodies of ``batch_lines`` sample lines, shaped like the pipeline's.

    ``series`` signals are sampled every ``interval_ns`` from ``start_ns`` on; fields are
    what an edge sends (value, status, recv_ns, server_ns, edge, seq).
    """
    rng = random.Random(seed)
    names = [
        (process_id(i // params_per_process), parameter_id(i % params_per_process))
        for i in range(series)
    ]
    bodies = []
    point = 0
    for batch in range(batches):
        lines = []
        for _ in range(batch_lines):
            process, signal = names[point % series]
            ts = start_ns + (point // series) * interval_ns
            sample = StoredSample(
                enterprise=ENTERPRISE,
                plant=PLANT,
                line=f"line-{point % series // params_per_process // 20:03d}",
                process=process,
                signal=signal,
                ts_ns=ts,
                value=round(rng.uniform(0.0, 3000.0), 3),
                status=0,
                recv_ns=ts + rng.randrange(50_000_000, 600_000_000),
                server_ts_ns=ts + rng.randrange(0, 5_000_000),
                edge=f"edge-{PLANT}",
                seq=batch,
            )
            lines.append(sample_line(sample))
            point += 1
        bodies.append(gzip.compress("\n".join(lines).encode(), compresslevel=1))
    return bodies


async def send_bodies(
    url: str,
    database: str,
    bodies: list[bytes],
    *,
    concurrency: int = 1,
    batch_lines: int = BATCH_LINES,
    timeout: float = 60.0,
) -> RawWriteResult:
    """POST every body to ``/write`` with ``concurrency`` requests in flight; time it all."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    pending = list(reversed(bodies))
    params = {"db": database, "precision": "ns"}
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:

        async def worker() -> None:
            while pending:
                body = pending.pop()
                async with session.post(
                    f"{url}/write", params=params, data=body, headers=headers
                ) as response:
                    if response.status != 204:
                        text = (await response.read())[:500].decode(errors="replace")
                        raise RawWriteError(
                            f"{url}/write?db={database}: HTTP {response.status}: {text}"
                        )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    mode = "sequential" if concurrency == 1 else f"{concurrency} concurrent requests"
    return RawWriteResult(mode, concurrency, len(bodies), len(bodies) * batch_lines, elapsed)
