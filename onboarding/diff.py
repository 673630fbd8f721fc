"""``plantkpi register diff OLD NEW``: what a register change does to the KPI before it is
deployed (pure): processes added, removed, re-keyed or moved, signals changed, and each
scope's denominator (its key processes) before and after."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.register import Process, Signal
from common.register_loader import LoadedRegister


@dataclass(frozen=True)
class Placed:
    scopes: tuple[tuple[str, str], ...]
    """(scope, id) from the enterprise down to the line."""
    process: Process

    @property
    def where(self) -> str:
        return "/".join(scope_id for _, scope_id in self.scopes[1:])


@dataclass
class RegisterDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rekeyed: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    denominators: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(scope, id, key processes before, after) for every scope whose count changed."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.rekeyed or self.moved or self.signals)

    def lines(self) -> list[str]:
        out = [f"added: {text}" for text in self.added]
        out += [f"removed: {text}" for text in self.removed]
        out += [f"re-keyed: {text}" for text in self.rekeyed]
        out += [f"moved: {text}" for text in self.moved]
        out += [f"signal: {text}" for text in self.signals]
        for scope, scope_id, before, after in self.denominators:
            out.append(
                f"denominator {scope} {scope_id}: {before} → {after} key processes "
                f"({after - before:+d})"
            )
        return out


def diff(old: LoadedRegister, new: LoadedRegister) -> RegisterDiff:
    before, after = _placed(old), _placed(new)
    result = RegisterDiff()
    for pid in sorted(after.keys() - before.keys()):
        p = after[pid]
        result.added.append(f"{pid} ({p.where}{', key' if p.process.key else ', not key'})")
    for pid in sorted(before.keys() - after.keys()):
        p = before[pid]
        result.removed.append(f"{pid} ({p.where}{', key' if p.process.key else ', not key'})")
    for pid in sorted(before.keys() & after.keys()):
        was, now = before[pid], after[pid]
        if was.process.key != now.process.key:
            result.rekeyed.append(
                f"{pid}: {'key' if was.process.key else 'not key'} → "
                f"{'key' if now.process.key else 'not key'}"
            )
        if was.where != now.where:
            result.moved.append(f"{pid}: {was.where} → {now.where}")
        result.signals += _signal_changes(pid, was.process, now.process)
    counts_before, counts_after = _denominators(before), _denominators(after)
    for scope in sorted(counts_before.keys() | counts_after.keys()):
        b, a = counts_before.get(scope, 0), counts_after.get(scope, 0)
        if a != b:
            result.denominators.append((*scope, b, a))
    return result


def _placed(register: LoadedRegister) -> dict[str, Placed]:
    model = register.model
    enterprise = ("enterprise", model.enterprise.id)
    return {
        process.id: Placed((enterprise, ("plant", plant.id), ("line", line.id)), process)
        for plant in model.plants
        for line in plant.lines
        for process in line.processes
    }


def _denominators(placed: dict[str, Placed]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for p in placed.values():
        if p.process.key:
            for scope in p.scopes:
                counts[scope] = counts.get(scope, 0) + 1
    return counts


def _signal_changes(pid: str, was: Process, now: Process) -> list[str]:
    old = {s.id: s for s in was.signals}
    new = {s.id: s for s in now.signals}
    out = [f"{pid}.{sid} added ({_describe(new[sid])})" for sid in sorted(new.keys() - old.keys())]
    out += [f"{pid}.{sid} removed" for sid in sorted(old.keys() - new.keys())]
    for sid in sorted(old.keys() & new.keys()):
        changed = [f"{name} {a!r} → {b!r}" for name, a, b in _fields(old[sid], new[sid]) if a != b]
        if changed:
            out.append(f"{pid}.{sid}: {'; '.join(changed)}")
    return out


def _fields(a: Signal, b: Signal) -> list[tuple[str, object, object]]:
    da = a.model_dump(mode="json", exclude={"binding", "id"})
    db = b.model_dump(mode="json", exclude={"binding", "id"})
    pairs: list[tuple[str, object, object]] = [(k, da.get(k), db.get(k)) for k in da]
    ba = a.binding.model_dump(mode="json", exclude_defaults=True) if a.binding else {}
    bb = b.binding.model_dump(mode="json", exclude_defaults=True) if b.binding else {}
    pairs += [(k, ba.get(k), bb.get(k)) for k in sorted(ba.keys() | bb.keys())]
    return pairs


def _describe(signal: Signal) -> str:
    return f"{signal.role}, source {signal.source}"
