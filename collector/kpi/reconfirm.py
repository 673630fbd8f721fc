"""Values a source re-sends after an outage. Pure.

When an OPC UA subscription is re-created, the server sends every monitored value again
with its *original* source timestamp; an MQTT broker re-delivers a device's retained
message the same way. Stored under the same timestamp, the re-sent sample overwrites the
first one, and its receive time (``recv_ns``) becomes the moment the edge got it again.

A value whose source went down after its source timestamp would stay unknown until it
next changes — hours, for an on-change machine state that did not change. But the source
re-sent it after coming back: it is known again from that moment.

Every receipt of a re-sent value is stored as a ``reconfirm`` point of its own, stamped
with its receive time (``collector.storage.lineprotocol.RECONFIRM_MIN_AGE_NS``), so a
second re-send cannot erase the first: after each down event, the first receipt of the
value current at the down (and before the signal's next sample) makes it known again from
that receipt. The sample's own ``recv_ns`` counts as one more receipt (for data stored
before those points existed). A receipt less than ``RECONFIRM_MIN_AGE_NS`` after the
sample's source time is ordinary delivery, not a re-send, and never re-confirms: those
receipts have no point of their own, so counting the one ``recv_ns`` happens to keep
would make the answer depend on whether a later re-send overwrote it. This module turns
the receipts into observations for the evaluator; it reads only what is stored, so the
rule is recomputable.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from collector.kpi.inputs import SignalSamples
from collector.storage.lineprotocol import RECONFIRM_MIN_AGE_NS


def with_reconfirmations(data: SignalSamples, downs: list[int], hold: int) -> SignalSamples:
    """``data`` plus one observation at the first receipt after each down event.

    A receipt re-confirms the value current at a down when it comes after the down, before
    the signal's next sample and within the signal's hold limit ``hold`` of the value's
    source time (a value older than that was no longer known anyway). The last bound also
    keeps the rule local: what a receipt at ``t`` does depends only on samples after
    ``t - hold``, so a slice of a window and the whole window agree. Only the last sample
    before each down can be re-confirmed, so the cost is per down event, not per sample.
    """
    if not downs or not data.ts or not (data.recv or data.reconfirmed):
        return data
    ts, recv = data.ts, data.recv
    receipts: dict[int, list[int]] = {}
    for at, of in data.reconfirmed:
        receipts.setdefault(of, []).append(at)
    for times in receipts.values():
        times.sort()
    extra: dict[int, int] = {}  # observation time → index of the re-sent sample
    for down in downs:
        j = bisect_left(ts, down) - 1  # the value current when the source went down
        if j < 0:
            continue
        nxt = ts[j + 1] if j + 1 < len(ts) else None
        candidates = []
        times = [t for t in receipts.get(ts[j], ()) if RECONFIRM_MIN_AGE_NS <= t - ts[j] < hold]
        if times:
            k = bisect_right(times, down)
            if k < len(times):
                candidates.append(times[k])
        if recv and recv[j] > down and RECONFIRM_MIN_AGE_NS <= recv[j] - ts[j] < hold:
            candidates.append(recv[j])
        if not candidates:
            continue
        first = min(candidates)
        if nxt is None or first < nxt:
            extra.setdefault(first, j)
    if not extra:
        return data
    new_ts, new_status, new_value, new_recv = (
        list(ts),
        list(data.status),
        list(data.value),
        list(recv),
    )
    for at, j in sorted(extra.items(), reverse=True):
        k = bisect_right(new_ts, at)
        new_ts.insert(k, at)
        new_status.insert(k, data.status[j])
        if data.value:
            new_value.insert(k, data.value[j])
        if recv:
            new_recv.insert(k, at)
    return SignalSamples(ts=new_ts, status=new_status, value=new_value, recv=new_recv)
