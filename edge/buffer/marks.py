"""The newest source timestamp the edge stored per signal, kept beside the buffer.

After any gap — the agent stopped or killed, a connection or subscription lost — a source
that can read the equipment's history (OPC UA Historical Access) backfills from each
signal's mark to where live data resumed (``edge/sources/opcua/backfill.py``). A mark moves
only once its sample is written to the buffer's disk, so a sample lost with the process
is always after the mark and read again.

``marks.json`` in the buffer folder is replaced atomically at most every ``save_interval``
and when the agent stops. After a ``kill -9`` the marks on disk may be up to that interval
old: the backfill then reads that much again, and the samples it re-sends are the same
points (same series and timestamp), which storage overwrites, not duplicates.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from common.wire import Sample
from edge.sources import SignalKey

log = logging.getLogger(__name__)

FILE = "marks.json"


class SignalMarks:
    def __init__(self, path: Path, marks: dict[SignalKey, int], save_interval: float) -> None:
        self.path = path
        self._marks = marks
        self.save_interval = save_interval
        self._dirty = False
        self._saved_at = time.monotonic()

    @classmethod
    def load(cls, directory: Path, save_interval: float = 1.0) -> SignalMarks:
        """The marks saved in ``directory`` (none when there are none); a damaged file is
        named and ignored: without marks there is no backfill, nothing else is lost."""
        path = directory / FILE
        marks: dict[SignalKey, int] = {}
        try:
            rows = json.loads(path.read_text())
            marks = {(str(p), str(s)): int(ts) for p, s, ts in rows}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as exc:
            log.warning(
                "edge buffer %s: %s is unreadable, no backfill from it: %s", directory, FILE, exc
            )
        return cls(path, marks, save_interval)

    def get(self, key: SignalKey) -> int | None:
        return self._marks.get(key)

    def __len__(self) -> int:
        return len(self._marks)

    def update(self, samples: Iterable[Sample]) -> None:
        """Samples just written to disk (in any order)."""
        marks = self._marks
        for sample in samples:
            key = (sample.process, sample.signal)
            if sample.ts > marks.get(key, -1):
                marks[key] = sample.ts
                self._dirty = True

    def due(self) -> bool:
        return self._dirty and time.monotonic() - self._saved_at >= self.save_interval

    def snapshot(self) -> list[list[str | int]] | None:
        """The marks to save (None: nothing changed), taken on the event loop: ``write``
        runs in a thread while samples go on moving the marks."""
        if not self._dirty:
            return None
        self._dirty = False
        self._saved_at = time.monotonic()
        return [[process, signal, ts] for (process, signal), ts in self._marks.items()]

    def save(self) -> None:
        """``snapshot`` and ``write`` at once (blocking: when nothing else runs)."""
        rows = self.snapshot()
        if rows is not None:
            self.write(rows)

    def write(self, rows: list[list[str | int]]) -> None:
        """Replace the file atomically (blocking: run it in a thread)."""
        temporary = self.path.with_suffix(".tmp")
        try:
            with temporary.open("w") as out:
                json.dump(rows, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            # A full disk: the old marks stay (a longer backfill later), the buffer goes on.
            self._dirty = True
            log.warning("edge buffer: cannot save %s: %s", self.path, exc)
            temporary.unlink(missing_ok=True)
