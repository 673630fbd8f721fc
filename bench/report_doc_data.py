"""Synthetic stored KPI results for the report benchmark and the report's screenshot: what the
live loop would have written (``process_status`` and ``kpi_rate``) for an enterprise, one
evaluation per period, built with the KPI's own objects and line builder
(``collector.kpi.service.result_lines``).

The statuses follow a seeded story rather than noise: every key process has a chance of
counting that grows through the year (a digitalization project), a characteristic way of
failing (its reason codes), and keeps its status for hours; line ``b3``-like lines (the
register's last line of the last plant) are in planned downtime on Sundays; now and then a
plant's data arrives late (``PROVISIONAL``), and the register version changes once.

The per-signal ``evidence`` and the ``outages`` of a process are written empty: they are
columns of their own that the report never reads (docs/benchmarks.md says so beside the
figures).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from collector.kpi.aggregate import aggregate
from collector.kpi.evaluator import Evaluation, ProcessResult, Reason, Status
from collector.kpi.inputs import Window
from collector.kpi.service import KpiResult, result_lines
from collector.kpi.thresholds import Thresholds
from common.register_loader import LoadedRegister

S = 1_000_000_000
HOUR = 3600 * S
DAY = 24 * HOUR

_FAILURES: tuple[tuple[Reason, ...], ...] = (
    (Reason.MANUAL_MODE,),
    (Reason.LOW_COVERAGE, Reason.STALE_DATA),
    (Reason.BAD_QUALITY,),
    (Reason.UNCERTAIN,),
    (Reason.OVERRIDDEN,),
    (Reason.LOW_COVERAGE,),
    (Reason.MANUAL_SOURCE,),
    (Reason.NO_STATE_SIGNAL,),
)


@dataclass(frozen=True)
class KeyProcess:
    plant: str
    line: str
    process: str
    industry: str
    start_chance: float
    """Chance of counting in an hour at the year's start; it rises to ``end_chance``."""
    end_chance: float
    failure: tuple[Reason, ...]


def key_processes(register: LoadedRegister, seed: int = 7) -> list[KeyProcess]:
    pick = random.Random(seed)
    out = []
    for plant in register.model.plants:
        for line in plant.lines:
            for process in line.processes:
                if not process.key:
                    continue
                start = pick.uniform(0.15, 0.9)
                out.append(
                    KeyProcess(
                        plant.id,
                        line.id,
                        process.id,
                        str(process.industry),
                        start,
                        min(0.98, start + pick.uniform(0.0, 0.5)),
                        pick.choice(_FAILURES),
                    )
                )
    return out


class Story:
    """The statuses of every key process hour by hour (seeded, reproducible)."""

    def __init__(self, register: LoadedRegister, start_ns: int, days: int, seed: int = 7) -> None:
        self.register = register
        self.start_ns = start_ns
        self.days = days
        self.processes = key_processes(register, seed)
        self.random = random.Random(seed + 1)
        self.thresholds = Thresholds().fingerprint()
        last_plant = register.model.plants[-1]
        self.sunday_line = (last_plant.id, last_plant.lines[-1].id) if last_plant.lines else None
        self.version_change_day = days * 5 // 9
        self._current: dict[str, bool] = {}

    def hour(self, h: int, end_ns: int) -> KpiResult:
        """The result of the window ending at ``end_ns``, in hour ``h`` of the story."""
        day = h // 24
        progress = day / max(1, self.days - 1)
        sunday = (self.start_ns // DAY + day + 4) % 7 == 6  # the epoch was a Thursday
        late_plant = (
            self.register.model.plants[h % len(self.register.model.plants)].id
            if self.random.random() < 0.004
            else None
        )
        version = self.register.version
        if day >= self.version_change_day:
            version = f"{version}-r2"
        window = Window(end_ns - HOUR, end_ns)
        results = []
        for p in self.processes:
            chance = p.start_chance + (p.end_chance - p.start_chance) * progress
            # Sticky: a process keeps its status for a while (a fault takes hours to fix).
            if p.process not in self._current or self.random.random() < 0.25:
                self._current[p.process] = self.random.random() < chance
            counted = self._current[p.process]
            reasons: tuple[Reason, ...] = ()
            if sunday and (p.plant, p.line) == self.sunday_line:
                status = Status.NOT_SCHEDULED
            elif late_plant == p.plant:
                status, reasons = Status.PROVISIONAL, (Reason.EDGE_BUFFERING,)
            elif counted:
                status = Status.DIGITALIZED
            else:
                status, reasons = Status.NOT_DIGITALIZED, p.failure
            results.append(
                ProcessResult(
                    enterprise_id=self.register.enterprise_id,
                    region=self.register.model.enterprise.region,
                    plant_id=p.plant,
                    line_id=p.line,
                    process_id=p.process,
                    industry=p.industry,
                    status=status,
                    reasons=tuple(sorted(reasons)),
                    signals=(),
                    manual_share=None,
                    scheduled_s=0.0 if status is Status.NOT_SCHEDULED else 3600.0,
                    unbound_signals=(),
                    manual_signals=(),
                    register_version=version,
                    register_digest=self.register.digest,
                    thresholds=self.thresholds,
                    window=window,
                    complete=status is not Status.PROVISIONAL,
                )
            )
        model = self.register.model
        evaluation = Evaluation(
            enterprise_id=self.register.enterprise_id,
            region=model.enterprise.region,
            above_designated_size=model.enterprise.above_designated_size,
            register_version=version,
            register_digest=self.register.digest,
            thresholds=self.thresholds,
            window=window,
            plants=tuple(plant.id for plant in model.plants),
            lines=tuple((plant.id, line.id) for plant in model.plants for line in plant.lines),
            processes=tuple(results),
        )
        return KpiResult(window, end_ns, (evaluation,), tuple(aggregate([evaluation])))


def day_lines(story: Story, day: int, period_ns: int) -> list[str]:
    """Every line the live loop would have stored for windows ending during ``day``: one
    evaluation per period. Statuses change at most once an hour, so an hour's lines are
    built once and re-stamped for each of its periods."""
    out: list[str] = []
    day_start = story.start_ns + day * DAY
    for h in range(day * 24, day * 24 + 24):
        hour_start = story.start_ns + h * HOUR
        template = [
            line.rpartition(" ")[0] + " "
            for line in result_lines(story.hour(h, hour_start + period_ns))
        ]
        for end in range(hour_start + period_ns, hour_start + HOUR + 1, period_ns):
            if end - day_start > DAY:
                break
            stamp = str(end)
            out.extend(prefix + stamp for prefix in template)
    return out


def year_lines(story: Story, period_ns: int) -> Iterator[list[str]]:
    for day in range(story.days):
        yield day_lines(story, day, period_ns)
