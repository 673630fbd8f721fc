"""Recomputed = live for every sequence of re-sends (hypothesis).

A model of storage as the collector keeps it: a ``sample`` point per source time whose
``recv_ns`` every re-send overwrites, a ``reconfirm`` point per receipt at least
``RECONFIRM_MIN_AGE_NS`` after the source time, and the source's liveness events. An
on-change state signal changes a few times; its source is lost and comes back, and after
each return it re-sends its current value, once or several times (redelivered batches),
promptly or late. Each window is evaluated "live" from what storage held a lag after its
end, and again at the very end from everything: the two must be identical — status,
reasons, every share, the outage evidence.

Bounded by default (``ci`` profile, tests/fuzz/profiles.py); ``HYPOTHESIS_PROFILE=long``
runs many more examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from collector.kpi import SignalSamples, SourceEvent, Window, evaluate
from collector.storage.lineprotocol import RECONFIRM_MIN_AGE_NS
from common.quality import GOOD
from tests.collector.kpi.kpi_testkit import DEFAULTS, at
from tests.fuzz.profiles import fuzz
from tests.registers import process, register, sig

MS = 1_000_000
LAG = 3_000 * MS
REGISTER = register([process(signals=[sig("state", role="state", update="on_change")])])


@dataclass
class Receipt:
    ts: int
    """Source time of the value."""
    recv: int
    """When the edge received it (this receipt)."""


@dataclass
class Storage:
    receipts: list[Receipt] = field(default_factory=list)
    events: list[SourceEvent] = field(default_factory=list)

    def as_of(self, t: int) -> tuple[SignalSamples, list[SourceEvent]]:
        """What InfluxDB holds at ``t``: one point per source time with its latest receipt,
        a reconfirm point per late receipt, the events so far."""
        latest: dict[int, int] = {}
        late: list[tuple[int, int]] = []
        for r in sorted(self.receipts, key=lambda r: r.recv):
            if r.recv > t:
                continue
            latest[r.ts] = r.recv
            if r.recv - r.ts >= RECONFIRM_MIN_AGE_NS:
                late.append((r.recv, r.ts))
        ts = sorted(latest)
        samples = SignalSamples(
            ts=ts,
            status=[GOOD] * len(ts),
            value=["RUNNING"] * len(ts),
            recv=[latest[x] for x in ts],
            reconfirmed=sorted(set(late)),
        )
        return samples, [e for e in self.events if e.ts <= t]


@st.composite
def histories(draw: st.DrawFn) -> Storage:
    """Value changes and outages on a 200 s timeline, outages between changes."""
    storage = Storage()
    t = at(-20) + draw(st.integers(0, 5_000)) * MS
    current = t
    storage.receipts.append(Receipt(t, t))
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):  # the value changes (received at once)
            t += draw(st.integers(1, 30_000)) * MS
            current = t
            storage.receipts.append(Receipt(t, t))
            continue
        down = t + draw(st.integers(1, 20_000)) * MS
        back = down + draw(st.integers(1, 20_000)) * MS
        storage.events.append(SourceEvent(down, False, "connection lost"))
        storage.events.append(SourceEvent(back, True, "connected"))
        resend = back
        for _ in range(draw(st.integers(0, 3))):  # re-sends, some after a further delay
            resend += draw(st.integers(0, 4_000)) * MS
            for _ in range(draw(st.integers(1, 2))):  # a redelivered batch: the same receipt
                storage.receipts.append(Receipt(current, resend))
        t = resend
    return storage


def _state_of(win: Window, samples: SignalSamples, events: list[SourceEvent]) -> dict[str, object]:
    """The state machine's result in ``win`` from one view of storage."""
    evaluation = evaluate(
        REGISTER, win, {("p1", "state"): samples}, {("pl", "opc"): events}, DEFAULTS
    )
    return evaluation.process("p1").to_dict()


@given(histories(), st.integers(20, 60))
@fuzz
def test_recompute_equals_live_for_every_sequence_of_re_sends(
    storage: Storage, window_s: int
) -> None:
    final = storage.as_of(at(10_000))
    for end_s in range(0, 220, 7):
        win = Window(at(end_s - window_s), at(end_s))
        live = storage.as_of(win.end_ns + LAG)
        assert _state_of(win, *live) == _state_of(win, *final), end_s
