"""One simulated MTConnect agent: aiohttp's web server answering ``/probe``, ``/current`` and
``/sample`` (and their ``/<device>/…`` forms) with the standard documents, its data items
set from the scenario's machines.

Like a real agent it keeps a bounded ring buffer of observations, each with the next
sequence number; ``/sample?from=&count=`` answers from it (``OUT_OF_RANGE`` for a ``from``
that left the buffer or lies past its end), ``/current`` gives each data item's latest, and
``instanceId`` changes when the agent restarts (``restart``: sequence numbers start again).
Every data item starts ``UNAVAILABLE``, as an agent's do before its adapter reports.

The runner hands every machine sample to ``write``: one observation per sample, a Bad one
(or one without a value) as ``UNAVAILABLE``. A data item's id is the register binding's
``data_item``; its device the binding's ``device``, else the source's, else the process
id. A state signal is served as ``Execution`` and a mode signal as ``ControllerMode`` in
MTConnect's words (RUNNING → ACTIVE, AUTO → AUTOMATIC; a manual value as the register
gives it; a signal with a profile in its profile's words), counters as ``PartCount``
events, other parameters as samples; each device also has its ``<device>_avail``
Availability. Serving while ``stop``ped is not possible, but
``write`` goes on: the buffer keeps what the machine did meanwhile, as an agent whose
network link went down does.

``python -m simulators.mtconnect_agent`` serves one register source on its own; with
``--refill`` every ``/sample`` that reaches the buffer's end finds it filled (made-up
observations, numbered as any): a device as fast as its reader, for ``bench/mtconnect_path.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from common.protocols.mtconnect import (
    MtconnectSignalBinding,
    MtconnectSource,
    parse_mtconnect_endpoint,
)
from common.quality import Quality, classify
from common.register import SignalRole
from common.register_base import SourceConfig
from simulators.dynamics import is_counter
from simulators.equipment import Served, SimulatorError
from simulators.ledger import Ledger
from simulators.machine import AUTO, Sample, SignalSpec
from simulators.standard_values import AUTOMATIC, STATE_NAMES

log = logging.getLogger(__name__)

VERSION = "2.0.0"
DEFAULT_BUFFER_SIZE = 131_072
"""2^17 observations: the usual agent's default."""
UNAVAILABLE = "UNAVAILABLE"
CONDITION_LEVELS = {"normal": "Normal", "warning": "Warning", "fault": "Fault"}
EXECUTION = STATE_NAMES["Execution"]
"""The scenario's machine states in MTConnect's Execution words (a signal with a profile
reports its profile's words already: ``simulators/standard_values.py``)."""
CONTROLLER_MODE = {AUTO: AUTOMATIC["ControllerMode"]}
"""The scenario's automatic mode value in MTConnect's ControllerMode words."""
_SENDER = "plantkpi-sim"


@dataclass(frozen=True)
class AgentItem:
    """A data item of the agent and, unless the agent sets it itself, the signal it serves."""

    id: str
    device: str
    category: str
    """SAMPLE, EVENT or CONDITION."""
    type: str
    """MTConnect's type: EXECUTION, CONTROLLER_MODE, AVAILABILITY, PART_COUNT, TEMPERATURE…"""
    process: str | None = None
    signal: str | None = None

    @property
    def component(self) -> str:
        """Availability belongs to the device itself; the rest to its controller's path."""
        return "Device" if self.type == "AVAILABILITY" else "Path"

    @property
    def element(self) -> str:
        """The element of its observations in a stream (``EXECUTION`` → ``Execution``)."""
        return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", self.type) if part)


class _Observation(NamedTuple):
    sequence: int
    item: AgentItem
    xml: str
    """The observation's element, rendered once when it is made."""


class MtconnectAgent:
    def __init__(
        self,
        source_id: str,
        endpoint: str,
        items: Sequence[AgentItem],
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        ledger: Ledger | None = None,
        refill: bool = False,
    ) -> None:
        if buffer_size < 1:
            raise SimulatorError(f"buffer size {buffer_size} is not positive")
        self.source_id = source_id
        parts = urlsplit(parse_mtconnect_endpoint(endpoint))
        if parts.scheme != "http":
            raise SimulatorError(f"endpoint {endpoint}: the simulated agent serves http only")
        self.host = parts.hostname or "127.0.0.1"
        self.port = 80 if parts.port is None else parts.port  # 0: the OS picks one
        self.path = parts.path.rstrip("/")
        self.buffer_size = buffer_size
        self.ledger = ledger
        self.refill = refill
        self.devices = list(dict.fromkeys(item.device for item in items))
        ids = {item.id for item in items}
        avail = [
            AgentItem(f"{device}_avail", device, "EVENT", "AVAILABILITY")
            for device in self.devices
            if f"{device}_avail" not in ids
        ]
        self.items: list[AgentItem] = [*avail, *items]
        self._by_signal = {
            (item.process, item.signal): item for item in items if item.process is not None
        }
        self._ring: list[_Observation | None] = []
        self._latest: dict[str, _Observation] = {}
        self._start = self._next = 1
        self.instance_id = ""
        self._runner: web.AppRunner | None = None
        self._filled = 0
        self.writes = 0
        self._initialize()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def first_sequence(self) -> int:
        return max(self._start, self._next - self.buffer_size)

    @property
    def next_sequence(self) -> int:
        return self._next

    def restart(self) -> None:
        """What a restarted agent looks like: a new instanceId, an empty buffer numbered
        from 1 again, every data item UNAVAILABLE until written."""
        self._initialize()

    def _initialize(self) -> None:
        self.instance_id = _new_instance_id()
        self._ring = [None] * self.buffer_size
        self._latest = {}
        self._start = self._next = 1
        now = time.time_ns()
        for item in self.items:
            self.observe(item, None, now)
        for item in self.items:
            if item.type == "AVAILABILITY" and item.process is None:
                self.observe(item, "AVAILABLE", now)

    async def prepare(self) -> None:
        """Nothing to build: every data item is UNAVAILABLE until its first value."""

    async def listen(self) -> None:
        app = web.Application()
        for prefix in (self.path, self.path + "/{device}"):
            app.router.add_get(prefix + "/probe", self._probe)
            app.router.add_get(prefix + "/current", self._current)
            app.router.add_get(prefix + "/sample", self._sample)
        app.router.add_get(self.path + "/", self._probe)
        # Stopping is an agent gone: requests in flight are not waited for long.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]  # port 0: the one chosen, kept for a restart

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def write(self, samples: Iterable[tuple[str, Sample]]) -> int:
        written = 0
        for process, sample in samples:
            item = self._by_signal.get((process, sample.signal))
            if item is None:
                raise KeyError(f"source {self.source_id} serves no {process}.{sample.signal}")
            bad = classify(sample.status) is Quality.BAD or sample.value is None
            value = self.observe(item, None if bad else sample.value, sample.ts)
            if self.ledger is not None:
                ts = sample.ts // 1000 * 1000  # the µs an observation's time stamp carries
                self.ledger.record(self.source_id, process, sample.signal, ts, value, sample.status)
            written += 1
        self.writes += written
        return written

    def observe(self, item: AgentItem, value: object, ts_ns: int) -> float | str | None:
        """Append one observation of ``item`` (None: UNAVAILABLE); the value as served."""
        served = _served(item, value)
        sequence = self._next
        self._next += 1
        attributes = (
            f' dataItemId={quoteattr(item.id)} timestamp="{_timestamp(ts_ns)}" '
            f'sequence="{sequence}"'
        )
        if item.category == "CONDITION":
            level = "Unavailable" if served is None else str(served)
            xml = f'<{level}{attributes} type="{item.type}"/>'
        else:
            text = UNAVAILABLE if served is None else escape(str(served))
            xml = f"<{item.element}{attributes}>{text}</{item.element}>"
        observation = _Observation(sequence, item, xml)
        self._ring[sequence % self.buffer_size] = observation
        self._latest[item.id] = observation
        return served

    async def _probe(self, request: web.Request) -> web.Response:
        devices = self._devices(request)
        if devices is None:
            return self._no_device(request)
        header = self._header(sequences=False)
        body = "".join(self._device_xml(device) for device in devices)
        return _xml(_document("MTConnectDevices", header, f"<Devices>{body}</Devices>"))

    async def _current(self, request: web.Request) -> web.Response:
        devices = self._devices(request)
        if devices is None:
            return self._no_device(request)
        wanted = set(devices)
        latest = sorted(
            (o for o in self._latest.values() if o.item.device in wanted), key=lambda o: o.sequence
        )
        return self._streams(devices, latest, self._next)

    async def _sample(self, request: web.Request) -> web.Response:
        devices = self._devices(request)
        if devices is None:
            return self._no_device(request)
        try:
            start = int(request.query.get("from", self.first_sequence))
            count = int(request.query.get("count", 100))
        except ValueError:
            return self._error("INVALID_REQUEST", "'from' and 'count' must be integers")
        if not 1 <= count <= self.buffer_size:
            return self._error("OUT_OF_RANGE", f"'count' must be from 1 to {self.buffer_size}")
        if not self.first_sequence <= start <= self._next:
            return self._error(
                "OUT_OF_RANGE",
                f"'from' must be from {self.first_sequence} to {self._next}, not {start}",
            )
        if self.refill and start + count > self._next:
            self._fill(start + count - self._next)
        end = min(start + count, self._next)
        wanted = set(devices)
        ring, size = self._ring, self.buffer_size
        found = [ring[s % size] for s in range(start, end)]
        picked = [o for o in found if o is not None and o.item.device in wanted]
        return self._streams(devices, picked, end)

    def _streams(
        self, devices: list[str], observations: list[_Observation], next_sequence: int
    ) -> web.Response:
        groups: dict[str, dict[str, dict[str, list[str]]]] = {d: {} for d in devices}
        for observation in observations:
            item = observation.item
            by_category = groups[item.device].setdefault(item.component, {})
            by_category.setdefault(item.category, []).append(observation.xml)
        parts = []
        for device, components in groups.items():
            name = quoteattr(device)
            parts.append(f"<DeviceStream name={name} uuid={quoteattr(device + '-uuid')}>")
            for component, by_category in components.items():
                component_id = quoteattr(f"{device}_{component.lower()}")
                component_name = name if component == "Device" else '"path"'
                parts.append(
                    f'<ComponentStream component="{component}" name={component_name} '
                    f"componentId={component_id}>"
                )
                for category, element in (
                    ("SAMPLE", "Samples"),
                    ("EVENT", "Events"),
                    ("CONDITION", "Condition"),
                ):
                    if category in by_category:
                        parts.append(f"<{element}>{''.join(by_category[category])}</{element}>")
                parts.append("</ComponentStream>")
            parts.append("</DeviceStream>")
        header = self._header(sequences=True, next_sequence=next_sequence)
        return _xml(_document("MTConnectStreams", header, f"<Streams>{''.join(parts)}</Streams>"))

    def _devices(self, request: web.Request) -> list[str] | None:
        """The devices a request names (all when none), or None for one the agent lacks."""
        device = request.match_info.get("device")
        if device is None:
            return self.devices
        for name in self.devices:
            if device in (name, name + "-uuid"):
                return [name]
        return None

    def _no_device(self, request: web.Request) -> web.Response:
        device = request.match_info.get("device", "")
        return self._error("NO_DEVICE", f"Could not find the device '{device}'", status=404)

    def _error(self, code: str, message: str, status: int = 400) -> web.Response:
        header = self._header(sequences=False)
        errors = f"<Errors><Error errorCode={quoteattr(code)}>{escape(message)}</Error></Errors>"
        return _xml(_document("MTConnectError", header, errors), status)

    def _header(self, *, sequences: bool, next_sequence: int | None = None) -> str:
        attributes = (
            f'creationTime="{_timestamp(time.time_ns())}" sender="{_SENDER}" '
            f'instanceId="{self.instance_id}" version="{VERSION}" bufferSize="{self.buffer_size}"'
        )
        if sequences:
            attributes += (
                f' nextSequence="{next_sequence or self._next}" '
                f'firstSequence="{self.first_sequence}" lastSequence="{self._next - 1}"'
            )
        return f"<Header {attributes}/>"

    def _device_xml(self, device: str) -> str:
        own = [i for i in self.items if i.device == device and i.component == "Device"]
        path = [i for i in self.items if i.device == device and i.component == "Path"]
        name = quoteattr(device)
        return (
            f"<Device id={quoteattr(device + '_device')} name={name} "
            f"uuid={quoteattr(device + '-uuid')}>"
            f"<DataItems>{''.join(map(_data_item_xml, own))}</DataItems>"
            f'<Components><Controller id={quoteattr(device + "_controller")} name="controller">'
            f'<Components><Path id={quoteattr(device + "_path")} name="path">'
            f"<DataItems>{''.join(map(_data_item_xml, path))}</DataItems>"
            "</Path></Components></Controller></Components></Device>"
        )

    def _fill(self, count: int) -> None:
        """Made-up observations of the served data items (``--refill``, for the bench)."""
        served = [item for item in self.items if item.process is not None] or self.items
        now = time.time_ns()
        for n in range(count):
            self._filled += 1
            item = served[self._filled % len(served)]
            if item.category == "SAMPLE":
                value: object = float(self._filled % 1000) / 4
            elif item.category == "CONDITION":
                value = "Normal"
            else:
                value = "ACTIVE" if self._filled % 2 else "READY"
            self.observe(item, value, now + n * 1000)


def _served(item: AgentItem, value: object) -> float | str | None:
    """``value`` as the agent serves it (and the edge reads it back)."""
    if value is None:
        return None
    if item.category == "CONDITION":
        level = CONDITION_LEVELS.get(str(value).lower())
        if level is None:
            raise ValueError(
                f"data item {item.id}: a condition is Normal, Warning or Fault, not {value!r}"
            )
        return level
    if item.category == "SAMPLE" and not isinstance(value, str):
        return float(value)  # type: ignore[arg-type]
    text = str(value)
    if item.type == "EXECUTION":
        return EXECUTION.get(text, text)
    if item.type == "CONTROLLER_MODE":
        return CONTROLLER_MODE.get(text, text)
    return text


def _data_item_xml(item: AgentItem) -> str:
    return (
        f'<DataItem category="{item.category}" id={quoteattr(item.id)} type="{item.type}"'
        + (f" name={quoteattr(item.signal)}" if item.signal else "")
        + "/>"
    )


def _document(root: str, header: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{root} xmlns="urn:mtconnect.org:{root}:2.0">{header}{body}</{root}>'
    )


def _xml(text: str, status: int = 200) -> web.Response:
    return web.Response(body=text.encode(), status=status, content_type="application/xml")


_SECOND_TEXT: dict[int, str] = {}


def _timestamp(ts_ns: int) -> str:
    """ISO 8601 UTC to the microsecond, as agents stamp observations."""
    seconds, rest = divmod(ts_ns, 1_000_000_000)
    text = _SECOND_TEXT.get(seconds)
    if text is None:
        if len(_SECOND_TEXT) >= 4096:
            _SECOND_TEXT.clear()
        text = _SECOND_TEXT[seconds] = datetime.fromtimestamp(seconds, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
    return f"{text}.{rest // 1000:06d}Z"


_last_instance = 0


def _new_instance_id() -> str:
    """Seconds since the epoch, as agents use, but never the same twice in one process
    (a test restarts an agent within the second)."""
    global _last_instance
    _last_instance = max(int(time.time()), _last_instance + 1)
    return str(_last_instance)


def _kind(spec: SignalSpec) -> tuple[str, str]:
    """(category, type) of the data item that serves a machine signal."""
    if spec.role is SignalRole.STATE:
        return "EVENT", "EXECUTION"
    if spec.role is SignalRole.MODE:
        return "EVENT", "CONTROLLER_MODE"
    if is_counter(spec.id):
        return "EVENT", "PART_COUNT"
    return "SAMPLE", re.sub(r"[^A-Za-z0-9]+", "_", spec.id).upper()


def items_of(source: MtconnectSource, served: Sequence[Served]) -> list[AgentItem]:
    """The data items that serve a register source's signals; SimulatorError names two
    signals bound to one data item (an agent's ids are unique: it could serve only one)."""
    items: list[AgentItem] = []
    owner: dict[str, str] = {}
    for entry in served:
        binding = entry.binding
        assert isinstance(binding, MtconnectSignalBinding)
        name = f"{entry.process}.{entry.spec.id}"
        if binding.data_item in owner:
            raise SimulatorError(
                f"signals {owner[binding.data_item]} and {name} are both bound to data item "
                f"{binding.data_item}: the simulated agent serves one signal per data item"
            )
        owner[binding.data_item] = name
        device = binding.device or source.device or entry.process
        category, kind = _kind(entry.spec)
        items.append(
            AgentItem(binding.data_item, device, category, kind, entry.process, entry.spec.id)
        )
    return items


def serve(
    source: SourceConfig, endpoint: str, served: Sequence[Served], ledger: Ledger | None
) -> MtconnectAgent:
    """The simulated MTConnect agent of a register source (``simulators/equipment.py``)."""
    assert isinstance(source, MtconnectSource)
    return MtconnectAgent(source.id, endpoint, items_of(source, served), ledger=ledger)


async def _serve_alone(arguments: argparse.Namespace) -> None:
    from common.register_loader import load_register  # only this entry point reads a file

    register = load_register(arguments.register)
    served: list[Served] = []
    sources = [s for p in register.model.plants for s in p.sources if s.id == arguments.source]
    source = sources[0] if sources else None
    if not isinstance(source, MtconnectSource):
        raise SimulatorError(f"{arguments.register}: no MTConnect source {arguments.source}")
    for ref in register.signals():
        if ref.signal.source == source.id and ref.signal.binding is not None:
            spec = SignalSpec.from_register(ref.signal)
            served.append(Served(ref.process.id, spec, ref.signal.binding))
    agent = MtconnectAgent(
        source.id,
        arguments.endpoint or source.endpoint,
        items_of(source, served),
        buffer_size=arguments.buffer_size,
        refill=arguments.refill,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    await agent.listen()
    log.info("MTConnect agent of %s listening on %s", source.id, agent.url)
    try:
        await stop.wait()
    finally:
        await agent.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--register", type=Path, required=True)
    parser.add_argument("--source", required=True, help="the id of an MTConnect source")
    parser.add_argument("--endpoint", help="listen here instead of the source's endpoint")
    parser.add_argument("--buffer-size", type=int, default=DEFAULT_BUFFER_SIZE)
    parser.add_argument("--refill", action="store_true", help="a device as fast as its reader")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve_alone(arguments))
    except SimulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
