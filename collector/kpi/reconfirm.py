"""Values a source re-sends after an outage. Pure.

When an OPC UA subscription is re-created, the server sends every monitored value again
with its *original* source timestamp; an MQTT broker re-delivers a device's retained
message the same way. Stored under the same timestamp, the re-sent sample overwrites the
first one, and its receive time (``recv_ns``) becomes the moment the edge got it again.

A value whose source went down after its source timestamp would stay unknown until it
next changes — hours, for an on-change machine state that did not change. But the source
re-sent it after coming back: it is known again from that moment. This module turns such
a receive time into an observation at that instant for the evaluator; nothing is stored,
so the rule is recomputable from the raw samples.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from collector.kpi.inputs import SignalSamples


def with_reconfirmations(data: SignalSamples, downs: list[int]) -> SignalSamples:
    """``data`` plus one observation at the receive time of each re-sent sample.

    A sample is re-sent when a down event of its source falls after its source time but
    before the edge (last) received it, and no newer sample came before that receipt.
    Only the last sample before each down can be such a sample, so the cost is per down
    event, not per sample.
    """
    if not data.recv or not downs or not data.ts:
        return data
    ts, recv = data.ts, data.recv
    extra: list[tuple[int, int]] = []  # (observation time, index of the re-sent sample)
    seen: set[int] = set()
    for down in downs:
        j = bisect_left(ts, down) - 1  # the value current when the source went down
        if j < 0 or j in seen:
            continue
        seen.add(j)
        received = recv[j]
        nxt = ts[j + 1] if j + 1 < len(ts) else None
        if received > down and (nxt is None or received < nxt):
            extra.append((received, j))
    if not extra:
        return data
    new_ts, new_status, new_value, new_recv = (
        list(ts),
        list(data.status),
        list(data.value),
        list(recv),
    )
    for at, j in sorted(extra, reverse=True):
        k = bisect_right(new_ts, at)
        new_ts.insert(k, at)
        new_status.insert(k, data.status[j])
        if data.value:
            new_value.insert(k, data.value[j])
        new_recv.insert(k, at)
    return SignalSamples(ts=new_ts, status=new_status, value=new_value, recv=new_recv)
