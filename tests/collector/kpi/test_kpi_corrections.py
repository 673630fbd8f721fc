"""Windows stored before their plant's data had arrived are found again after a restart and
corrected once the edge's watermark moves (real influxd)."""

from __future__ import annotations

import pytest

from collector.kpi import EDGE_SOURCE, SourceEvent, aggregate, evaluate
from collector.kpi.service import KpiResult, KpiService, result_lines
from collector.storage.lineprotocol import StoredSample, sample_lines, watermark_line
from collector.storage.reader import InfluxQLReader
from collector.storage.schema import PROCESS_STATUS
from collector.storage.settings import InfluxSettings
from collector.storage.writer import make_writer
from common.quality import GOOD
from harness.servers import InfluxServer
from tests.collector.kpi.kpi_testkit import DEFAULTS, at, window
from tests.registers import process, register

pytestmark = pytest.mark.integration


async def test_an_incomplete_window_is_recovered_and_corrected(
    influxdb: InfluxServer, influx_db: str
) -> None:
    settings = InfluxSettings(url=influxdb.url, database=influx_db)
    reg = register([process()], enterprise="ent")
    writer, reader = make_writer(settings), InfluxQLReader(settings)
    try:
        win = window(0, 100)
        # The state set before the window, the speed every second of it: complete data.
        samples = [
            StoredSample(
                "ent", "pl", "l1", "p1", "state", at(-10), "RUNNING", GOOD, at(-10), None, "e", 1
            )
        ]
        samples += [
            StoredSample("ent", "pl", "l1", "p1", "speed", at(s), 1.0, GOOD, at(s), None, "e", 1)
            for s in range(-1, 100)
        ]
        await writer.write(sample_lines(samples))
        # What the live loop stored while the edge had delivered only up to 40 s.
        will = SourceEvent(at(40), False, "uplink link 1 lost (Last Will)", at(-3600), 1)
        live = evaluate(reg, win, {}, {("pl", EDGE_SOURCE): [will]}, DEFAULTS, {"pl": at(40)})
        await writer.write(result_lines(KpiResult(win, 0, (live,), tuple(aggregate([live])))))

        service = KpiService(
            [reg],
            reader,
            writer,
            DEFAULTS,
            window_s=100,
            period_s=10,
            lag_s=0,
            correction_horizon_s=10**9,
        )
        await service.recover_pending()
        assert list(service.pending) == [win]
        assert await service.correct_pending() == 0  # the watermark has not moved
        # The backlog arrives: the edge vouches for everything until 120 s.
        await writer.write([watermark_line("ent", "pl", "e", at(120), at(-3600), 9)])
        assert await service.correct_pending() == 1 and service.pending == {}
        (row,) = await reader.points(PROCESS_STATUS.name, win.end_ns, win.end_ns + 1)
        assert row.fields["status"] == "DIGITALIZED" and row.fields["complete"] is True
        assert row.fields["revision"] == 1
    finally:
        await reader.close()
        await writer.close()
