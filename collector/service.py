"""Wire the collector together: consumer → pipeline → InfluxDB, the KPI loop, the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from collector.api.app import create_app
from collector.ingest.consumer import UplinkConsumer
from collector.ingest.dead_letters import DeadLetterPublisher
from collector.ingest.pipeline import IngestPipeline
from collector.kpi.service import KpiService
from collector.kpi.timing import TimedKpiService
from collector.settings import CollectorSettings
from collector.storage.reader import InfluxQLReader
from collector.storage.writer import make_writer
from common.register_loader import LoadedRegister, RegisterError, load_register
from common.service import wait_for_stop_or_failure

log = logging.getLogger(__name__)


def load_registers(settings: CollectorSettings) -> dict[str, LoadedRegister]:
    registers: dict[str, LoadedRegister] = {}
    for path in settings.registers:
        register = load_register(path)
        other = registers.get(register.enterprise_id)
        if other is not None:
            raise RegisterError(
                f"{path}: enterprise {register.enterprise_id!r} is already loaded from {other.path}"
            )
        registers[register.enterprise_id] = register
    return registers


class ApiServer(uvicorn.Server):
    """uvicorn inside our event loop: signals belong to the service, which stops the API
    itself after draining ingestion (uvicorn would otherwise take SIGTERM for itself)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Collector:
    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.registers = load_registers(settings)
        self.writer = make_writer(settings.influx, max_lines=settings.write_batch_lines)
        self.reader = InfluxQLReader(settings.influx)
        # Both sides refuse messages; the consumer's connection carries the dead letters.
        dead_letters = DeadLetterPublisher(settings.topic_prefix)
        self.pipeline = IngestPipeline(
            self.writer,
            self.registers,
            dead_letters.publish,
            max_lines=settings.write_batch_lines,
            limits=settings.limits,
        )
        self.consumer = UplinkConsumer(
            self.pipeline,
            settings.broker.address,
            prefix=settings.topic_prefix,
            client_id=settings.client_id,
            session_expiry=settings.session_expiry,
            receive_maximum=settings.receive_maximum,
            share_group=settings.share_group,
            security=settings.broker_security(),
            silence_warning=settings.broker_silence_warning,
            dead_letters=dead_letters,
        )
        # Timed: /metrics reports how long each KPI computation takes.
        self.kpi: KpiService = TimedKpiService(
            list(self.registers.values()),
            self.reader,
            self.writer,
            settings.kpi.thresholds,
            window_s=settings.kpi.window,
            period_s=settings.kpi.period,
            lag_s=settings.kpi.lag,
            correction_horizon_s=settings.kpi.correction_horizon,
            corrections_per_period=settings.kpi.corrections_per_period,
            shard=settings.kpi.shard(),
        )
        self.app = create_app(self, settings.api)
        self.api_server: ApiServer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "collector: registers %s, broker %s, InfluxDB %s",
            ", ".join(f"{r.enterprise_id}@{r.version}" for r in self.registers.values()),
            self.settings.broker.url,
            self.settings.influx.describe(),
        )
        try:
            await self.writer.ensure_database()
        except Exception as exc:  # unreachable at start is normal: writes retry
            log.warning("InfluxDB not ready at start (%s); writes will retry", exc)
        config = uvicorn.Config(
            self.app,
            host=self.settings.api.host,
            port=self.settings.api.port,
            log_level="warning",
            lifespan="off",
        )
        self.api_server = ApiServer(config)
        tasks = {
            name: asyncio.create_task(job, name=name)
            for name, job in (
                ("writer", self.pipeline.run_writer()),
                ("consumer", self.consumer.run()),
                ("kpi", self.kpi.run()),
                ("api", self.api_server.serve()),
            )
        }
        log.info(
            "API on http://%s:%d (OpenAPI at /docs)", self.settings.api.host, self.settings.api.port
        )
        try:
            await wait_for_stop_or_failure(stop, list(tasks.values()))
        finally:
            log.info("stopping collector")
            await self._shutdown(tasks)

    async def _shutdown(self, tasks: dict[str, asyncio.Task[None]]) -> None:
        assert self.api_server is not None
        self.api_server.should_exit = True
        tasks["kpi"].cancel()
        # Take no new batches, but stay connected until the queued ones are written and
        # acknowledged: what is left unacknowledged the broker delivers again after restart.
        self.consumer.pause()
        await self._drain_queue(timeout=20.0)
        tasks["consumer"].cancel()
        tasks["writer"].cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await self.writer.close()
        await self.reader.close()

    async def _drain_queue(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pipeline = self.pipeline
        while (not pipeline.queue.empty() or pipeline.busy) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
