"""The reader's plant and process filters against a real influxd (the live KPI loop reads a
big plant in groups of processes)."""

from __future__ import annotations

import pytest

from collector.storage.lineprotocol import StoredSample, reconfirm_line, sample_lines
from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from collector.storage.writer import make_writer
from harness.servers import InfluxServer

pytestmark = pytest.mark.integration

S = 1_000_000_000
T = 1_795_852_800 * S


def sample(plant: str, process: str, recv_s: int = 0) -> StoredSample:
    return StoredSample(
        "ent", plant, "l1", process, "state", T, "RUN", 0, T + recv_s * S, None, "e", 1
    )


async def test_samples_and_receipts_of_some_processes_only(
    influxdb: InfluxServer, influx_db: str
) -> None:
    settings = InfluxSettings(url=influxdb.url, database=influx_db)
    writer, reader = make_writer(settings), InfluxQLReader(settings)
    try:
        # Ids with regex metacharacters must match themselves only.
        resent = [sample("pl", p, recv_s=5) for p in ("m.1", "m-2", "mx1")]
        resent.append(sample("other", "m.1", recv_s=5))
        lines = sample_lines(resent)
        lines += [line for s in resent if (line := reconfirm_line(s)) is not None]
        await writer.write(lines)
        got = await reader.samples(T, T + S, 0, "ent", plant="pl", processes=["m.1", "m-2"])
        assert sorted(got) == [("m-2", "state"), ("m.1", "state")]
        receipts = await reader.reconfirmations(T, T + 10 * S, "ent", plant="pl", processes=["m.1"])
        assert receipts == {("m.1", "state"): [(T + 5 * S, T)]}
    finally:
        await writer.close()
        await reader.close()
