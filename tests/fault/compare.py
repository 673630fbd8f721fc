"""What the simulators produced against what InfluxDB holds, sample by sample (pure).

A sample is identified by (process, signal, source timestamp). Storage is read grouped by
process and signal only, so two points for one identity under different other tags (which
InfluxDB would keep as two series) show up here as a duplicate.

An OPC UA server's ledger starts before the edge first subscribed: a first subscription
receives each variable's current value, not what was written before, and an edge that never
stored a signal has no mark to backfill it from. ``window_starts`` gives, per signal, the
record from which everything must be stored: the value it had when the edge was known to be
subscribed. Earlier records are not expected (``before_start``) but, if stored, are still
checked for duplicates and changes.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.fault.schedule import Fault

Key = tuple[str, str, int]
SignalId = tuple[str, str]
Value = float | int | str | bool | None
Row = tuple[str, str, int, Value, int]
"""(process, signal, ts ns, value, status) as produced or as stored."""


def read_ledger(path: Path) -> list[Row]:
    rows: list[Row] = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows.append((r["process"], r["signal"], int(r["ts"]), r["value"], int(r["status"])))
    return rows


def same_value(produced: Value, stored: Value) -> bool:
    """Numbers are stored as float (integers too); bools and strings keep their type."""
    if isinstance(produced, bool) or isinstance(stored, bool):
        return produced is stored
    if isinstance(produced, int | float) and isinstance(stored, int | float):
        return float(produced) == float(stored) or (
            math.isnan(float(produced)) and math.isnan(float(stored))
        )
    return produced == stored


def window_starts(produced: Iterable[Row], cut_ns: int) -> dict[SignalId, int]:
    """Per signal, the source time of its last record at or before ``cut_ns``: the value it
    held at that moment. A subscription made before ``cut_ns`` received that value (as its
    current value, or live), and everything after it live or by backfill. Signals without a
    record at or before ``cut_ns`` are left out (all their records are expected)."""
    starts: dict[SignalId, int] = {}
    for p, s, ts, _, _ in produced:
        if ts <= cut_ns and ts > starts.get((p, s), -1):
            starts[(p, s)] = ts
    return starts


@dataclass
class Comparison:
    produced: int
    """Records expected in storage (all, or from each signal's window start)."""
    stored_rows: int
    stored_distinct: int
    missing: list[Key] = field(default_factory=list)
    duplicated: list[Key] = field(default_factory=list)
    """Identities stored more than once (more points than produced)."""
    unexpected: list[Key] = field(default_factory=list)
    """Stored, never produced (e.g. a timestamp the edge made up)."""
    mismatched: list[tuple[Key, Value, int, Value, int]] = field(default_factory=list)
    """(identity, produced value, produced status, stored value, stored status)."""
    before_start: int = 0
    """Records before their signal's window start: not expected, not in ``produced``."""
    stored_before_start: int = 0
    """Of those, the ones stored anyway (in ``stored_distinct``)."""

    @property
    def exact(self) -> bool:
        return not (self.missing or self.duplicated or self.unexpected or self.mismatched)


def compare(
    produced: Iterable[Row], stored: Iterable[Row], since: Mapping[SignalId, int] | None = None
) -> Comparison:
    """``since``: per signal, the source time from which its records are expected (see
    ``window_starts``); None: every record."""
    want = {(p, s, ts): (v, st) for p, s, ts, v, st in produced}
    starts = since or {}
    expected = {key for key in want if key[2] >= starts.get(key[:2], key[2])}
    counts: Counter[Key] = Counter()
    got: dict[Key, tuple[Value, int]] = {}
    for p, s, ts, v, st in stored:
        counts[(p, s, ts)] += 1
        got[(p, s, ts)] = (v, st)
    result = Comparison(len(expected), sum(counts.values()), len(counts))
    result.before_start = len(want) - len(expected)
    result.stored_before_start = len((want.keys() - expected) & got.keys())
    result.missing = sorted(expected - got.keys())
    result.unexpected = sorted(got.keys() - want.keys())
    result.duplicated = sorted(k for k, n in counts.items() if n > 1)
    for key in sorted(want.keys() & got.keys()):
        (pv, ps), (sv, ss) = want[key], got[key]
        if ps != ss or not same_value(pv, sv):
            result.mismatched.append((key, pv, ps, sv, ss))
    return result


@dataclass(frozen=True)
class FaultTimes:
    """When a scheduled fault really happened (wall clock, ns)."""

    fault: Fault
    killed_ns: int
    restarted_ns: int
    """When the restarted component was up again (its start call returned)."""


def attribute(missing: Sequence[Key], faults: Sequence[FaultTimes], margin_ns: int) -> Counter[str]:
    """How many missing samples have their source time near each fault (diagnosis only:
    a sample is produced, then travels for up to a second or so before it is stored)."""
    out: Counter[str] = Counter()
    for _, _, ts in missing:
        near = [
            f.fault.target
            for f in faults
            if f.killed_ns - margin_ns <= ts <= f.restarted_ns + margin_ns
        ]
        out[" or ".join(near) if near else "no fault nearby"] += 1
    return out


def offsets_ms(missing: Sequence[Key], faults: Sequence[FaultTimes], margin_ns: int) -> list[str]:
    """Each distinct missing source time as "<target> <ms relative to its kill>", e.g.
    ``edge -55ms``: a sample produced 55 ms before the edge was killed."""
    out: set[str] = set()
    for _, _, ts in missing:
        for f in faults:
            if f.killed_ns - margin_ns <= ts <= f.restarted_ns + margin_ns:
                out.add(f"{f.fault.target} {(ts - f.killed_ns) / 1e6:+.0f}ms")
    return sorted(out)
