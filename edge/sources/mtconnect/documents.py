"""MTConnect response documents → what the reader needs (pure: no I/O, no clock).

An agent answers ``/probe`` with an MTConnectDevices document, ``/current`` and ``/sample``
with MTConnectStreams, and a request it refuses with MTConnectError. The namespaces carry
the standard's version (``urn:mtconnect.org:MTConnectStreams:1.3``, ``…:2.0``), so elements
are matched by their local name, whatever the version.

Parsed with the standard library's ElementTree: it neither fetches nor expands external
entities, and its expat (≥ 2.4) refuses exponential internal entity expansion. The
documents come from the plant's own agent, but a misbehaving one must not take the edge's
memory: a body over ``MAX_DOCUMENT_BYTES`` is refused before parsing (``source.py`` stops
reading it there).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import NamedTuple

from common.quality import BAD_NO_COMMUNICATION, GOOD

MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
"""100,000 observations (the largest ``sample_count``) are about 25 MB of XML."""

UNAVAILABLE = "UNAVAILABLE"
UNAVAILABLE_STATUS = BAD_NO_COMMUNICATION
"""An observation the agent reports UNAVAILABLE (it cannot get the value from the machine:
adapter disconnected, machine off) is a sample with no value and this status:
Bad_NoCommunication, "communication with the data source is defined, but not established,
and there is no last known value available"."""

SAMPLE, EVENT, CONDITION = "SAMPLE", "EVENT", "CONDITION"
_CATEGORY = {"Samples": SAMPLE, "Events": EVENT, "Condition": CONDITION}
"""A ComponentStream's groups, by local name, and the category of what they hold."""

Value = float | str | None


class DocumentError(ValueError):
    """A body that is not the MTConnect document it should be; the message says why."""


class Header(NamedTuple):
    instance_id: str
    """Changes when the agent restarts: its sequence numbers start again."""
    first_sequence: int
    """The oldest observation still in the agent's buffer (0 in a probe: none given)."""
    last_sequence: int
    next_sequence: int
    """Where the next ``/sample`` starts (in a probe: 0)."""
    buffer_size: int
    """How many observations the agent keeps (0: not given): a ``count`` may not exceed it."""


@dataclass(frozen=True)
class DataItem:
    id: str
    device: str
    """The name of its device (or of the agent's own ``Agent`` device, MTConnect 2.x)."""
    device_uuid: str
    category: str
    type: str

    def belongs_to(self, device: str) -> bool:
        """``device`` names it by name or uuid."""
        return device in (self.device, self.device_uuid)


@dataclass(frozen=True)
class Devices:
    """An MTConnectDevices document (``/probe``): the data items the agent has, by id."""

    header: Header
    items: dict[str, DataItem]


Observation = tuple[int, str, int | None, Value, int]
"""(sequence, data item id, time stamp, value, status): the time stamp in ns since the epoch
(UTC), None when the observation had none that reads. A plain tuple: the reader's hot path
makes one per observation."""


@dataclass(frozen=True)
class Streams:
    """An MTConnectStreams document (``/current``, ``/sample``): the wanted observations,
    in sequence order (a document groups them by component, not by time)."""

    header: Header
    observations: list[Observation]


@dataclass(frozen=True)
class AgentError:
    """An MTConnectError document: the request was refused (``OUT_OF_RANGE``, ``NO_DEVICE``…)."""

    instance_id: str
    errors: tuple[tuple[str, str], ...]
    """(error code, message) pairs."""

    def has(self, code: str) -> bool:
        return any(found == code for found, _ in self.errors)

    def __str__(self) -> str:
        return "; ".join(f"{code}: {message}" if message else code for code, message in self.errors)


Document = Devices | Streams | AgentError


def parse(body: bytes, wanted: Container[str] | None = None) -> Document:
    """Any of the three documents; a Streams keeps the observations of ``wanted`` data item
    ids only (all when None). DocumentError names what is wrong."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"a document of {len(body):,} bytes is over {MAX_DOCUMENT_BYTES:,}")
    try:
        root = ET.fromstring(body)  # noqa: S314 - no external entities (see the module's doc)
    except ET.ParseError as exc:
        raise DocumentError(f"not XML: {exc}") from None
    name = _local(root.tag)
    if name == "MTConnectStreams":
        return streams(root, wanted)
    if name == "MTConnectDevices":
        return devices(root)
    if name == "MTConnectError":
        return agent_error(root)
    raise DocumentError(f"not an MTConnect document: its root element is <{name}>")


def header(root: ET.Element, sequences: bool) -> Header:
    found = _child(root, "Header")
    if found is None:
        raise DocumentError(f"<{_local(root.tag)}> has no Header")
    instance = found.get("instanceId")
    if not instance:
        raise DocumentError("the Header has no instanceId")
    size = found.get("bufferSize", "")
    buffer_size = int(size) if size.isdigit() else 0
    if not sequences:
        return Header(instance, 0, 0, 0, buffer_size)
    numbers = []
    for attribute in ("firstSequence", "lastSequence", "nextSequence"):
        text = found.get(attribute)
        try:
            numbers.append(int(text or ""))
        except ValueError:
            raise DocumentError(f"the Header's {attribute} is {text!r}, not a number") from None
    return Header(instance, numbers[0], numbers[1], numbers[2], buffer_size)


def devices(root: ET.Element) -> Devices:
    items: dict[str, DataItem] = {}
    listed = _child(root, "Devices")
    for device in listed if listed is not None else ():
        name = device.get("name") or device.get("id") or ""
        uuid = device.get("uuid") or ""
        for element in device.iter():
            if _local(element.tag) != "DataItem":
                continue
            item_id = element.get("id")
            if item_id:
                category, kind = element.get("category", ""), element.get("type", "")
                items[item_id] = DataItem(item_id, name, uuid, category, kind)
    return Devices(header(root, sequences=False), items)


def streams(root: ET.Element, wanted: Container[str] | None = None) -> Streams:
    # The hot path of the reader: one pass, observations of unwanted items skipped before
    # anything is made of them.
    out: list[Observation] = []
    append = out.append
    seconds_ns = _SECONDS_NS
    value: Value
    listed = _child(root, "Streams")
    for device in listed if listed is not None else ():
        for component in device:
            for group in component:
                category = _CATEGORY.get(_local(group.tag))
                if category is None:
                    continue
                for element in group:
                    attributes = element.attrib
                    item = attributes.get("dataItemId")
                    if item is None or (wanted is not None and item not in wanted):
                        continue
                    try:
                        sequence = int(attributes["sequence"])
                    except (KeyError, ValueError):
                        raise DocumentError(
                            f"data item {item}: sequence {attributes.get('sequence')!r} is not "
                            "a number"
                        ) from None
                    stamp = attributes.get("timestamp")
                    # timestamp_ns's usual case, inlined: to the µs, UTC, seconds seen before.
                    if (
                        stamp is not None
                        and len(stamp) == 27
                        and stamp[26] == "Z"
                        and stamp[19] == "."
                        and (seconds := seconds_ns.get(stamp[:19])) is not None
                        and (fraction := stamp[20:26]).isdigit()
                    ):
                        ts: int | None = seconds + int(fraction) * 1000
                    else:
                        ts = timestamp_ns(stamp)
                    text = element.text
                    # _value, inlined for the common case: a SAMPLE's or EVENT's text.
                    if category == CONDITION or len(element):
                        value, status = _value(category, element)
                    elif text is None or (text := text.strip()) != UNAVAILABLE:
                        value, status = text or "", GOOD
                        if category == SAMPLE:
                            try:
                                number = float(value)
                            except ValueError:
                                pass  # see _number
                            else:
                                value = number if number - number == 0.0 else value
                    else:
                        value, status = None, UNAVAILABLE_STATUS
                    append((sequence, item, ts, value, status))
    out.sort(key=itemgetter(0))  # by sequence, unique in an agent
    return Streams(header(root, sequences=True), out)


def agent_error(root: ET.Element) -> AgentError:
    errors: list[tuple[str, str]] = []
    listed = _child(root, "Errors")
    # Under <Errors>, or (MTConnect 1.0) one <Error> right under the root.
    for element in listed if listed is not None else root:
        name = _local(element.tag)
        if name == "Error":  # up to 2.4: <Error errorCode="OUT_OF_RANGE">message</Error>
            errors.append((element.get("errorCode", ""), (element.text or "").strip()))
        elif name != "Header":
            # 2.5 and later: <OutOfRange><ErrorCode>OUT_OF_RANGE</ErrorCode><ErrorMessage>…
            code = _child(element, "ErrorCode")
            message = _child(element, "ErrorMessage")
            errors.append(
                (
                    (code.text or "").strip() if code is not None else _upper_snake(name),
                    (message.text or "").strip() if message is not None else "",
                )
            )
    head = _child(root, "Header")
    instance = head.get("instanceId", "") if head is not None else ""
    return AgentError(instance, tuple(errors))


def _value(category: str, element: ET.Element) -> tuple[Value, int]:
    """A condition's, or a DATA_SET's or TABLE's (the rest is inlined in ``streams``)."""
    if category == CONDITION:
        level = _local(element.tag)  # Normal, Warning, Fault, or Unavailable
        return (None, UNAVAILABLE_STATUS) if level == "Unavailable" else (level, GOOD)
    text = element.text
    if len(element):  # a DATA_SET or TABLE: its entries, as key=value
        text = " ".join(f"{e.get('key', '')}={(e.text or '').strip()}" for e in element)
    text = (text or "").strip()
    if text == UNAVAILABLE:
        return None, UNAVAILABLE_STATUS
    return (_number(text) if category == SAMPLE else text), GOOD


def _number(text: str) -> float | str:
    """A SAMPLE's value: a float, or the agent's text as it is when it is no finite number
    (a 3D position ``1 2 3``, a time series; NaN or infinity would not survive the uplink)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value if value - value == 0.0 else text  # NaN and ±inf are not


_SECONDS_NS: dict[str, int] = {}
"""``YYYY-MM-DDTHH:MM:SS`` → ns since the epoch: observations of one document share their
seconds, and parsing them is most of a time stamp's cost."""
_NAIVE_EPOCH = datetime(1970, 1, 1)  # the parts parsed are naive: UTC by the standard
_SUFFIX = re.compile(r"^(?:\.(\d{1,9})\d*)?(Z|[+-]\d\d:\d\d)?$")


def timestamp_ns(text: str | None) -> int | None:
    """An observation's ``timestamp`` (ISO 8601, UTC by the standard: ``…T06:59:54.563287Z``;
    an offset is honoured, none read as UTC) in ns since the epoch; None when it does not
    read as one."""
    if text is not None and len(text) == 27 and text[26] == "Z" and text[19] == ".":
        seconds = _SECONDS_NS.get(text[:19])  # the usual: to the µs, UTC
        fraction = text[20:26]
        if seconds is not None and fraction.isdigit():
            return seconds + int(fraction) * 1000
    return _timestamp_ns(text)


def _timestamp_ns(text: str | None) -> int | None:
    if text is None or len(text) < 19 or text[10] != "T":
        return None
    head = text[:19]
    seconds = _SECONDS_NS.get(head)
    if seconds is None:
        try:
            delta = datetime.fromisoformat(head) - _NAIVE_EPOCH
        except ValueError:
            return None
        seconds = (delta.days * 86_400 + delta.seconds) * 1_000_000_000
        if len(_SECONDS_NS) >= 4096:
            _SECONDS_NS.clear()
        _SECONDS_NS[head] = seconds
    match = _SUFFIX.match(text[19:])
    if match is None:
        return None
    fraction, zone = match.groups()
    ns = seconds + (int(fraction.ljust(9, "0")) if fraction else 0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "+" else 1  # 08:00+02:00 is 06:00 UTC
        ns += sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000_000
    return ns


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
