"""Against a real influxd: a batch mixing hostile and good samples stores every good one.

InfluxDB refuses a whole write for one unparsable line (a time out of range, an integer
beyond int64): the rules of docs/hostile-input.md must keep such samples out of the
write, and whatever they let through must round-trip exactly.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from collector.ingest.pipeline import IngestPipeline
from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from collector.storage.writer import make_writer
from common.register_loader import load_register
from common.topics import EdgeTopic, edge_topic
from harness.servers import InfluxServer
from tests.edge.source_kit import eventually

pytestmark = pytest.mark.integration

REGISTER = load_register(Path(__file__).parents[2] / "examples" / "demo" / "register.yaml")
E = REGISTER.enterprise_id
TOPIC = EdgeTopic(E, "plant-a", "edge-plant-a", "samples")
S = 1_000_000_000

# Values the rules let through, each at the edge of a rule: stored and read back as sent.
KEPT: list[tuple[str, Any]] = [
    ("1.5", 1.5),
    (str(2**63 - 1), float(2**63 - 1)),  # numbers are stored as float
    (str(-(2**63)), float(-(2**63))),
    ("5e-324", 5e-324),
    ("1.7976931348623157e308", 1.7976931348623157e308),
    (json.dumps("nul \x00, tab \t, bell \x07, esc \x1b"), "nul \x00, tab \t, bell \x07, esc \x1b"),
    (json.dumps("🙂" * 1024), "🙂" * 1024),
    (json.dumps('quote " backslash \\ end\\'), 'quote " backslash \\ end\\'),
]
# Values the rules refuse, each alone.
REFUSED = ["NaN", "Infinity", "-Infinity", str(2**63), json.dumps("x" * 1025)]


async def test_hostile_samples_never_poison_the_write_of_good_ones(
    influxdb: InfluxServer, influx_db: str
) -> None:
    settings = InfluxSettings(url=influxdb.url, database=influx_db)
    writer = make_writer(settings)
    letters: list[str] = []

    async def dead_letter(*args: Any) -> None:
        letters.append(args[3])

    pipeline = IngestPipeline(writer, {E: REGISTER}, dead_letter, flush_interval=0.05)
    base = time.time_ns() - 3600 * S
    rows: list[tuple[str, str]] = []
    for i, (text, _) in enumerate(KEPT):
        rows.append((str(base + i * S), text))
    for i, text in enumerate(REFUSED):
        rows.append((str(base + (100 + i) * S), text))
    rows.append(("-1", "1.0"))  # before 1970
    rows.append((str(time.time_ns() + 7200 * S), "1.0"))  # two hours ahead
    rows.append((str(2**64), "1.0"))  # beyond InfluxDB's time range
    n = len(rows)
    columns = {
        "process": ['"a2-screwing"'] * n,
        "signal": ['"torque"'] * n,
        "ts": [ts for ts, _ in rows],
        "value": [value for _, value in rows],  # raw JSON text: NaN tokens stay as sent
        "status": ["0"] * n,
        "recv": [str(base)] * n,
        "server_ts": ["null"] * n,
    }
    samples = ",".join(f'"{name}":[{",".join(items)}]' for name, items in columns.items())
    payload = (
        f'{{"schema":1,"edge":"edge-plant-a","enterprise":"{E}","plant":"plant-a",'
        f'"register_version":"v","boot":1,"seq":1,"sent":{base},"samples":{{{samples}}}}}'
    ).encode()

    await writer.ensure_database()
    task = asyncio.create_task(pipeline.run_writer())
    acked: list[bool] = []
    try:
        topic_name = edge_topic("plantkpi", E, "plant-a", "edge-plant-a", "samples")
        await pipeline.submit_batch(TOPIC, topic_name, payload, lambda: acked.append(True))
        await eventually(lambda: acked == [True], what="the batch settled")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.close()

    assert letters == []  # no write was refused
    assert pipeline.stats.samples_written == len(KEPT)
    assert pipeline.stats.samples_rejected == n - len(KEPT)
    assert pipeline.stats.samples_rejected_by_rule == {
        "nonfinite": 3,
        "int_range": 1,
        "string_length": 1,
        "ts_before_1970": 1,
        "ts_future": 2,
    }
    reader = InfluxQLReader(settings)
    try:
        found = await reader.samples(0, time.time_ns() + 10**12, 0, E)
    finally:
        await reader.close()
    assert found[("a2-screwing", "torque")].value == [value for _, value in KEPT]
