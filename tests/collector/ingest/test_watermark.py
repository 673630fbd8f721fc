"""The edge's watermark as the collector stores it."""

from __future__ import annotations

from collector.ingest.pipeline import stored_watermark

S = 1_000_000_000


def test_a_batch_the_broker_held_back_claims_no_more_than_it_carried() -> None:
    # Sent (and caught up) at the edge's 1000 s, queued by the broker during an outage and
    # received at our 1043 s: it vouches for what the edge had until 1000 s, not 1043 s.
    assert stored_watermark(1000 * S, 1043 * S) == 1000 * S


def test_an_edge_clock_ahead_cannot_vouch_for_our_future() -> None:
    assert stored_watermark(2000 * S, 1000 * S) == 1000 * S
