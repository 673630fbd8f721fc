"""One simulated Modbus TCP device (or gateway): pymodbus's own server, its registers set
from the scenario's machines.

Each served device id has the four tables (coils, discrete inputs, holding and input
registers) covering the addresses the register names. The runner hands every machine
sample to ``write``, which encodes it as the register's binding says (``encode`` is the
edge's ``decode`` inverted) into an image; pymodbus's read hook copies the image into the
answer, so a poll reads the latest values. A sample with a Bad status makes reads of its
address answer exception 4 (server device failure) until a good value comes: what a PLC
with a failed input module does. Writes by Modbus clients are refused (read-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from common.protocols.modbus import ModbusSignalBinding, ModbusSource, Order, parse_modbus_endpoint
from common.protocols.modbus_codec import encode
from common.quality import Quality, classify
from common.register_base import SourceConfig
from simulators.equipment import Served
from simulators.ledger import Ledger
from simulators.machine import Sample, SignalSpec

log = logging.getLogger(__name__)

_TABLES = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
"""Read function code → table."""


@dataclass(frozen=True)
class ModbusBinding:
    """A machine signal served at a register address of one device id."""

    process: str
    spec: SignalSpec
    device_id: int
    binding: ModbusSignalBinding


class ModbusDeviceServer:
    def __init__(
        self,
        source_id: str,
        endpoint: str,
        bindings: Sequence[ModbusBinding],
        *,
        byte_order: Order = "big",
        word_order: Order = "big",
        ledger: Ledger | None = None,
    ) -> None:
        self.source_id = source_id
        self.host, self.port = parse_modbus_endpoint(endpoint)
        self.byte_order = byte_order
        self.word_order = word_order
        self.ledger = ledger
        self._bindings = {(b.process, b.spec.id): b for b in bindings}
        self._image: dict[tuple[int, str], dict[int, int]] = {}
        """(device id, table) → address → register (or bit) value."""
        self._failed: dict[tuple[int, str], set[int]] = {}
        """Addresses answering exception 4 (their last sample was Bad)."""
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.writes = 0

    @property
    def url(self) -> str:
        return f"modbus://{self.host}:{self.port}"

    async def listen(self) -> None:
        devices = [self._device(device_id) for device_id in sorted(self._device_ids())]
        self._server = ModbusTcpServer(devices, address=(self.host, self.port))
        self._task = asyncio.create_task(
            self._server.serve_forever(), name=f"modbus-{self.source_id}"
        )
        for _ in range(200):  # listening within 2 s, or the task's error says why not
            if self._server.is_active() or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def write(self, samples: Iterable[tuple[str, Sample]]) -> int:
        written = 0
        for process, sample in samples:
            served = self._bindings.get((process, sample.signal))
            if served is None:
                raise KeyError(f"source {self.source_id} serves no {process}.{sample.signal}")
            binding = served.binding
            key = (served.device_id, binding.table)
            addresses = range(binding.address, binding.address + binding.registers)
            failed = self._failed.setdefault(key, set())
            if classify(sample.status) is Quality.BAD or sample.value is None:
                failed.update(addresses)
            else:
                failed.difference_update(addresses)
                self._set(key, binding, sample.value)
            if self.ledger is not None:
                self.ledger.record(
                    self.source_id, process, sample.signal, sample.ts, sample.value, sample.status
                )
            written += 1
        self.writes += written
        return written

    def _set(self, key: tuple[int, str], binding: ModbusSignalBinding, value: object) -> None:
        image = self._image.setdefault(key, {})
        if binding.table in ("coil", "discrete"):
            image[binding.address] = int(bool(value))
        elif binding.bit is not None:
            word = image.get(binding.address, 0) & ~(1 << binding.bit)
            image[binding.address] = word | (int(bool(value)) << binding.bit)
        else:
            number = value if isinstance(value, str) or not isinstance(value, bool) else int(value)
            words = encode(number, binding, self.byte_order, self.word_order)  # type: ignore[arg-type]
            for offset, word in enumerate(words):
                image[binding.address + offset] = word

    def _device_ids(self) -> set[int]:
        return {b.device_id for b in self._bindings.values()}

    def _device(self, device_id: int) -> SimDevice:
        def block(table: str) -> list[SimData]:
            ends = [
                b.binding.address + b.binding.registers
                for b in self._bindings.values()
                if b.device_id == device_id and b.binding.table == table
            ]
            kind = DataType.BITS if table in ("coil", "discrete") else DataType.REGISTERS
            return [SimData(0, count=max(ends, default=1), datatype=kind, readonly=True)]

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            current: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            # pymodbus hands the whole block (``current``, from ``start_address``), and for
            # bits ``count`` in registers of 16: the image is small, so all of it is copied.
            table = _TABLES.get(function_code)
            if table is None or set_values is not None:
                return None
            bits = table in ("coil", "discrete")
            asked = (
                range(address, address + count * 16) if bits else range(address, address + count)
            )
            if self._failed.get((device_id, table), set()).intersection(asked):
                return ExcCodes.DEVICE_FAILURE
            for at, value in self._image.get((device_id, table), {}).items():
                if not bits:
                    current[at - start_address] = value
                    continue
                index, bit = at // 16 - start_address, at % 16
                current[index] = (current[index] & ~(1 << bit)) | (value << bit)
            return None

        return SimDevice(
            device_id,
            simdata=(block("coil"), block("discrete"), block("holding"), block("input")),
            use_bit_addressing=True,  # coil n is bit n % 16 of register n // 16
            action=action,
        )

    async def prepare(self) -> None:
        """Nothing to build before the first values: the image fills as they come."""


def serve(
    source: SourceConfig, endpoint: str, served: Sequence[Served], ledger: Ledger | None
) -> ModbusDeviceServer:
    """The simulated Modbus device of a register source (``simulators/equipment.py``)."""
    assert isinstance(source, ModbusSource)
    bindings = []
    for item in served:
        binding = item.binding
        assert isinstance(binding, ModbusSignalBinding)
        device_id = source.device_id if binding.device_id is None else binding.device_id
        bindings.append(ModbusBinding(item.process, item.spec, device_id, binding))
    return ModbusDeviceServer(
        source.id,
        endpoint,
        bindings,
        byte_order=source.byte_order,
        word_order=source.word_order,
        ledger=ledger,
    )
