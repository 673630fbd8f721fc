"""What every source reports alike: liveness changes once each, refusals once each (also
past the hundred the health report names)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from edge.sources import stop_if_cancelled
from edge.sources.reports import REFUSALS_LISTED, Liveness, Refusals
from tests.edge.source_kit import RecordingSink

log = logging.getLogger("test")


def test_liveness_reports_each_change_once() -> None:
    sink = RecordingSink()
    liveness = Liveness("plc", log)
    for up, detail in [
        (False, "refused"),
        (False, "refused"),
        (True, ""),
        (True, ""),
        (False, "x"),
    ]:
        liveness.report(sink, up, detail)
    assert [(e.up, e.detail) for e in sink.events] == [(False, "refused"), (True, ""), (False, "x")]


def test_each_refusal_is_reported_once_even_past_the_named_hundred() -> None:
    sink = RecordingSink()
    refusals = Refusals("plc", "S7 source", log)
    for _ in range(2):  # every poll cycle refuses the same addresses again
        for n in range(REFUSALS_LISTED + 20):
            refusals.refuse(sink, f"DB9.DBW{2 * n}", "object does not exist", [("p", f"s{n}")])
    assert len(sink.rejections) == REFUSALS_LISTED + 20
    assert len(refusals.named) == REFUSALS_LISTED
    assert f"DB9.DBW{2 * (REFUSALS_LISTED + 5)}" in refusals


async def test_a_swallowed_cancellation_still_stops_a_reader() -> None:
    """What a library's 3.11 wait_for does when a cancellation meets its answer: returns
    the answer, the cancellation requested but not raised. The reader's check raises it."""
    reached: list[str] = []

    async def reader() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # requested while "inside the library": not delivered yet
        reached.append("answer")
        stop_if_cancelled()
        reached.append("went on")  # pragma: no cover - must not be reached

    task = asyncio.create_task(reader())
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert reached == ["answer"] and task.cancelled()
