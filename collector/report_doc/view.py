"""What both renderers show, in the reader's language: names beside ids, times in the
report's time zone, rates and counts formatted, the translated labels of codes, and the
texts that define each number. Nothing here computes a figure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from collector.i18n import Lang, Translator, display_name, translator
from collector.i18n.catalogue import N_
from collector.i18n.terms import (
    STATUSES_SHORT,
    reason_fix,
    reason_label,
    scope_label,
    status_label,
    term,
)
from collector.report_doc.document import RECOMPUTE_COMMAND, Named, ReportDoc
from collector.report_doc.figures import STATUSES, ProcessFigures, RateFigures
from common.timestamps import ns_to_datetime

__all__ = ["STATUSES", "View", "pct"]

TITLE = N_("Key-process digitalization rate report")

DEFINITIONS: tuple[str, ...] = (
    N_(
        "Windows: the KPI is evaluated over windows of {length}; the live loop evaluates the "
        "latest one every minute, so the windows it stores overlap. The report counts the "
        "stored windows that tile the period: in each {length} from start + {length} on "
        "(start + {length}, start + 2 × {length}, … up to the first at or after end), the first "
        "window stored ending in it. Normally that window ends exactly there: it covers the "
        "{length} before, overlaps no other and is what /api/v1/recompute gives for that "
        "range. When it was not stored, a later one stands in and overlaps the next window by "
        "as much as it ends late. The last window is a whole {length}: when the period is not "
        "a whole number of windows, or when it ends late, it counts data of less than {length} "
        "after the end of the period."
    ),
    N_(
        "Measured rate (实测值) of a scope over the period: the sum of its digitalized key "
        "processes over those windows divided by the sum of its key processes judged in them, "
        "from the key processes' stored statuses (process_status): the share of the "
        "key-process time judged in the period that was digitalized. It equals Σ numerator / "
        "Σ denominator of the scope's stored kpi_rate points of those windows, which the live "
        "loop made of the same statuses. Not scheduled and provisional processes leave the "
        "denominator, as in each window."
    ),
    N_(
        "Declared rate (申报值): the rate the enterprise declared, from its register "
        "(enterprise.declared_rate)."
    ),
    N_(
        "Status share of a key process: its windows (process_status points) with that status "
        "divided by its windows stored in the period; a reason's count is the number of its "
        "windows reporting the reason code. Summed over the processes, the digitalized windows "
        "equal the enterprise's Σ numerator and the judged ones its Σ denominator (the check "
        "below)."
    ),
    N_(
        "Trend: the same pooled rate per day or per week (from Monday, for periods longer than "
        "about three months), days starting at midnight in the report's time zone ({zone}), "
        "each window in the bucket of the time it covers."
    ),
    N_(
        "Only stored results are read (kpi_rate, process_status), never raw samples; each "
        "window can be recomputed from the raw samples with /api/v1/recompute, which gives what "
        "the live loop stored."
    ),
)


def pct(rate: float | None, digits: int = 2) -> str:
    """``47.06%``; ``—`` without a rate."""
    return "—" if rate is None else f"{rate * 100:.{digits}f}%"


def signed_pct(_: Translator, value: float | None) -> str:
    """``-30.00 pp``: a difference of rates in percentage points."""
    if value is None:
        return "—"
    points = f"{value * 100:+.2f}"
    return _("{value} pp", value=points)


def count(n: int) -> str:
    return f"{n:,}"


HOURS, MINUTES, SECONDS = N_("{n} h"), N_("{n} min"), N_("{n} s")


def duration(_: Translator, seconds: float) -> str:
    """``1 h``, ``5 min``, ``30 s`` (``1 小时`` …): the largest unit it is a whole number of."""
    if seconds % 3600 == 0:
        return _(HOURS, n=format(seconds / 3600, "g"))
    if seconds % 60 == 0:
        return _(MINUTES, n=format(seconds / 60, "g"))
    return _(SECONDS, n=format(seconds, "g"))


class View:
    def __init__(self, doc: ReportDoc, lang: Lang) -> None:
        self.doc = doc
        self.figures = doc.figures
        self.lang: Lang = lang
        self._: Translator = translator(lang)
        self.tz = timezone(timedelta(seconds=doc.utc_offset_s))

    # -- names ------------------------------------------------------------------------------

    def _name(self, named: Named | None, fallback: str) -> str:
        if named is None:
            return fallback
        return display_name(self.lang, named.names, named.name, fallback)

    @property
    def enterprise(self) -> str:
        return self._name(self.doc.names.enterprise, self.figures.enterprise_id)

    def plant(self, plant_id: str) -> str:
        return self._name(self.doc.names.plants.get(plant_id), plant_id)

    def line(self, plant_id: str, line_id: str) -> str:
        return self._name(self.doc.names.lines.get(f"{plant_id}/{line_id}"), line_id)

    def process(self, process_id: str) -> str:
        return self._name(self.doc.names.processes.get(process_id), process_id)

    def equipment(self, process_id: str) -> str:
        named = self.doc.names.processes.get(process_id)
        if named is None:
            return ""
        return display_name(self.lang, named.equipment_names, named.equipment, "")

    def scope_name(self, rate: RateFigures) -> str:
        if rate.scope == "enterprise":
            return self.enterprise
        if rate.scope == "plant":
            return self.plant(rate.scope_id)
        return self.line(rate.plant_id or "", rate.scope_id)

    def scope_kind(self, scope: str) -> str:
        return scope_label(self._, scope)

    # -- times ------------------------------------------------------------------------------

    @property
    def zone(self) -> str:
        offset = self.doc.utc_offset_s
        if offset == 0:
            return "UTC"
        sign = "+" if offset > 0 else "-"
        hours, minutes = divmod(abs(offset) // 60, 60)
        return f"UTC{sign}{hours:02d}:{minutes:02d}"

    def local(self, ts_ns: int) -> datetime:
        return ns_to_datetime(ts_ns).astimezone(self.tz)

    def when(self, ts_ns: int) -> str:
        return self.local(ts_ns).strftime("%Y-%m-%d %H:%M")

    def day(self, ts_ns: int) -> str:
        moment = self.local(ts_ns)
        if (moment.hour, moment.minute) == (0, 0):
            return moment.strftime("%Y-%m-%d")
        return moment.strftime("%Y-%m-%d %H:%M")

    @property
    def period(self) -> str:
        return (
            f"{self.when(self.figures.start_ns)} – {self.when(self.figures.end_ns)} ({self.zone})"
        )

    @property
    def generated(self) -> str:
        moment = datetime.fromtimestamp(self.doc.generated_at_ns / 1e9, UTC).astimezone(self.tz)
        return f"{moment:%Y-%m-%d %H:%M:%S} ({self.zone})"

    # -- codes ------------------------------------------------------------------------------

    def status(self, code: str) -> str:
        return status_label(self._, code)

    def short_status(self, code: str) -> str:
        return term(self._, STATUSES_SHORT, code)

    def reason(self, code: str) -> str:
        return reason_label(self._, code)

    def fix(self, code: str) -> str:
        return reason_fix(self._, code)

    def reasons_text(self, process: ProcessFigures) -> str:
        """``Data stopped (STALE_DATA) × 1,234; …`` most frequent first."""
        ranked = sorted(process.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        return "; ".join(f"{self.reason(code)} ({code}) × {count(n)}" for code, n in ranked)

    def reason_totals(self) -> list[tuple[str, int, int]]:
        """``(code, windows, processes)`` over every key process, most windows first."""
        windows: dict[str, int] = {}
        processes: dict[str, int] = {}
        for p in self.figures.processes:
            for code, n in p.reasons.items():
                windows[code] = windows.get(code, 0) + n
                processes[code] = processes.get(code, 0) + 1
        return sorted(((c, windows[c], processes[c]) for c in windows), key=lambda t: (-t[1], t[0]))

    @property
    def window_length(self) -> str:
        return duration(self._, self.figures.window_s)

    @property
    def stored_lengths(self) -> str:
        """The lengths of the windows stored, when they are not all the tile length."""
        lengths = self.figures.stored_window_s
        if not lengths or lengths == [self.figures.window_s]:
            return ""
        return ", ".join(duration(self._, s) for s in lengths)

    @property
    def tiles_text(self) -> str:
        own = self.figures.rates[0]
        return self._(
            "{stored} of {total} windows of {length} stored",
            stored=count(own.tiles),
            total=count(self.figures.tiles_in_period),
            length=self.window_length,
        )

    @property
    def bucket(self) -> str:
        return self._("per day") if self.figures.trend.bucket == "day" else self._("per week")

    @property
    def title(self) -> str:
        return self._(TITLE)

    def definitions(self) -> list[str]:
        return [self._(text, length=self.window_length, zone=self.zone) for text in DEFINITIONS]

    # -- how to reproduce -------------------------------------------------------------------

    def purpose(self, text: str) -> str:
        """A statement's purpose in the reader's language (a catalogue text)."""
        return self._(text)

    def commands(self, compact: bool) -> list[str]:
        """The ``kpi`` commands; ``compact``: of the ``kpi report`` ones (one per range the
        API accepts, a year has 88) the first, then a line saying how many more."""
        cli = self.doc.reproduce.cli
        chunks = [c for c in cli if c.startswith(f"{RECOMPUTE_COMMAND} ")]
        if not compact or len(chunks) <= 2:
            return list(cli)
        more = self._(
            "… and {n} more kpi report commands like it, one after the other up to {end}, each "
            "over at most {hours} h (what one request of the API accepts); all of them: the "
            "XLSX's Reproduce sheet, or reproduce.cli in the JSON",
            n=count(len(chunks) - 1),
            end=self.figures.end,
            hours=self.doc.reproduce.report_chunk_h,
        )
        return [c for c in cli if c not in chunks] + [chunks[0], f"# {more}"]

    @property
    def check_text(self) -> str:
        c = self.figures.check
        return self._(
            "Check: the key processes' stored statuses give {digitalized} digitalized of "
            "{judged} judged in {tiles} windows; the enterprise's stored kpi_rate points give "
            "{numerator} of {denominator} in {rate_tiles} windows:",
            digitalized=count(c.digitalized),
            judged=count(c.judged),
            tiles=count(c.process_tiles),
            numerator=count(c.numerator),
            denominator=count(c.denominator),
            rate_tiles=count(c.rate_tiles),
        )

    @property
    def verdict(self) -> str:
        return (
            self._("reconciles") if self.figures.check.reconciles else self._("does not reconcile")
        )

    @property
    def verify_command(self) -> str:
        return (
            "python3 -c 'import hashlib,orjson,sys; "
            "d=orjson.loads(sys.stdin.buffer.read()); "
            'print(hashlib.sha256(orjson.dumps(d["figures"], '
            "option=orjson.OPT_SORT_KEYS)).hexdigest())' < report.json"
        )
