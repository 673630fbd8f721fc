"""The I/O shell around the pure evaluator: evaluate windows from InfluxDB and store them.

``compute`` reads a window's raw samples and evaluates them in one pass: the reference
(``/api/v1/recompute``, reports, audits). The live loop and its corrections go through
``evaluate``: the same reads and the same pure rules, slice by slice, each slice read once
(``collector/kpi/live.py``); the two agree exactly (tests/collector/kpi/test_kpi_slices_property.py
and the fault suite hold them to it), and neither depends on which collector received
which batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from collector.kpi.aggregate import Counts, EnterpriseCounts, ScopeRate, aggregate, region_rates
from collector.kpi.evaluator import Evaluation, evaluate, finalize
from collector.kpi.inputs import Liveness, Window
from collector.kpi.live import SliceStore, lookback_ns
from collector.kpi.partials import Combiner, ProcessPartial
from collector.kpi.reads import liveness_view, read_liveness, read_samples
from collector.kpi.sharding import Shard, owner
from collector.kpi.slices import SliceGrid
from collector.kpi.stored_partials import HOUR_NS, decode_partial, partial_line
from collector.kpi.thresholds import Thresholds
from collector.storage.lineprotocol import point_line, replica_line
from collector.storage.reader import InfluxQLReader
from collector.storage.schema import KPI_PARTIAL, KPI_RATE, PROCESS_STATUS
from collector.storage.writer import InfluxWriter
from common.register_loader import LoadedRegister

log = logging.getLogger(__name__)

REPORT_READ_SPAN_NS = 31 * 86400 * 1_000_000_000
"""Report windows are answered a month of stored hours at a time."""


@dataclass(frozen=True)
class KpiResult:
    window: Window
    computed_at_ns: int
    evaluations: tuple[Evaluation, ...]
    rates: tuple[ScopeRate, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window.to_dict(),
            "computed_at_ns": self.computed_at_ns,
            "rates": [r.to_dict() for r in self.rates],
            "evaluations": [e.to_dict() for e in self.evaluations],
        }


class KpiService:
    def __init__(
        self,
        registers: list[LoadedRegister],
        reader: InfluxQLReader,
        writer: InfluxWriter,
        thresholds: Thresholds,
        *,
        window_s: float,
        period_s: float,
        lag_s: float,
        correction_horizon_s: float = 86400.0,
        corrections_per_period: int = 10,
        shard: Shard | None = None,
    ) -> None:
        self.registers = registers
        self.shard = shard
        """This replica's share (``collector/kpi/sharding.py``); None: it does all."""
        self.live_replicas: list[int] = [] if shard is None else [shard.replica]
        self.report_from_partials = 0
        """Report windows answered from stored hourly partials (no raw read)."""
        self.regions_rolled_up = 0
        self.region_corrections_run = 0
        self.correction_horizon_ns = int(correction_horizon_s * 1e9)
        self.corrections_per_period = corrections_per_period
        self.pending: dict[Window, PendingWindow] = {}
        """Windows stored before their plants' data had all arrived, to be corrected."""
        self.corrections_run = 0
        self.reader = reader
        self.writer = writer
        self.thresholds = thresholds
        self.window_s = window_s
        self.period_s = period_s
        self.lag_s = lag_s
        self.slices = SliceStore(
            reader, thresholds, SliceGrid.for_loop(round(window_s * 1e9), round(period_s * 1e9))
        )
        """The live loop's slices (``collector/kpi/live.py``)."""
        self.latest: KpiResult | None = None
        self.evaluations_run = 0
        self.last_error = ""

    async def compute(self, window: Window) -> KpiResult:
        """Evaluate ``window`` from the raw samples stored now, in one pass: the reference
        a recomputation, an audit and a report are made with."""
        now = time.time_ns()
        evaluations = [await self._compute_one(r, window, now) for r in self.registers]
        rates = aggregate(evaluations)
        return KpiResult(window, time.time_ns(), tuple(evaluations), tuple(rates))

    async def _compute_one(self, register: LoadedRegister, window: Window, now: int) -> Evaluation:
        enterprise = register.enterprise_id
        lookback = lookback_ns(register, self.thresholds)
        samples, _, _ = await read_samples(
            self.reader, enterprise, window.start_ns, window.end_ns, lookback
        )
        liveness = await read_liveness(
            self.reader, enterprise, window.start_ns - lookback, window.end_ns, now
        )
        marks = await self.reader.watermarks(window.end_ns - self.correction_horizon_ns, enterprise)
        # CPU-bound (a second per ~200,000 samples): off the event loop, so ingestion and
        # the API keep running while a large window is evaluated.
        return await asyncio.to_thread(
            evaluate, register, window, samples, liveness, self.thresholds, marks
        )

    async def report(self, windows: list[Window]) -> list[KpiResult]:
        """Each of ``windows`` as ``compute`` gives it: from the stored hourly partials
        (``collector/kpi/stored_partials.py``) when the window is on the hour grid and every
        hour of every key process is stored for this register and these thresholds, from
        the raw samples otherwise. ``report_from_partials`` counts the former."""
        if not windows:
            return []
        results: list[KpiResult] = []
        group: list[Window] = []
        for window in sorted(windows, key=lambda w: w.start_ns):
            # A month of hourly points at a time: memory stays bounded for a year.
            if group and window.end_ns - group[0].start_ns > REPORT_READ_SPAN_NS:
                results += await self._report_group(group)
                group = []
            group.append(window)
        results += await self._report_group(group)
        by_window = {r.window: r for r in results}
        return [by_window[w] for w in windows]

    async def _report_group(self, windows: list[Window]) -> list[KpiResult]:
        now = time.time_ns()
        lo = min(w.start_ns for w in windows)
        hi = max(w.end_ns for w in windows)
        fingerprint = self.thresholds.fingerprint()
        combiner = Combiner()
        per_window: list[list[Evaluation]] = [[] for _ in windows]
        for register in self.registers:
            enterprise = register.enterprise_id
            lookback = lookback_ns(register, self.thresholds)
            rows = await self.reader.points(
                KPI_PARTIAL.name, lo, hi, tags={"enterprise": enterprise}
            )
            hours: dict[tuple[str, int], ProcessPartial] = {}
            decoded: dict[tuple[str, Any], ProcessPartial] = {}
            for row in rows:
                f = row.fields
                if (
                    f.get("register_digest") != register.digest
                    or f.get("thresholds") != fingerprint
                ):
                    continue
                key = (str(f.get("signals")), f.get("manual_ns"))
                partial = decoded.get(key)
                if partial is None:
                    try:
                        partial = decoded[key] = combiner.share(decode_partial(f))
                    except ValueError as exc:
                        log.warning("KPI report: %s of %s at %s", exc, enterprise, row.ts_ns)
                        continue
                hours[(row.tags.get("process", ""), row.ts_ns)] = partial
            del rows
            liveness: Liveness | None = None
            latest = await self.reader.watermarks(lo - self.correction_horizon_ns, enterprise)
            key_processes = [
                p.id
                for pl in register.model.plants
                for ln in pl.lines
                for p in ln.processes
                if p.key
            ]
            for i, window in enumerate(windows):
                partials = _hours_of(window, key_processes, hours, combiner)
                if partials is None:
                    per_window[i].append(await self._compute_one(register, window, now))
                    continue
                if liveness is None:
                    liveness = await read_liveness(self.reader, enterprise, lo - lookback, hi, now)
                events = liveness_view(liveness, window.start_ns - lookback, window.end_ns)
                cutoff = window.end_ns - self.correction_horizon_ns
                marks = {plant: m for plant, m in latest.items() if m >= cutoff}
                per_window[i].append(
                    finalize(register, window, partials, events, self.thresholds, marks)
                )
                self.report_from_partials += 1
        return [
            KpiResult(w, time.time_ns(), tuple(evs), tuple(aggregate(evs)))
            for w, evs in zip(windows, per_window, strict=True)
        ]

    async def store_hours(self) -> int:
        """Store the partials of every hour whose slices have all become final. Returns
        how many (process, hour) points were written."""
        fingerprint = self.thresholds.fingerprint()
        digests = {r.enterprise_id: r.digest for r in self.registers}
        lines = [
            partial_line(
                enterprise, plant, process, start, partial, digests[enterprise], fingerprint
            )
            for enterprise, plant, start, found in self.slices.final_spans(HOUR_NS)
            for process, partial in found.items()
        ]
        if lines:
            await self.writer.write(lines)
        return len(lines)

    async def evaluate(
        self, window: Window, registers: list[LoadedRegister] | None = None
    ) -> KpiResult:
        """Evaluate ``window`` from the live loop's slices, computing those it lacks or
        that may have changed (the live loop and corrections come through here). Equal
        to ``compute`` of the same window at the same moment; a window off the slice grid
        is computed in one pass. With ``registers`` (a replica's share), those only, and
        no region rates (their roll-up reads every enterprise's stored rates)."""
        if not self.slices.fits(window):
            return await self.compute(window)
        evaluations = []
        now = time.time_ns()
        for register in self.registers if registers is None else registers:
            marks = await self.reader.watermarks(
                window.end_ns - self.correction_horizon_ns, register.enterprise_id
            )
            evaluations.append(await self.slices.evaluate(register, window, marks, now))
        rates = aggregate(evaluations, regions=registers is None)
        return KpiResult(window, time.time_ns(), tuple(evaluations), tuple(rates))

    async def owned(self) -> list[LoadedRegister] | None:
        """The registers this replica evaluates now (None: all of them, unsharded): sends
        its heartbeat and reads the others'."""
        if self.shard is None:
            return None
        now = time.time_ns()
        await self.writer.write([replica_line(self.shard.replica, self.shard.replicas, now)])
        stale = round(self.shard.stale_periods * self.period_s * 1e9)
        live = await self.reader.replicas(now - stale)
        self.live_replicas = sorted(live | {self.shard.replica})
        return [
            r
            for r in self.registers
            if owner(r.enterprise_id, self.live_replicas) == self.shard.replica
        ]

    def _regions_owned(self) -> set[str]:
        """Sharded: the regions whose roll-up is this replica's."""
        if self.shard is None:
            return set()
        return {
            r.model.enterprise.region
            for r in self.registers
            if owner(f"region:{r.model.enterprise.region}", self.live_replicas)
            == self.shard.replica
        }

    async def roll_up_regions(self, window: Window) -> int:
        """Sharded: the region rates of ``window`` for the regions this replica owns, from
        every enterprise's stored ``kpi_rate`` points (whichever replica wrote them).
        Returns how many regions were rolled up."""
        mine = self._regions_owned()
        if not mine:
            return 0
        expected = {
            r.enterprise_id: r.model.enterprise.region
            for r in self.registers
            if r.model.enterprise.region in mine
        }
        rows = await self.reader.points(
            KPI_RATE.name, window.end_ns, window.end_ns + 1, tags={"scope": "enterprise"}
        )
        counts: dict[str, dict[str, Counts]] = {}
        thresholds, revision = "", dict.fromkeys(mine, 0)
        for row in rows:
            enterprise = row.tags.get("enterprise", "")
            if enterprise not in expected:
                continue
            f = row.fields
            counts.setdefault(enterprise, {})[row.tags.get("industry", "all")] = Counts(
                int(f.get("numerator", 0)),
                int(f.get("denominator", 0)),
                int(f.get("not_scheduled", 0)),
                json.loads(f.get("reasons", "{}")),
                int(f.get("provisional", 0)),
            )
            thresholds = str(f.get("thresholds", thresholds))
            region = expected[enterprise]  # a region's revision: its enterprises' highest
            revision[region] = max(revision[region], int(f.get("revision", 0)))
        missing = sorted(set(expected) - set(counts))
        if missing:
            log.warning(
                "KPI: region roll-up of the window ending %s without %d enterprise(s) not "
                "stored yet: %s",
                window.end_ns,
                len(missing),
                ", ".join(missing[:10]),
            )
        members = [EnterpriseCounts(e, expected[e], c) for e, c in counts.items()]
        rates = region_rates(members, window, thresholds)
        versions = ",".join(sorted({r.version for r in self.registers}))
        lines = [
            _rate_line(rate, versions, thresholds, window, revision[rate.scope_id])
            for rate in rates
        ]
        await self.writer.write([line for line in lines if line is not None])
        self.regions_rolled_up += len(mine)
        return len(mine)

    async def correct_regions(self) -> int:
        """Sharded: roll up again the windows of this replica's regions some of whose
        enterprises were corrected since (a stored enterprise ``revision`` above its
        region's, which is the highest of its enterprises' when rolled up), oldest first,
        at most ``corrections_per_period``, within the correction horizon. Returns how many
        windows were rolled up again."""
        mine = self._regions_owned()
        if not mine:
            return 0
        since = time.time_ns() - self.correction_horizon_ns
        region_of = {r.enterprise_id: r.model.enterprise.region for r in self.registers}
        corrected = await self.reader.revisions(
            KPI_RATE.name,
            since,
            {"scope": "enterprise", "industry": "all"},
            by="enterprise",
            corrected_only=True,
        )
        wanted: dict[tuple[str, int], int] = {}
        for (enterprise, end_ns), revision in corrected.items():
            region = region_of.get(enterprise)
            if region in mine:
                key = (region, end_ns)
                wanted[key] = max(wanted.get(key, 0), revision)
        if not wanted:
            return 0
        stored = await self.reader.revisions(
            KPI_RATE.name,
            min(end for _, end in wanted),
            {"scope": "region_official", "industry": "all"},
            by="scope_id",
        )
        behind = sorted(
            {end for (region, end), rev in wanted.items() if stored.get((region, end), -1) < rev}
        )
        length = round(self.window_s * 1e9)
        for end_ns in behind[: self.corrections_per_period]:
            await self.roll_up_regions(Window(end_ns - length, end_ns))
            self.region_corrections_run += 1
        return min(len(behind), self.corrections_per_period)

    def current_window(self, now_ns: int | None = None) -> Window:
        """The latest window ending on the period grid, ``lag`` ago.

        Windows sit on a grid (multiples of the period since the epoch) so that every
        collector instance evaluates exactly the same windows from the same storage and
        writes the same points: with several instances the results are idempotent.
        """
        now = time.time_ns() if now_ns is None else now_ns
        period = max(1, int(self.period_s * 1e9))
        end = (now - int(self.lag_s * 1e9)) // period * period
        return Window(end - int(self.window_s * 1e9), end)

    async def evaluate_now(self, window: Window | None = None) -> KpiResult:
        """One period of the live loop: evaluate the current window (or ``window``), store
        it, the hours that became final, and forget the slices no longer needed."""
        window = self.current_window() if window is None else window
        registers = await self.owned()
        result = await self.evaluate(window, registers)
        await self.writer.write(result_lines(result))
        self.track_incomplete(result, revision=0)
        await self.store_hours()
        # Keep the slices of the windows still to be corrected and of the hour under way
        # (its partials are stored once it is over), drop the rest.
        keep = [window.start_ns, window.end_ns // HOUR_NS * HOUR_NS - HOUR_NS]
        self.slices.forget_before(min(keep + [w.start_ns for w in self.pending]))
        self.latest = result
        self.evaluations_run += 1
        return result

    def track_incomplete(self, result: KpiResult, revision: int) -> None:
        """Remember a window stored while some plant's data was still on its way."""
        incomplete = _incomplete(result)
        if incomplete:
            self.pending[result.window] = PendingWindow(revision, incomplete)
        else:
            self.pending.pop(result.window, None)

    async def correct_pending(self) -> int:
        """Re-evaluate stored windows whose missing data may have arrived since, and store
        the corrected results at the same timestamps (``revision`` + 1). Returns how many
        windows were re-evaluated.

        A window is taken up again once a plant it lacked data for has a newer watermark:
        the edge watermark only moves when everything before it is delivered, so that is
        the moment its backlog has arrived (or arrived further). At most
        ``corrections_per_period`` per call; windows older than the correction horizon
        keep what was stored."""
        if not self.pending:
            return 0
        now = time.time_ns()
        for window in [w for w in self.pending if w.end_ns < now - self.correction_horizon_ns]:
            del self.pending[window]
        oldest = min((w.end_ns for w in self.pending), default=now)
        marks: dict[tuple[str, str], int] = {}
        for register in self.registers:
            found = await self.reader.watermarks(
                oldest - self.correction_horizon_ns, register.enterprise_id
            )
            marks.update(((register.enterprise_id, plant), mark) for plant, mark in found.items())
        done = 0
        for window in sorted(self.pending, key=lambda w: w.end_ns):
            if done >= self.corrections_per_period:
                break
            entry = self.pending[window]
            if not any(marks.get(key, 0) > mark for key, mark in entry.incomplete.items()):
                continue
            owned = (
                None
                if self.shard is None
                else [
                    r
                    for r in self.registers
                    if any(e == r.enterprise_id for e, _ in entry.incomplete)
                ]
            )
            result = await self.evaluate(window, owned)
            await self.writer.write(result_lines(result, revision=entry.revision + 1))
            self.track_incomplete(result, revision=entry.revision + 1)
            await self.store_hours()
            done += 1
            self.corrections_run += 1
            log.info(
                "KPI window ending %s corrected (revision %d) now that %s delivered: %s",
                window.end_ns,
                entry.revision + 1,
                ", ".join(f"{e}/{p}" for e, p in sorted(entry.incomplete)),
                summary(result),
            )
        return done

    async def recover_pending(self) -> None:
        """After a restart: take up the stored windows still marked incomplete."""
        now = time.time_ns()
        for register in self.registers:
            rows = await self.reader.points(
                PROCESS_STATUS.name,
                now - self.correction_horizon_ns,
                now,
                tags={"enterprise": register.enterprise_id},
                fields=("complete", "window_s", "revision"),
            )
            for row in rows:
                if row.fields.get("complete", True) is not False:
                    continue
                length = round(float(row.fields.get("window_s", self.window_s)) * 1e9)
                window = Window(row.ts_ns - length, row.ts_ns)
                key = (register.enterprise_id, row.tags.get("plant", ""))
                entry = self.pending.setdefault(
                    window, PendingWindow(int(row.fields.get("revision", 0)), {})
                )
                entry.incomplete.setdefault(key, 0)
        if self.pending:
            log.info("KPI: %d stored windows wait for late data to be corrected", len(self.pending))

    async def run(self) -> None:
        try:
            await self.recover_pending()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("KPI: could not look for windows to correct: %s", exc)
        while True:
            try:
                result = await self.evaluate_now()
                self.last_error = ""
                log.info("KPI: %s", summary(result))
                await self.correct_pending()
                # The previous window: every replica has stored its enterprises' by now.
                step = round(self.period_s * 1e9)
                previous = Window(result.window.start_ns - step, result.window.end_ns - step)
                await self.roll_up_regions(previous)
                await self.correct_regions()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("KPI evaluation failed: %s", self.last_error)
            # Wake just after the next grid point has passed its lag.
            period = self.period_s
            lagged_now = time.time() - self.lag_s
            await asyncio.sleep(period - lagged_now % period + 0.05)


@dataclass
class PendingWindow:
    """A stored window some plants' data was missing for."""

    revision: int
    incomplete: dict[tuple[str, str], int]
    """``(enterprise, plant)`` → the plant's watermark when the window was evaluated."""


def _incomplete(result: KpiResult) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for evaluation in result.evaluations:
        for plant, mark in evaluation.incomplete_plants.items():
            out[(evaluation.enterprise_id, plant)] = mark
    return out


def summary(result: KpiResult) -> str:
    parts = []
    for rate in result.rates:
        if rate.scope in ("enterprise", "plant") and rate.industry == "all":
            shown = "n/a" if rate.rate is None else f"{rate.rate:.1%}"
            pending = f", {rate.provisional} provisional" if rate.provisional else ""
            parts.append(
                f"{rate.scope} {rate.scope_id} {shown} "
                f"({rate.numerator}/{rate.denominator}{pending})"
            )
    return "; ".join(parts)


def result_lines(result: KpiResult, revision: int = 0) -> list[str]:
    """``process_status`` and ``kpi_rate`` points, stamped with the window's end.

    ``revision`` is 0 for the live evaluation and counts the corrections written later at
    the same timestamps (which replace the earlier points)."""
    ts = result.window.end_ns
    window_s = result.window.duration_ns / 1e9
    lines: list[str | None] = []
    for evaluation in result.evaluations:
        for p in evaluation.processes:
            shares = [s.good for s in p.signals]
            fields: dict[str, Any] = {
                "status": str(p.status),
                "counted": p.status.value == "DIGITALIZED",
                "reasons": ",".join(str(r) for r in p.reasons),
                "coverage_min": min(shares) if shares else 0.0,
                "longest_gap_s": max((s.longest_gap_s for s in p.signals), default=0.0),
                "scheduled_s": p.scheduled_s,
                "window_s": window_s,
                "register_version": p.register_version,
                "register_digest": p.register_digest,
                "thresholds": p.thresholds,
                "evidence": json.dumps([s.to_dict() for s in p.signals], separators=(",", ":")),
                "outages": json.dumps(
                    {
                        "listed": [o.to_dict() for o in p.outages],
                        "more": p.outages_more,
                    },
                    separators=(",", ":"),
                ),
                "complete": p.complete,
                "revision": revision,
            }
            if p.manual_share is not None:
                fields["manual_share"] = p.manual_share
            tags = {
                "enterprise": p.enterprise_id,
                "plant": p.plant_id,
                "line": p.line_id,
                "process": p.process_id,
                "industry": p.industry,
            }
            lines.append(point_line(PROCESS_STATUS.name, tags, fields, ts))
    versions = ",".join(sorted({e.register_version for e in result.evaluations}))
    thresholds = result.evaluations[0].thresholds if result.evaluations else ""
    lines += [
        _rate_line(rate, versions, thresholds, result.window, revision) for rate in result.rates
    ]
    return [line for line in lines if line is not None]


def _rate_line(
    rate: ScopeRate, versions: str, thresholds: str, window: Window, revision: int
) -> str | None:
    fields: dict[str, Any] = {
        "numerator": rate.numerator,
        "denominator": rate.denominator,
        "not_scheduled": rate.not_scheduled,
        "reasons": json.dumps(rate.reasons, sort_keys=True, separators=(",", ":")),
        "enterprises": rate.enterprises,
        "register_versions": versions,
        "thresholds": thresholds,
        "window_s": window.duration_ns / 1e9,
        "provisional": rate.provisional,
        "revision": revision,
    }
    if rate.rate is not None:
        fields["rate"] = float(rate.rate)
    # Line ids are unique per plant and plant ids per enterprise: both are tags too.
    tags = {"scope": rate.scope, "scope_id": rate.scope_id, "industry": rate.industry}
    if rate.enterprise_id:
        tags["enterprise"] = rate.enterprise_id
    if rate.plant_id:
        tags["plant"] = rate.plant_id
    return point_line(KPI_RATE.name, tags, fields, window.end_ns)


def _hours_of(
    window: Window,
    processes: list[str],
    hours: dict[tuple[str, int], ProcessPartial],
    combiner: Combiner,
) -> dict[str, ProcessPartial] | None:
    """The window's partials from stored hours, or None when one is missing."""
    if window.start_ns % HOUR_NS or window.end_ns % HOUR_NS:
        return None
    starts = range(window.start_ns, window.end_ns, HOUR_NS)
    out: dict[str, ProcessPartial] = {}
    for process in processes:
        found = [hours.get((process, start)) for start in starts]
        if any(h is None for h in found):
            return None
        out[process] = combiner.all(h for h in found if h is not None)
    return out
