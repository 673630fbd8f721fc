"""One small plant's history in a real influxd, and apps over it.

Register ``ent-a`` (declared rate 0.8): line ``l1`` has ``p1`` (discrete, healthy) and
``p2`` (process; its temperature turns Uncertain at 09:00), line ``l2`` has ``p3``
(discrete, its speed never reports). Raw samples run 06:50–10:00 UTC on 2026-11-28; the
"live loop" results of 1 h windows ending every 20 min from 08:20 to 10:00 are written as
``process_status``/``kpi_rate`` with ``result_lines``, exactly as the KPI loop does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from collector.api.app import create_app
from collector.ingest.consumer import UplinkConsumer
from collector.ingest.pipeline import IngestPipeline
from collector.kpi import Thresholds, Window
from collector.kpi.service import KpiResult, result_lines
from collector.kpi.timing import TimedKpiService
from collector.settings import ApiSettings
from collector.storage.lineprotocol import StoredSample, sample_lines
from collector.storage.reader import InfluxQLReader
from collector.storage.settings import InfluxSettings
from collector.storage.writer import make_writer
from common.endpoints import parse_broker_url
from common.quality import GOOD
from common.register_loader import LoadedRegister
from harness.servers import InfluxServer, free_port
from tests import registers
from tests.collector.kpi.kpi_testkit import S, at
from tests.registers import process, sig

UNCERTAIN = 0x40000000
MIN = 60 * S
LIVE_ENDS = [at(20 * 60 * k) for k in range(1, 7)]  # 08:20, 08:40, … 10:00
"""Ends of the stored "live" windows (each 1 h long)."""


def build_register() -> LoadedRegister:
    ten_s = {"interval": "10s"}

    def machine(
        process_id: str, parameter: str, industry: str = "discrete", **extra: Any
    ) -> dict[str, Any]:
        signals = [sig("state", role="state", update="on_change"), sig(parameter, **ten_s)]
        return process(process_id, signals, industry=industry, **extra)

    turning: dict[str, Any] = {"name": "Turning", "names": {"zh": "车削"}, "equipment": "CNC lathe"}
    turning["equipment_names"] = {"zh": "数控车床"}
    lines = [
        registers.line(
            "l1",
            [machine("p1", "speed", **turning), machine("p2", "temp", industry="process")],
            names={"en": "Line one", "zh": "一线"},
        ),
        registers.line("l2", [machine("p3", "speed")]),
    ]
    doc = registers.document(
        [registers.plant("pl", registers.SOURCES, lines, names={"zh": "甲厂"})],
        enterprise="ent-a",
        version="api-test-1",
        name="Enterprise A",
        names={"zh": "甲企业"},
        declared_rate=0.8,
    )
    return registers.load(doc)


def raw_samples() -> list[StoredSample]:
    out: list[StoredSample] = []

    def add(proc: str, line: str, signal: str, ts: int, value: Any, status: int) -> None:
        out.append(
            StoredSample("ent-a", "pl", line, proc, signal, ts, value, status, ts, None, "e1", 1)
        )

    for proc, line in (("p1", "l1"), ("p2", "l1"), ("p3", "l2")):
        add(proc, line, "state", at(-70 * 60), "RUNNING", GOOD)
    t = at(-70 * 60)
    while t < at(2 * 3600):
        add("p1", "l1", "speed", t, 1200.0, GOOD)
        add("p2", "l1", "temp", t, 80.5, UNCERTAIN if t >= at(3600) else GOOD)
        t += 10 * S
    return out


@dataclass
class Runtime:
    pipeline: IngestPipeline
    consumer: UplinkConsumer
    kpi: TimedKpiService


def make_runtime(
    register: LoadedRegister, influx: InfluxSettings, latest: KpiResult | None
) -> Runtime:
    """The collector's real parts, unconnected: nothing here does I/O until a route reads."""
    writer = make_writer(influx)
    pipeline = IngestPipeline(writer, {register.enterprise_id: register}, _no_dead_letters)
    consumer = UplinkConsumer(
        pipeline, parse_broker_url("mqtt://127.0.0.1:1"), prefix="plantkpi", client_id="api-test"
    )
    kpi = TimedKpiService(
        [register],
        InfluxQLReader(influx),
        writer,
        Thresholds(),
        window_s=3600,
        period_s=60,
        lag_s=10,
    )
    kpi.latest = latest
    return Runtime(pipeline, consumer, kpi)


@dataclass
class Plant:
    influx: InfluxSettings
    register: LoadedRegister
    live: list[KpiResult]
    """The stored "live" results, in time order."""

    def runtime(self, influx: InfluxSettings | None = None) -> Runtime:
        return make_runtime(self.register, influx or self.influx, self.live[-1])

    def app(self, runtime: Runtime | None = None, **api: Any) -> FastAPI:
        return create_app(runtime or self.runtime(), ApiSettings(**api))


async def _no_dead_letters(*_args: object) -> None:
    raise AssertionError("no batch goes through the pipeline in these tests")


@pytest.fixture(scope="module")
async def plant(influxdb: InfluxServer) -> AsyncIterator[Plant]:
    database = f"api_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(database)
    settings = InfluxSettings(url=influxdb.url, database=database)
    register = build_register()
    writer = make_writer(settings)
    reader = InfluxQLReader(settings)
    try:
        await writer.write(sample_lines(raw_samples()))
        service = TimedKpiService(
            [register], reader, writer, Thresholds(), window_s=3600, period_s=60, lag_s=10
        )
        live = []
        for end in LIVE_ENDS:
            result = await service.compute(Window(end - 60 * MIN, end))
            await writer.write(result_lines(result))
            live.append(result)
        yield Plant(settings, register, live)
    finally:
        await writer.close()
        await reader.close()
        influxdb.drop_database(database)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served by uvicorn on this loop, on a free loopback port: its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # uvicorn offers no event to wait on
            if task.done():
                task.result()
                raise AssertionError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=headers
    )


class Apps:
    """Builds apps over the plant's database and closes their InfluxDB sessions after."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.runtimes: list[Runtime] = []

    def runtime(self, influx: InfluxSettings | None = None) -> Runtime:
        runtime = self.plant.runtime(influx)
        self.runtimes.append(runtime)
        return runtime

    def __call__(self, runtime: Runtime | None = None, **api: Any) -> FastAPI:
        return self.plant.app(runtime or self.runtime(), **api)

    async def close(self) -> None:
        for runtime in self.runtimes:
            await runtime.kpi.reader.close()
            await runtime.kpi.writer.close()


@pytest.fixture
async def make_app(plant: Plant) -> AsyncIterator[Apps]:
    apps = Apps(plant)
    yield apps
    await apps.close()
