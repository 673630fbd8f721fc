"""Reports from the hourly partials the live loop stores (real influxd): equal to a
one-pass recomputation from the raw samples, without reading them."""

from __future__ import annotations

import pytest

from collector.kpi import Window
from collector.kpi.service import KpiService
from collector.storage.lineprotocol import StoredSample, sample_lines
from collector.storage.settings import InfluxSettings
from collector.storage.writer import make_writer
from common.quality import GOOD
from harness.counting_reader import CountingReader
from harness.servers import InfluxServer
from tests.collector.kpi.kpi_testkit import DEFAULTS, at, iso
from tests.registers import process, register, sig

pytestmark = pytest.mark.integration

HOUR = 3600
BAD = 0x80000000


def stored(signal: str, s: float, value: float | str, status: int = GOOD) -> StoredSample:
    return StoredSample("ent", "pl", "l1", "p1", signal, at(s), value, status, at(s), None, "e", 1)


async def test_hour_shift_and_day_reports_from_stored_partials_equal_recompute(
    influxdb: InfluxServer, influx_db: str
) -> None:
    settings = InfluxSettings(url=influxdb.url, database=influx_db)
    signals = [sig("state", role="state", update="on_change"), sig("speed", interval="10s")]
    reg = register(
        [process(signals=signals)],
        downtime=[{"start": iso(1.5 * HOUR), "end": iso(1.5 * HOUR + 700)}],
    )
    writer, reader = make_writer(settings), CountingReader(settings)
    try:
        # A state change each 40 min; the speed every 10 s, silent for 20 min of the
        # second hour and bad for 5 min of the first.
        data = [
            stored("state", s, "RUN" if s % 4800 else "IDLE") for s in range(-10, 3 * HOUR, 2400)
        ]
        for s in range(-10, 3 * HOUR, 10):
            if HOUR + 600 <= s < HOUR + 1800:
                continue
            data.append(stored("speed", s, 1.0, BAD if 1200 <= s < 1500 else GOOD))
        await writer.write(sample_lines(data))
        service = KpiService([reg], reader, writer, DEFAULTS, window_s=600, period_s=60, lag_s=0)
        for end in range(600, 2 * HOUR + 1, 60):  # the live loop, period by period
            await service.evaluate_now(Window(at(end - 600), at(end)))
        hour1, hour2 = Window(at(0), at(HOUR)), Window(at(HOUR), at(2 * HOUR))
        both, clipped = Window(at(0), at(2 * HOUR)), Window(at(900), at(HOUR))
        reads = reader.calls
        reports = await service.report([hour1, hour2, both])
        assert reader.calls == reads  # no raw sample read
        assert service.report_from_partials == 3
        for result in reports:
            reference = await service.compute(result.window)
            assert [e.to_dict() for e in result.evaluations] == [
                e.to_dict() for e in reference.evaluations
            ]
            assert [r.to_dict() for r in result.rates] == [r.to_dict() for r in reference.rates]
        # Not stored (the third hour is under way) or not on the hour grid: from raw.
        later = Window(at(2 * HOUR), at(3 * HOUR))
        for window in (clipped, later):
            (result,) = await service.report([window])
            reference = await service.compute(window)
            assert [e.to_dict() for e in result.evaluations] == [
                e.to_dict() for e in reference.evaluations
            ]
        assert service.report_from_partials == 3
    finally:
        await writer.close()
        await reader.close()
