"""The edge's watermark, moved to the collector's clock (KPI windows are on it)."""

from __future__ import annotations

from collector.ingest.pipeline import watermark_on_our_clock

S = 1_000_000_000


def test_an_edge_clock_behind_ours_is_corrected_by_the_offset_of_its_batch() -> None:
    # The edge's clock runs 30 s behind: it sent at its 1000 s, we received at our 1030 s,
    # and it had delivered everything up to its 998 s: our 1028 s.
    assert watermark_on_our_clock(998 * S, 1000 * S, 1030 * S) == 1028 * S


def test_an_edge_clock_ahead_cannot_vouch_for_our_future() -> None:
    assert watermark_on_our_clock(2000 * S, 2000 * S, 1000 * S) == 1000 * S
    assert watermark_on_our_clock(2000 * S, 1999 * S, 1000 * S) == 1000 * S
