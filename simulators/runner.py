"""Runs a scenario: builds the machines, serves their signals, ticks them in real time.

In-process use (tests, benches)::

    scenario = load_scenario("examples/demo/scenario.yaml")
    async with Simulator(scenario, endpoints={"a1-opcua": "opc.tcp://127.0.0.1:4841"},
                         ledger=Ledger(keep=True), history_dir=Path("history")) as sim:
        ...  # sim.endpoints, sim.brokers, sim.ledger.records
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Self

from common.endpoints import parse_broker_url
from common.protocols.mqtt import MqttSignalBinding, MqttSource
from common.register import Source
from common.register_loader import LoadedRegister
from simulators.equipment import (
    Equipment,
    KeepsHistory,
    Served,
    SimulatorError,
    check_endpoint,
    server,
    serves_endpoint,
    signal_spec,
)
from simulators.ledger import Ledger
from simulators.machine import BehaviourPlan, Machine, Sample, SignalSpec
from simulators.mqtt_devices import MqttBinding, MqttDevices
from simulators.scenario import LoadedScenario

__all__ = ["Simulator", "SimulatorError"]

log = logging.getLogger(__name__)


class Simulator:
    """Every simulated server, device and MQTT publisher of a scenario's register.

    ``endpoints`` / ``brokers`` override a source's URL by source id; ``sources`` limits the
    run to some source ids (default: all). The simulator starts and closes ``ledger``.
    ``history_dir``: each OPC UA server keeps the history of every variable it serves in
    ``<history_dir>/<source id>.sqlite`` (Historical Access), across restarts; default none.
    """

    def __init__(
        self,
        scenario: LoadedScenario,
        *,
        endpoints: Mapping[str, str] | None = None,
        brokers: Mapping[str, str] | None = None,
        sources: Collection[str] | None = None,
        tick: float = 0.1,
        ledger: Ledger | None = None,
        history_dir: Path | None = None,
    ) -> None:
        if tick <= 0:
            raise SimulatorError(f"tick must be positive, got {tick}")
        self.scenario = scenario
        self.tick = tick
        self.ledger = ledger
        register = scenario.register
        all_sources = _unique_sources(register)
        endpoints = dict(endpoints or {})
        brokers = dict(brokers or {})
        _check_overrides(endpoints, all_sources, serves_endpoint, "endpoint", register.path.name)
        _check_overrides(
            brokers, all_sources, lambda kind: kind == "mqtt", "broker", register.path.name
        )
        _check_urls(endpoints, brokers, all_sources)
        if sources is not None:
            unknown = sorted(set(sources) - set(all_sources))
            if unknown:
                raise SimulatorError(
                    f"unknown source ids {unknown} (sources in {register.path.name}: "
                    f"{sorted(all_sources)})"
                )
        selected = {sid: s for sid, s in all_sources.items() if sources is None or sid in sources}

        served: dict[str, list[Served]] = {
            sid: [] for sid, s in selected.items() if serves_endpoint(s.kind)
        }
        mqtt_bindings: dict[str, list[MqttBinding]] = {
            sid: [] for sid, s in selected.items() if isinstance(s, MqttSource)
        }
        self._route: dict[tuple[str, str], str] = {}
        self._specs: dict[str, list[SignalSpec]] = {}
        self._hints: dict[str, str] = {}
        for ref in register.signals():
            signal = ref.signal
            if not signal.is_automated or signal.source not in selected:
                continue
            assert signal.source is not None
            process = ref.process
            spec = signal_spec(selected[signal.source].kind, signal)
            binding = signal.binding
            if signal.source in served and binding is not None:
                served[signal.source].append(Served(process.id, spec, binding))
            elif isinstance(binding, MqttSignalBinding) and binding.sparkplug is not None:
                raise SimulatorError(
                    f"{register.path.name}: signal {process.id}.{signal.id} is read over "
                    "Sparkplug B, which scenarios do not simulate yet (tests drive "
                    "simulators.sparkplug_devices.SparkplugEdgeNode directly)"
                )
            elif isinstance(binding, MqttSignalBinding):
                if binding.topic is None:
                    raise SimulatorError(
                        f"{register.path.name}: signal {process.id}.{signal.id} is bound "
                        "through a wildcard subscription; the simulator publishes to exact "
                        "topics only (give the signal a 'topic')"
                    )
                mqtt_bindings[signal.source].append(
                    MqttBinding(
                        process.id,
                        signal.id,
                        binding.topic,
                        binding.path,
                        binding.timestamp_path,
                        binding.quality_path,
                        binding.select,
                    )
                )
            else:
                raise SimulatorError(
                    f"{register.path.name}: signal {process.id}.{signal.id}: the simulator "
                    f"has no {signal.binding.kind if signal.binding else 'unbound'} equipment"
                )
            self._route[(process.id, signal.id)] = signal.source
            self._specs.setdefault(process.id, []).append(spec)
            self._hints[process.id] = f"{process.id} {process.name} {process.equipment}"

        self.equipment: dict[str, Equipment] = {}
        """Source id → its simulated server or device (OPC UA, Modbus, …)."""
        for sid, items in served.items():
            if not items:
                continue
            source = selected[sid]
            try:
                self.equipment[sid] = server(source.kind)(
                    source, endpoints.get(sid, getattr(source, "endpoint", "")), items, ledger
                )
            except SimulatorError as exc:
                raise SimulatorError(f"{register.path.name}: source {sid}: {exc}") from None
        self.history_dir = history_dir
        if history_dir is not None:
            self._keep_history(history_dir)
        self.mqtt: dict[str, MqttDevices] = {
            sid: MqttDevices(
                sid,
                brokers.get(sid, _mqtt(selected[sid]).broker),
                bindings,
                qos=_mqtt(selected[sid]).qos,
                ledger=ledger,
            )
            for sid, bindings in mqtt_bindings.items()
            if bindings
        }
        self.machines: dict[str, Machine] = {}
        """Built by ``start``, once the servers are ready, so the clock starts with them."""
        self.start_ns = 0
        self._loop_task: asyncio.Task[None] | None = None
        self._started = False

    @property
    def endpoints(self) -> dict[str, str]:
        """Source id → the URL its simulated equipment listens on."""
        return {sid: equipment.url for sid, equipment in self.equipment.items()}

    @property
    def brokers(self) -> dict[str, str]:
        """MQTT source id → the broker its devices publish to."""
        return {sid: str(devices.broker) for sid, devices in self.mqtt.items()}

    async def start(self) -> None:
        """Start servers and devices; returns once the OPC UA servers listen.

        MQTT devices connect in the background (and keep retrying); see ``MqttDevices``.
        """
        if self._started:
            return
        self._started = True
        try:
            if self.ledger is not None:
                await self.ledger.start()
            for equipment in self.equipment.values():
                await equipment.prepare()
            # Whole milliseconds: every source timestamp survives MQTT's ms resolution.
            self.start_ns = -(-time.time_ns() // 1_000_000) * 1_000_000
            seed = self.scenario.seed
            self.machines = {
                pid: Machine(
                    pid,
                    specs,
                    seed=seed,
                    start_ns=self.start_ns,
                    plan=self._plan(pid, specs),
                    hint=self._hints[pid],
                )
                for pid, specs in self._specs.items()
            }
            # The first values are in place before anyone can connect.
            await self._tick(self.start_ns)
            for equipment in self.equipment.values():
                await equipment.listen()
            for devices in self.mqtt.values():
                await devices.start()
        except BaseException:
            await self.stop()
            raise
        self._loop_task = asyncio.create_task(self._tick_loop(), name="simulator-ticks")

    async def run(self, duration: float | None = None, stop: asyncio.Event | None = None) -> None:
        """Start, run until ``duration`` seconds passed or ``stop`` is set, then stop."""
        await self.start()
        assert self._loop_task is not None
        waiters: set[asyncio.Future[Any]] = {self._loop_task}
        stop_waiter = asyncio.ensure_future(stop.wait()) if stop is not None else None
        if stop_waiter is not None:
            waiters.add(stop_waiter)
        try:
            await asyncio.wait(waiters, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
            if self._loop_task.done():
                self._loop_task.result()  # a failed tick loop is an error of the run
        finally:
            if stop_waiter is not None:
                stop_waiter.cancel()
            await self.stop()

    async def stop(self) -> None:
        """Stop ticking, drain MQTT, stop the servers, close the ledger. Idempotent."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Concurrently: each asyncua server takes up to a second to stop.
        results = await asyncio.gather(
            *(devices.stop() for devices in self.mqtt.values()),
            *(equipment.stop() for equipment in self.equipment.values()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                log.error("stopping a simulated source failed: %r", result)
        if self.ledger is not None:
            await self.ledger.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _keep_history(self, folder: Path) -> None:
        keepers = [e for e in self.equipment.values() if isinstance(e, KeepsHistory)]
        for equipment in keepers:
            equipment.keep_history(folder)
        if not keepers:
            log.warning(
                "history folder %s: none of the simulated sources keeps a history "
                "(OPC UA servers do)",
                folder,
            )

    def _plan(self, process_id: str, specs: list[SignalSpec]) -> BehaviourPlan:
        plan = self.scenario.plan(process_id)
        if plan.signals is None:
            return plan
        # With ``sources`` limiting the run, some listed signals may not be simulated here.
        return dataclasses.replace(plan, signals=plan.signals & {s.id for s in specs})

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += self.tick
            delay = deadline - loop.time()
            if delay < 0:  # fell behind (a long write): catch up without a burst of ticks
                deadline = loop.time()
                delay = 0.0
            await asyncio.sleep(delay)
            await self._tick(time.time_ns())

    async def _tick(self, now_ns: int) -> None:
        by_source: dict[str, list[tuple[str, Sample]]] = {}
        for pid, machine in self.machines.items():
            for sample in machine.step(now_ns):
                source = self._route[(pid, sample.signal)]
                by_source.setdefault(source, []).append((pid, sample))
        for source, items in by_source.items():
            if source in self.mqtt:
                self.mqtt[source].submit(items)
            else:
                await self.equipment[source].write(items)


def _unique_sources(register: LoadedRegister) -> dict[str, Source]:
    """Every source of the register by id; ids must be unique across its plants."""
    sources: dict[str, Source] = {}
    owner: dict[str, str] = {}
    for plant in register.model.plants:
        for source in plant.sources:
            if source.id in owner:
                # The register allows it (ids are per plant); overrides by id could not.
                raise SimulatorError(
                    f"{register.path.name}: source id {source.id!r} is used by plants "
                    f"{owner[source.id]} and {plant.id}; the simulator needs unique source ids"
                )
            owner[source.id] = plant.id
            sources[source.id] = source
    return sources


def _check_urls(
    endpoints: Mapping[str, str], brokers: Mapping[str, str], sources: Mapping[str, Source]
) -> None:
    for source_id, url in endpoints.items():
        check_endpoint(sources[source_id], url)
    for source_id, url in brokers.items():
        try:
            parse_broker_url(url)
        except ValueError as exc:
            raise SimulatorError(f"broker for {source_id}: {exc}") from None


def _check_overrides(
    overrides: Mapping[str, str],
    sources: Mapping[str, Source],
    takes: Callable[[str], bool],
    what: str,
    register_name: str,
) -> None:
    for source_id in overrides:
        source = sources.get(source_id)
        if source is None:
            raise SimulatorError(
                f"{what} override for unknown source {source_id!r} "
                f"(sources in {register_name}: {sorted(sources)})"
            )
        if not takes(source.kind):
            raise SimulatorError(
                f"{what} override for {source_id!r}, but it is a {source.kind} source"
            )


def _mqtt(source: Source) -> MqttSource:
    assert isinstance(source, MqttSource)
    return source
