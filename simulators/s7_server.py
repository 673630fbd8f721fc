"""One simulated Siemens S7 PLC: python-snap7's own server, its data blocks and I/Q/M areas
set from the scenario's machines.

Each data block and area the register names is registered with the server, sized to the
last byte a signal uses; a read past that end, or of a block that does not exist, is
refused as a CPU refuses it. The runner hands every machine sample to ``write``, which
encodes it as the register's binding says (``s7_codec.encode``) into the area. S7 carries
no quality: a sample with a Bad status leaves the area as it was, the last good value,
which is what a PLC holds for a failed input. Clients' writes go to the memory like a
CPU's, but the next sample overwrites them.

The server is the library's: it accepts and answers on threads of its own, so stopping it
(which joins them) runs off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from snap7.server import Server
from snap7.type import SrvArea

from common.protocols.s7 import AREAS, S7SignalBinding, S7Source, parse_address, parse_s7_endpoint
from common.protocols.s7_codec import encode
from common.quality import Quality, classify
from common.register_base import SourceConfig
from simulators.equipment import Served
from simulators.ledger import Ledger
from simulators.machine import Sample, SignalSpec

log = logging.getLogger(__name__)

_SERVER_AREAS = {
    AREAS["I"]: SrvArea.PE,
    AREAS["Q"]: SrvArea.PA,
    AREAS["M"]: SrvArea.MK,
    AREAS["DB"]: SrvArea.DB,
}


@dataclass(frozen=True)
class S7Binding:
    """A machine signal served at an absolute address of the PLC."""

    process: str
    spec: SignalSpec
    binding: S7SignalBinding


class S7PlcServer:
    def __init__(
        self,
        source_id: str,
        endpoint: str,
        bindings: Sequence[S7Binding],
        *,
        ledger: Ledger | None = None,
    ) -> None:
        self.source_id = source_id
        self.host, self.port = parse_s7_endpoint(endpoint)
        self.ledger = ledger
        self._bindings = {(b.process, b.spec.id): b for b in bindings}
        sizes: dict[tuple[int, int], int] = {}
        for served in bindings:
            where = parse_address(served.binding.address)
            key = (where.area, where.db)
            sizes[key] = max(sizes.get(key, 0), where.byte + served.binding.size)
        self.areas: dict[tuple[int, int], bytearray] = {
            key: bytearray(size) for key, size in sizes.items()
        }
        """(area code, data block number or 0) → its memory, as the server reads it."""
        self._server: Server | None = None
        self.writes = 0

    @property
    def url(self) -> str:
        return f"s7://{self.host}:{self.port}"

    async def prepare(self) -> None:
        """Nothing to build before the first values: the areas fill as they come."""

    async def listen(self) -> None:
        library = logging.getLogger("snap7")
        if library.getEffectiveLevel() < logging.WARNING:  # a line per client and read
            library.setLevel(logging.WARNING)
        server = Server(log=False)
        for (area, db), memory in self.areas.items():
            server.register_area(_SERVER_AREAS[area], db, memory)
        try:
            server.start_to(self.host, self.port)
        except Exception as exc:
            raise OSError(
                f"S7 source {self.source_id}: cannot listen on {self.url}: {exc}"
            ) from None
        if self.port == 0 and server.server_socket is not None:
            self.port = server.server_socket.getsockname()[1]
        self._server = server

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.stop)

    async def write(self, samples: Iterable[tuple[str, Sample]]) -> int:
        written = 0
        for process, sample in samples:
            served = self._bindings.get((process, sample.signal))
            if served is None:
                raise KeyError(f"source {self.source_id} serves no {process}.{sample.signal}")
            if classify(sample.status) is not Quality.BAD and sample.value is not None:
                self._set(served.binding, sample.value)
            if self.ledger is not None:
                self.ledger.record(
                    self.source_id, process, sample.signal, sample.ts, sample.value, sample.status
                )
            written += 1
        self.writes += written
        return written

    def _set(self, binding: S7SignalBinding, value: object) -> None:
        where = parse_address(binding.address)
        memory = self.areas[(where.area, where.db)]
        number = int(value) if isinstance(value, bool) and binding.data_type != "bool" else value
        data = encode(number, binding, memory[where.byte])  # type: ignore[arg-type]
        server = self._server
        key = (_SERVER_AREAS[where.area], where.db)
        # The server's threads read the memory: a value is replaced whole under its lock.
        if server is not None:
            server.lock_area(*key)
        try:
            memory[where.byte : where.byte + len(data)] = data
        finally:
            if server is not None:
                server.unlock_area(*key)


def serve(
    source: SourceConfig, endpoint: str, served: Sequence[Served], ledger: Ledger | None
) -> S7PlcServer:
    """The simulated PLC of a register source (``simulators/equipment.py``)."""
    assert isinstance(source, S7Source)
    bindings = []
    for item in served:
        assert isinstance(item.binding, S7SignalBinding)
        bindings.append(S7Binding(item.process, item.spec, item.binding))
    return S7PlcServer(source.id, endpoint, bindings, ledger=ledger)
