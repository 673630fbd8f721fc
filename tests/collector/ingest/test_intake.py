"""The consumer's intake: reading pauses at the limit, resumes at half, and goes on for a
reply whatever the intake holds."""

from __future__ import annotations

import asyncio

from collector.ingest.intake import Intake


class Reader:
    def __init__(self) -> None:
        self.paused = False
        self.calls: list[str] = []

    def pause(self) -> None:
        self.paused = True
        self.calls.append("pause")

    def resume(self) -> None:
        self.paused = False
        self.calls.append("resume")


def fill(intake: Intake, n: int) -> None:
    for k in range(n):
        intake.put("t", str(k).encode(), 1, k + 1)


async def test_reading_pauses_at_the_limit_and_resumes_once_half_is_taken() -> None:
    reader, pauses = Reader(), []
    intake = Intake(reader, 4, on_pause=lambda: pauses.append(1))
    fill(intake, 3)
    assert not reader.paused
    fill(intake, 2)  # the socket's last chunk may bring more than the limit
    assert reader.paused and len(pauses) == 1 and len(intake) == 5
    taken = [await intake.get() for _ in range(2)]
    assert [m.payload for m in taken if m] == [b"0", b"1"]
    assert reader.paused  # three left, above half
    await intake.get()
    assert not reader.paused  # two left: half
    assert len(pauses) == 1


async def test_a_reply_is_read_whatever_the_intake_holds() -> None:
    reader = Reader()
    intake = Intake(reader, 2)
    fill(intake, 2)
    assert reader.paused
    with intake.reading_for_reply():
        assert not reader.paused
        fill(intake, 5)  # what came before the reply
        assert not reader.paused
    assert reader.paused  # still full after the reply
    for _ in range(7):
        await intake.get()
    assert not reader.paused
    with intake.reading_for_reply():
        pass
    assert not reader.paused  # nothing held: no reason to pause


async def test_after_stop_reading_nothing_is_read_but_replies() -> None:
    reader = Reader()
    intake = Intake(reader, 4)
    fill(intake, 1)
    intake.stop_reading()
    assert reader.paused
    await intake.get()
    assert reader.paused  # drained, still stopped
    with intake.reading_for_reply():
        assert not reader.paused
    assert reader.paused


async def test_get_waits_for_a_message_and_a_closed_intake_gives_none() -> None:
    intake = Intake(Reader(), 4)
    waiting = asyncio.create_task(intake.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    fill(intake, 1)
    message = await waiting
    assert message is not None and message.mid == 1
    fill(intake, 2)
    intake.close()
    assert len(intake) == 0
    assert await intake.get() is None
