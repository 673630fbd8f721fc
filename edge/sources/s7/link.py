"""One S7 connection: ISO-on-TCP to the CPU's rack and slot, the PDU size it grants, and
multi-variable reads whose items each succeed or fail on their own.

python-snap7's ``AsyncClient`` reads several variables one request each and raises when
any item fails; this module keeps the library's connection (``AsyncISOTCPConnection``) and
request builder (``S7Protocol``) and sends one request for all the items of a ``Request``,
so one refused address costs one item, not the poll. Only public classes of the library
are used.
"""

from __future__ import annotations

import struct
from typing import Any

from snap7.async_client import AsyncISOTCPConnection
from snap7.error import S7ConnectionError, S7ProtocolError, S7TimeoutError
from snap7.s7protocol import S7Protocol

from edge.sources import stop_if_cancelled
from edge.sources.s7.plan import Request

__all__ = ["S7ConnectionError", "S7Link", "S7ProtocolError", "S7TimeoutError"]

OK = 0xFF
"""An item's return code when its data follows."""
_PG = 1
"""Connection type in the remote TSAP: programming device (what PUT/GET clients use)."""
_BIT_LENGTHS = {0x03, 0x04, 0x05}
"""Transport sizes whose length is counted in bits (bit, byte/word/dword, integer)."""


class S7Link:
    def __init__(
        self, host: str, port: int, rack: int, slot: int, pdu_size: int, timeout: float
    ) -> None:
        self.host, self.port = host, port
        self.rack, self.slot = rack, slot
        self.asked_pdu = pdu_size
        self.timeout = timeout
        self.pdu_size = 0
        """What the CPU granted at ``open``."""
        self._protocol = S7Protocol()
        self._connection: AsyncISOTCPConnection | None = None

    async def open(self) -> int:
        """Connect and negotiate; the granted PDU size."""
        connection = AsyncISOTCPConnection(
            self.host,
            self.port,
            local_tsap=0x0100,
            remote_tsap=(_PG << 8) | (self.rack << 5) | self.slot,
        )
        self._connection = connection
        await connection.connect(timeout=self.timeout)
        stop_if_cancelled()
        answer = await self._exchange(
            self._protocol.build_setup_communication_request(pdu_length=self.asked_pdu)
        )
        granted = (answer.get("parameters") or {}).get("pdu_length")
        if not isinstance(granted, int) or granted < 64:
            raise S7ProtocolError(f"the CPU granted no usable PDU size ({granted!r})")
        self.pdu_size = min(granted, self.asked_pdu)
        return self.pdu_size

    async def read(self, request: Request) -> list[tuple[int, bytes]]:
        """Per item of ``request``: its return code, and its bytes when that is ``OK``."""
        items = request.items
        answer = await self._exchange(
            self._protocol.build_multi_read_request(
                [(item.area, item.db, item.start, item.length) for item in items]
            )
        )
        count = (answer.get("parameters") or {}).get("item_count")
        if count != len(items):
            raise S7ProtocolError(f"asked for {len(items)} items, the answer has {count}")
        raw: bytes = answer.get("raw_data") or b""
        results: list[tuple[int, bytes]] = []
        at = 0
        for index, item in enumerate(items):
            if at + 4 > len(raw):
                raise S7ProtocolError(f"the answer ends before item {index} ({item.describe()})")
            code, transport, length = struct.unpack_from(">BBH", raw, at)
            at += 4
            if code != OK:
                results.append((code, b""))
                continue
            size = length // 8 if transport in _BIT_LENGTHS else length
            if size != item.length or at + size > len(raw):
                raise S7ProtocolError(
                    f"item {index} ({item.describe()}) answered {size} bytes of {item.length}"
                )
            results.append((OK, raw[at : at + size]))
            at += size + (size % 2 if index < len(items) - 1 else 0)
        return results

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()

    async def _exchange(self, request: bytes) -> dict[str, Any]:
        connection = self._connection
        if connection is None:
            raise S7ConnectionError("not connected")
        connection.timeout = self.timeout
        await connection.send_data(request)
        data = await connection.receive_data()
        stop_if_cancelled()
        answer: dict[str, Any] = self._protocol.parse_response(data)
        # One request at a time on the connection: its answer is the next one. A timed-out
        # answer leaves the stream unknown; the library then marks it closed (reopened).
        if answer.get("sequence") != struct.unpack_from(">H", request, 4)[0]:
            raise S7ProtocolError("an answer to another request arrived")
        return answer
