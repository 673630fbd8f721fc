"""Which items of the log the central broker has acknowledged: pure bookkeeping, no I/O.

Two send streams share the log so live data never waits behind a long backlog:

- the *backlog* stream sends from ``acked`` (every item below it is acknowledged or was
  dropped) upwards, in order;
- once the unsent backlog exceeds a threshold, the log is split at ``live_from``: items from
  there on form the *live* stream, sent in order from ``live_acked``.

The uplink alternates between the two, one batch in flight at a time, so both streams stay
in order and the acknowledged set is always ``[0, acked) ∪ [live_from, live_acked)``: three
integers to persist, whatever the size of the backlog. When the backlog stream reaches the
split, the two ranges join and the split is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stream = Literal["backlog", "live"]


@dataclass
class AckState:
    acked: int = 0
    live_from: int | None = None
    live_acked: int = 0

    def _normalize(self) -> None:
        if self.live_from is not None and self.acked >= self.live_from:
            self.acked = max(self.acked, self.live_acked)
            self.live_from = None
            self.live_acked = 0

    def is_acked(self, item: int) -> bool:
        if item < self.acked:
            return True
        return self.live_from is not None and self.live_from <= item < self.live_acked

    def unacked_in(self, start: int, end: int) -> int:
        """How many items of ``[start, end)`` are not acknowledged."""
        start = max(start, self.acked)
        if start >= end:
            return 0
        n = end - start
        if self.live_from is not None:
            overlap = min(end, self.live_acked) - max(start, self.live_from)
            n -= max(0, overlap)
        return n

    def pending(self, durable_end: int) -> int:
        """Items below ``durable_end`` not acknowledged."""
        return self.unacked_in(0, durable_end)

    def ranges(self, durable_end: int) -> dict[Stream, tuple[int, int]]:
        """The unsent range of each stream (start, end), empty streams left out."""
        out: dict[Stream, tuple[int, int]] = {}
        backlog_end = durable_end if self.live_from is None else self.live_from
        if self.acked < backlog_end:
            out["backlog"] = (self.acked, backlog_end)
        if self.live_from is not None and self.live_acked < durable_end:
            out["live"] = (self.live_acked, durable_end)
        return out

    def split(self, durable_end: int, threshold: int) -> bool:
        """Start a live stream at ``durable_end`` if more than ``threshold`` items wait."""
        if self.live_from is None and durable_end - self.acked > threshold:
            self.live_from = self.live_acked = durable_end
            return True
        return False

    def commit(self, stream: Stream, end: int) -> None:
        if stream == "backlog" or self.live_from is None:
            self.acked = max(self.acked, end)
        else:
            self.live_acked = max(self.live_acked, end)
        self._normalize()

    def drop_below(self, end: int) -> None:
        """Everything below ``end`` is gone (dropped when the buffer was full)."""
        self.acked = max(self.acked, end)
        if self.live_from is not None and self.acked > self.live_acked:
            # The drop reached into the live stream: what is left of it is backlog again.
            self.live_from = None
            self.live_acked = 0
        self._normalize()

    def to_json(self) -> dict[str, int | None]:
        return {"acked": self.acked, "live_from": self.live_from, "live_acked": self.live_acked}

    @classmethod
    def from_json(cls, doc: dict[str, int | None]) -> AckState:
        acked, live_from, live_acked = doc["acked"], doc.get("live_from"), doc.get("live_acked")
        if not isinstance(acked, int) or acked < 0:
            raise ValueError(f"acked must be a non-negative integer, got {acked!r}")
        if live_from is None:
            return cls(acked)
        if not isinstance(live_acked, int) or not acked <= live_from <= live_acked:
            raise ValueError(
                f"need acked <= live_from <= live_acked, got {acked}, {live_from}, {live_acked}"
            )
        return cls(acked, live_from, live_acked)
