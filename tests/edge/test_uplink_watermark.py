"""The watermark the uplink sends waits for a backfill: data a source may still deliver
for the past keeps the KPI from calling those windows final (docs/kpi.md, "Late data")."""

from __future__ import annotations

import time
from pathlib import Path

from common.endpoints import BrokerAddress
from edge.buffer import SampleBuffer
from edge.uplink import Uplink, UplinkIdentity
from tests.edge.test_buffer import config

S = 1_000_000_000


def uplink(tmp_path: Path, pending: list[int | None]) -> Uplink:
    identity = UplinkIdentity("e", "ent", "p1", "v1", 1, "s", "st", "h", ("opc",))
    return Uplink(
        identity,
        BrokerAddress("127.0.0.1", 1, False),
        SampleBuffer.open(config(tmp_path)),
        batch_max_samples=100,
        flush_interval=0.1,
        pending_since=lambda: pending[0],
    )


def test_the_watermark_stops_where_a_backfill_may_still_deliver(tmp_path: Path) -> None:
    pending: list[int | None] = [None]
    link = uplink(tmp_path, pending)
    before = time.time_ns()
    assert link.caught_up() >= before  # nothing pending: everything until now
    link.complete_until = before - 60 * S
    pending[0] = before - 30 * S  # live data stopped 30 s ago; its backfill is to come
    assert link.caught_up() == before - 30 * S
    pending[0] = before - 90 * S  # earlier than what was already vouched for: never back
    assert link.caught_up() == before - 60 * S
    pending[0] = None  # the backfill is done
    assert link.caught_up() >= before
