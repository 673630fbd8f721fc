"""Siemens S7 in the register: a PLC (``kind: s7``: S7-200 SMART, S7-300/400, S7-1200/1500
with PUT/GET allowed) and a signal's absolute address and data type.

The edge's reader: ``edge/sources/s7/`` (README: addressing, data types, limits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from common.durations import Duration
from common.register_base import Protocol, SignalBinding, SourceConfig

DataType = Literal[
    "bool", "byte", "int", "uint", "word", "dint", "udint", "dword", "real", "lreal", "string"
]
SIZES: dict[str, int] = {
    "byte": 1,
    "int": 2,
    "uint": 2,
    "word": 2,
    "dint": 4,
    "udint": 4,
    "dword": 4,
    "real": 4,
    "lreal": 8,
}
"""Bytes per value of each fixed-size type (a ``bool`` is one bit of a byte, a ``string``
two header bytes and its ``length``)."""
WIDTHS = {"B": 1, "W": 2, "D": 4}
"""The width letter of an address (``DB1.DBW4``, ``MD8``) → bytes."""

MAX_ITEMS_PER_READ = 20
"""Variables in one multi-variable read: the limit S7-300/400/1200/1500 CPUs accept."""

AREAS = {"I": 0x81, "Q": 0x82, "M": 0x83, "DB": 0x84}
"""Process inputs, process outputs, bit memory (Merker), data blocks: S7's area codes."""
_MNEMONIC = {"E": "I", "A": "Q"}
"""German mnemonics (Eingang, Ausgang), the default of many TIA Portal installations."""

# The Siemens absolute addressing of STEP 7 / TIA Portal. python-snap7's tag parsers read
# other dialects (``DB1.DBD4:REAL``, ``DB1,R4``), so the plain form is parsed here.
_DB = re.compile(r"^DB(\d{1,5})\.DB([XBWD])(\d{1,5})(?:\.(\d))?$")
_OTHER = re.compile(r"^([IQMEA])([BWD]?)(\d{1,5})(?:\.(\d))?$")


@dataclass(frozen=True)
class S7Address:
    """An absolute address, parsed: area code, data block number (0 outside a DB), first
    byte, the bit for a bit address, and the byte width its letter says (0 for a bit)."""

    area: int
    db: int
    byte: int
    bit: int | None
    width: int

    @property
    def area_name(self) -> str:
        return next(name for name, code in AREAS.items() if code == self.area)


def parse_address(text: str) -> S7Address:
    """``DB1.DBD4``, ``DB1.DBX0.3``, ``M10.5``, ``MW20``, ``IB3``, ``Q0.0`` (``E``/``A`` for
    ``I``/``Q``) → the address; ValueError naming it and the expected forms."""
    raw = text.strip().upper()
    found = _DB.match(raw)
    if found:
        db, letter, byte, bit = found.groups()
        area, db_number = AREAS["DB"], int(db)
        if db_number == 0:
            raise ValueError(f"S7 address {text!r}: data blocks are numbered from 1")
    else:
        found = _OTHER.match(raw)
        if found is None:
            raise ValueError(
                f"S7 address {text!r} is not an absolute address such as DB1.DBD4, "
                "DB1.DBX0.3, M10.5, MW20, IB3 or Q0.0"
            )
        name, letter, byte, bit = found.groups()
        area, db_number = AREAS[_MNEMONIC.get(name, name)], 0
        letter = letter or "X"
    if letter == "X":
        if bit is None:
            raise ValueError(f"S7 address {text!r} names a bit: add which one (.0 to .7)")
        if int(bit) > 7:
            raise ValueError(f"S7 address {text!r}: a byte has bits .0 to .7")
        return S7Address(area, db_number, int(byte), int(bit), 0)
    if bit is not None:
        raise ValueError(f"S7 address {text!r}: a {letter} address has no bit (drop .{bit})")
    return S7Address(area, db_number, int(byte), None, WIDTHS[letter])


def parse_s7_endpoint(url: str) -> tuple[str, int]:
    """``s7://host[:port]`` (port 102 by default) → host and port; ValueError naming it."""
    parts = urlsplit(url)
    if parts.scheme != "s7" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"S7 endpoint {url!r} is not s7://host[:port]")
    if parts.username or parts.password:
        raise ValueError(f"S7 endpoint {url!r}: S7 has no login in the URL; drop the user")
    try:
        port = parts.port or 102
    except ValueError as exc:
        raise ValueError(f"S7 endpoint {url!r}: {exc}") from None
    return parts.hostname, port


class S7SignalBinding(SignalBinding):
    kind: Literal["s7"] = "s7"
    address: str
    """Absolute address: ``DB1.DBD4``, ``DB1.DBX0.3``, ``M10.5``, ``MW20``, ``IB3``,
    ``Q0.0`` (``E``/``A`` for ``I``/``Q`` are accepted)."""
    type: DataType | None = None
    """Default: ``bool`` for a bit, ``byte`` for B, ``int`` for W; a D address (4 bytes:
    REAL, DINT, UDINT or DWORD) must say which."""
    length: int | None = Field(default=None, ge=1, le=254)
    """For ``string``: its declared length (``STRING[20]`` → 20); the PLC stores two
    header bytes before the characters."""
    scale: float = 1.0
    """A numeric value is stored as raw × scale + offset (raw 1234, scale 0.1 → 123.4)."""
    offset: float = 0.0
    """Added after ``scale``."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> S7SignalBinding:
        where = parse_address(self.address)
        if where.width == 4 and self.type is None:
            raise ValueError(
                f"{self.address} is 4 bytes: give its type (real, dint, udint or dword)"
            )
        kind = self.data_type
        if where.bit is not None and kind != "bool":
            raise ValueError(f"{self.address} is one bit: its type is bool, not {kind}")
        if where.bit is None and kind == "bool":
            raise ValueError("type bool reads one bit: give a bit address such as DB1.DBX0.3")
        if kind == "string" and self.length is None:
            raise ValueError("type string needs 'length' (its declared STRING[n] length)")
        if kind != "string" and self.length is not None:
            raise ValueError(f"'length' applies to type string, not {kind}")
        # A W or D address holds exactly its width; a B address is where a value of any
        # size starts (an LREAL or a STRING has no width letter of its own).
        if where.width in (2, 4) and SIZES.get(kind) != where.width:
            raise ValueError(
                f"{self.address} is {where.width} bytes, type {kind} is "
                f"{SIZES.get(kind, 'not')} {'bytes' if kind in SIZES else 'fixed-size'}: "
                f"address it as {_suggest(where, kind)}"
            )
        numeric = kind not in ("bool", "string")
        if not numeric and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError(f"scale and offset apply to numbers, not to type {kind}")
        return self

    @property
    def data_type(self) -> str:
        if self.type is not None:
            return self.type
        where = parse_address(self.address)
        return "bool" if where.bit is not None else "byte" if where.width == 1 else "int"

    @property
    def size(self) -> int:
        """Bytes the value spans (1 for a bit: its byte)."""
        kind = self.data_type
        if kind == "string":
            return 2 + (self.length or 0)
        return SIZES.get(kind, 1)


def _suggest(where: S7Address, kind: str) -> str:
    letter = {1: "B", 2: "W", 4: "D"}.get(SIZES.get(kind, 1), "B")
    if where.db:
        return f"DB{where.db}.DB{letter}{where.byte}"
    return f"{where.area_name}{letter}{where.byte}"


class S7Source(SourceConfig):
    kind: Literal["s7"]
    """A Siemens S7 PLC over ISO-on-TCP (PUT/GET allowed)."""
    endpoint: str
    """``s7://host[:port]`` (port 102 by default): the CPU, or the CP in front of it."""
    rack: int = Field(0, ge=0, le=7)
    """The CPU's rack (0 for nearly every CPU)."""
    slot: int = Field(1, ge=0, le=31)
    """The CPU's slot: 1 for S7-1200/1500 and S7-200 SMART, 2 for most S7-300."""
    poll_interval: Duration = 1.0
    """Every signal of the source is read this often (its ``interval`` says what the KPI
    expects; keep it ≥ this)."""
    timeout: Duration = 3.0
    """One request's answer, after which the read is a timeout (BadTimeout on its samples)."""
    pdu_size: int = Field(480, ge=240, le=960)
    """The PDU size asked for at connect; the CPU answers with what it allows (240 for an
    S7-200 SMART or S7-1200, 480 or 960 for others) and reads are grouped to fit that."""
    max_items_per_read: int = Field(MAX_ITEMS_PER_READ, ge=1, le=MAX_ITEMS_PER_READ)
    """Variables in one multi-variable read (20 for S7-300/400/1200/1500)."""
    max_gap: int = Field(16, ge=0, le=200)
    """Bytes between two signals of one area read along in one item rather than split in
    two (a CPU refuses an item past the end of a data block: signals near its end are
    never merged past it, since only their own bytes are asked for)."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parse_s7_endpoint(value)
        return value

    def check_binding(self, binding: SignalBinding, process: str) -> None:
        assert isinstance(binding, S7SignalBinding)
        # A value must fit one answer: 12 header + 2 parameter + 4 item header bytes.
        room = self.pdu_size - 18
        if binding.size > room:
            raise ValueError(
                f"{binding.address} spans {binding.size} bytes, more than one answer of "
                f"source {self.id!r} holds ({room} with pdu_size {self.pdu_size})"
            )


PROTOCOL = Protocol(
    "s7",
    S7Source,
    S7SignalBinding,
    edge_module="edge.sources.s7.build",
    simulator_module="simulators.s7_server",
)
