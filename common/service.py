"""Process plumbing shared by every service: logging and a clean stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # Library chatter at INFO would drown the lines a plant engineer needs.
    for noisy in ("asyncua", "aiohttp.access", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; the first SIGINT/SIGTERM sets ``stop``, a second one exits at once."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop.is_set():
                raise SystemExit(130)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await main(stop)

    asyncio.run(runner())


class ServiceFailed(RuntimeError):
    """A long-running task of a service ended: the process must exit (and be restarted)."""


async def wait_for_stop_or_failure(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Return when ``stop`` is set; raise ServiceFailed when a task ends on its own first.

    A service whose consumer or writer died must not keep answering health checks while
    it ingests nothing: a silent stall is worse than a restart.
    """
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        return
    stopper.cancel()
    task = next(iter(done))
    error = task.exception() if not task.cancelled() else None
    logging.getLogger(__name__).critical("task %s ended unexpectedly: %r", task.get_name(), error)
    raise ServiceFailed(f"task {task.get_name()} ended: {error!r}")
