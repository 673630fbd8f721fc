"""What an edge agent's births and Last Wills say about acquisition. Pure.

The collector stores every state message of an edge agent as an ``_edge`` liveness event,
stamped when it arrived, with the agent's ``boot`` (start time), ``link`` (uplink connection
number within that boot) and ``shutdown`` (it said goodbye). A death message asserts
different things:

* ``shutdown``: the agent stopped acquiring. Its values end there.
* a Last Will: only that uplink connection ``link`` was lost. Whether acquisition went on
  is told by what follows, in the edge's own order (boot, link), never by arrival time:

  - a birth of the same boot on a later link: the agent lived on, kept acquiring and
    buffering, and delivered afterwards (an *uplink gap*): no down at all. A Will the
    broker delivers late — from a persistent session's queue or its retained store, even
    after that birth — is resolved the same way;
  - an event of a newer boot: the agent died. Its values end at the Will, or at the
    first event of the newer boot if that came first;
  - nothing yet: unresolved, read as a down (the values end) until something follows.

* legacy events without a boot (edges older than these fields): every death is a down.

An agent whose boot changes with no death of the old boot stored (its Will was lost with
a broker killed at the same time) died before the new boot's first event: a down there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.kpi.inputs import SourceEvent

__all__ = ["EdgeDown", "edge_downs"]


@dataclass(frozen=True)
class EdgeDown:
    """A moment the edge agent's acquisition ended, and why."""

    ts: int
    detail: str
    resolved: bool
    """False while only a Last Will says so (the agent may still be buffering)."""


def edge_downs(events: Sequence[SourceEvent]) -> list[EdgeDown]:
    """The downs that end an edge agent's values, sorted by time.

    ``events`` are every stored ``_edge`` event of one plant, sorted by time; include
    those after the evaluated window (what came later resolves a Will).
    """
    first_of_boot: dict[int, int] = {}
    top_up_link: dict[int, int] = {}
    for e in events:
        if e.boot:
            first_of_boot.setdefault(e.boot, e.ts)
            if e.up:
                top_up_link[e.boot] = max(top_up_link.get(e.boot, 0), e.link)
    # For each boot, the first stored event of any newer boot (None: no newer boot yet).
    next_boot_at: dict[int, int | None] = {}
    running: int | None = None
    for boot in sorted(first_of_boot, reverse=True):
        next_boot_at[boot] = running
        first = first_of_boot[boot]
        running = first if running is None else min(running, first)

    downs: dict[int, EdgeDown] = {}

    def add(down: EdgeDown) -> None:
        known = downs.get(down.ts)
        if known is None or (down.resolved and not known.resolved):
            downs[down.ts] = down

    for e in events:
        if e.up:
            continue
        if not e.boot or e.shutdown:
            add(EdgeDown(e.ts, e.detail or "edge agent offline", True))
            continue
        if top_up_link.get(e.boot, -1) > e.link:
            continue  # the same agent came back on a later link: an uplink gap
        newer = next_boot_at.get(e.boot)
        if newer is not None:
            add(EdgeDown(min(e.ts, newer), e.detail or "edge agent died", True))
        else:
            add(EdgeDown(e.ts, e.detail or "edge agent offline", False))

    # A newer boot with no death of the previous one stored: the old agent died before it.
    # Only the event just before it is looked at (its death would be that event), so the
    # answer does not depend on how far back the events were read.
    previous: SourceEvent | None = None
    for e in events:
        if (
            e.up
            and e.boot
            and previous is not None
            and previous.boot
            and e.boot > previous.boot
            and not any(previous.ts <= d <= e.ts for d in downs)
        ):
            add(EdgeDown(e.ts, "edge agent restarted (no death message stored)", True))
        if e.boot:
            previous = e
    return [downs[ts] for ts in sorted(downs)]
