"""Two enterprises' stored results in one database, as one collector evaluating both
registers stores them: each report shows its own enterprise's figures and register versions
only (a ``kpi_rate`` point lists every register the collector evaluated in its window)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.report_doc_data import HOUR, Story
from collector.kpi.aggregate import aggregate
from collector.kpi.service import KpiResult, result_lines
from collector.report_doc.document import build_report
from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from collector.storage.writer import make_writer
from common.register_loader import LoadedRegister, load_register
from harness.servers import InfluxServer
from tests import registers
from tests.registers import process, sig

pytestmark = pytest.mark.integration

DEMO = Path(__file__).parents[3] / "examples" / "demo" / "register.yaml"
START = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp()) * 10**9
HOURS = 6


def other_enterprise() -> LoadedRegister:
    signals = [sig("state", role="state")]
    lines = [registers.line("b1", [process("q1", signals), process("q2", signals)])]
    doc = registers.document(
        [registers.plant("works-b", registers.SOURCES, lines)],
        enterprise="ent-b",
        version="ent-b-7",
        declared_rate=0.4,
    )
    return registers.load(doc)


async def test_each_report_shows_its_own_register_versions(
    influxdb: InfluxServer, influx_db: str
) -> None:
    a, b = load_register(DEMO), other_enterprise()
    stories = [Story(a, START, 2), Story(b, START, 2)]  # the version changes on day 1
    lines: list[str] = []
    for h in range(HOURS):
        end = START + (h + 1) * HOUR
        # One window of the live loop evaluates every register: one result for both.
        evaluations = tuple(e for story in stories for e in story.hour(h, end).evaluations)
        result = KpiResult(evaluations[0].window, end, evaluations, tuple(aggregate(evaluations)))
        lines += result_lines(result)
    settings = InfluxSettings(url=influxdb.url, database=influx_db)
    writer, reader = make_writer(settings), InfluxQLReader(settings)
    try:
        await writer.write(lines)
        assert a.enterprise_id == "jinhua-machinery"
        mixed = await reader.query(
            'SELECT last("register_versions") FROM "kpi_rate" WHERE "scope" = \'enterprise\' '
            "AND \"scope_id\" = 'jinhua-machinery'"
        )
        both = ",".join(sorted({a.version, b.version}))
        assert next(mixed[0].rows())["last"] == both  # what the report must not show
        end = START + HOURS * HOUR
        for register, other in ((a, b), (b, a)):
            figures = (await build_report(reader, register, START, end)).figures
            assert [v.value for v in figures.register_versions] == [register.version]
            span = figures.register_versions[0]
            assert (span.first_ns, span.last_ns) == (START + HOUR, end)
            own = {p.plant_id for p in figures.processes}
            assert own == {p.id for p in register.model.plants}
            assert not own & {p.id for p in other.model.plants}
            assert figures.rates[0].tiles == HOURS and figures.check.reconciles
    finally:
        await writer.close()
        await reader.close()
