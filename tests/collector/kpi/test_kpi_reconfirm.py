"""A value re-sent after an outage (OPC UA re-subscription, MQTT retained message) keeps its
source time; its later receive time makes it known again from then on."""

from __future__ import annotations

from collector.kpi.inputs import SignalSamples
from collector.kpi.reconfirm import with_reconfirmations

S = 1_000_000_000
HOLD = 43_200 * S
"""The on-change hold limit (12 h): every receipt of these tests is well inside it."""


def test_value_received_again_after_a_down_is_known_from_that_receipt() -> None:
    data = SignalSamples(ts=[0], status=[0], value=["RUNNING"], recv=[50 * S])
    out = with_reconfirmations(data, downs=[30 * S], hold=HOLD)
    assert out.ts == [0, 50 * S]
    assert out.value == ["RUNNING", "RUNNING"] and out.status == [0, 0]


def test_no_down_or_no_later_receipt_changes_nothing() -> None:
    data = SignalSamples(ts=[0, 10 * S], status=[0, 0], value=[1, 2], recv=[0, 10 * S])
    assert with_reconfirmations(data, downs=[], hold=HOLD) is data
    assert with_reconfirmations(data, downs=[20 * S], hold=HOLD) is data  # never re-sent
    assert with_reconfirmations(SignalSamples(ts=[0], status=[0]), downs=[S], hold=HOLD).ts == [0]


def test_a_newer_sample_before_the_receipt_wins() -> None:
    # Re-sent at 50 s but a new value arrived at 40 s: the re-send says nothing new.
    data = SignalSamples(ts=[0, 40 * S], status=[0, 0], value=[1, 2], recv=[50 * S, 40 * S])
    assert with_reconfirmations(data, downs=[30 * S], hold=HOLD).ts == [0, 40 * S]


def test_each_outage_is_judged_on_its_own() -> None:
    data = SignalSamples(
        ts=[0, 100 * S], status=[0, 0x80000000], value=[1, 2], recv=[20 * S, 150 * S]
    )
    out = with_reconfirmations(data, downs=[10 * S, 120 * S], hold=HOLD)
    assert out.ts == [0, 20 * S, 100 * S, 150 * S]
    assert out.status == [0, 0, 0x80000000, 0x80000000]


def test_a_receipt_beyond_the_hold_limit_of_the_value_does_not_reconfirm_it() -> None:
    # Value of t=0 held 60 s: a re-send at 59 s re-confirms it, one at 60 s does not (the
    # value was no longer known; the bound keeps each receipt's effect local in time).
    data = SignalSamples(ts=[0], status=[0], reconfirmed=[(59 * S, 0)])
    assert with_reconfirmations(data, downs=[30 * S], hold=60 * S).ts == [0, 59 * S]
    late = SignalSamples(ts=[0], status=[0], reconfirmed=[(60 * S, 0)])
    assert with_reconfirmations(late, downs=[30 * S], hold=60 * S).ts == [0]
    by_recv = SignalSamples(ts=[0], status=[0], recv=[60 * S])
    assert with_reconfirmations(by_recv, downs=[30 * S], hold=60 * S).ts == [0]
