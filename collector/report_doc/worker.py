"""The report's own worker thread: the CPU-bound parts of a report (the figures from what
InfluxDB answered, their digest, the PDF and the XLSX) run there, never on the event loop
and never in the default executor the KPI loop and the other routes share.

One thread: WeasyPrint's fonts (Pango's font map) are shared by the whole process, and two
reports at once would only share the same cores; a report waits for the one before it.
The API also bounds how many reports it makes at once (``collector/api/routes/report_doc``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["THREAD_NAME", "WORKER", "in_worker"]

THREAD_NAME = "report-doc"
WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
"""Its thread is started on the first report and named ``report-doc_0``."""

P = ParamSpec("P")
T = TypeVar("T")


async def in_worker(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in the report's worker thread, awaited."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(WORKER, functools.partial(fn, *args, **kwargs))
