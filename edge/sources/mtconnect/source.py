"""One register MTConnect source: an agent (or one device of it) read over HTTP.

At connection the agent's ``/probe`` says which data items it has: a signal bound to one it
lacks is named once (``rejected``) and given a sample with no value and a Bad status, while
the others flow. ``/current`` gives every bound data item's value and where the agent's
sequence stands; then ``/sample?from=<nextSequence>`` every ``poll_interval`` gives what
changed since, in sequence order, fetched again at once while the answer says more is
waiting.

Sequence numbers make the read lossless across a lost connection: the reader resumes where
it stopped, and re-sends the values ``/current`` gives from before that point (as an OPC UA
server does when a subscription is re-created) so the KPI knows on-change values again
after the down. An agent that restarted (a new ``instanceId``: its numbers start again) is
read afresh from ``/current``; one whose buffer overflowed past the resume point (the
observations are gone) is a sequence gap, counted with how many were lost, and read on from
its oldest observation. ``UNAVAILABLE`` is never a value: a sample with none and a Bad
status. An agent that does not answer (refused, timeout, HTTP 5xx, not an MTConnect
document) is liveness down, reconnected with capped jittered backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import quote

import httpx

from common.protocols.mtconnect import MtconnectSource as MtconnectSourceConfig
from common.protocols.mtconnect import parse_mtconnect_endpoint
from common.wire import Sample
from edge.sources import Backoff, SourceSink, now_ns
from edge.sources.mtconnect.documents import (
    MAX_DOCUMENT_BYTES,
    AgentError,
    Devices,
    Document,
    DocumentError,
    Observation,
    Streams,
    parse,
)
from edge.sources.reports import Liveness, poll_health

log = logging.getLogger(__name__)
_new = tuple.__new__

BAD_NODE_ID_UNKNOWN = 0x80340000
"""A signal bound to a data item the agent does not have."""
OUT_OF_RANGE = "OUT_OF_RANGE"


@dataclass(frozen=True)
class BoundItem:
    """One signal of the source and the data item it reads."""

    process: str
    signal: str
    data_item: str
    device: str | None
    """The device the data item must belong to (the binding's, else the source's), if any."""


class Cursor(NamedTuple):
    """Where the reader stands in the agent's stream."""

    instance_id: str
    next_sequence: int


class Unreadable(Exception):
    """The agent cannot be read now (unreachable, HTTP 5xx, not an MTConnect answer)."""


@dataclass
class MtconnectHealth:
    state: str = "starting"
    connects: int = 0
    failed_connects: int = 0
    requests: int = 0
    instance_id: str = ""
    next_sequence: int = 0
    agent_restarts: int = 0
    """Times the agent's instanceId changed under the reader (it restarted)."""
    sequence_gaps: int = 0
    """Times observations left the agent's buffer before they were read."""
    lost_sequences: int = 0
    """How many observations those gaps lost (of every data item of the agent)."""
    last_cycle_s: float = 0.0
    last_error: str = ""
    refused: dict[str, str] = field(default_factory=dict)
    """Data items the signals name that the agent's probe lacks, and why (first 100)."""


class MtconnectAgentSource:
    def __init__(
        self,
        config: MtconnectSourceConfig,
        items: Sequence[BoundItem],
        *,
        endpoint: str | None = None,
        reconnect_max_delay: float = 30.0,
    ) -> None:
        self.id = config.id
        self.config = config
        self.endpoint = endpoint or config.endpoint
        base = parse_mtconnect_endpoint(self.endpoint)
        if config.device is not None:
            base += "/" + quote(config.device, safe="")
        self.urls = {what: f"{base}/{what}" for what in ("probe", "current", "sample")}
        self.items = list(items)
        self.cursor: Cursor | None = None
        self._count = config.sample_count
        self.backoff = Backoff(cap=reconnect_max_delay)
        self.stats = MtconnectHealth()
        self._wanted: dict[str, list[tuple[str, str]]] = {}
        """Data item id → the (process, signal) it gives: the items the probe has."""
        self._missing: list[BoundItem] = []
        self._rejected: set[str] = set()
        self.liveness = Liveness(self.id, log)

    def health(self) -> dict[str, object]:
        return poll_health(self.endpoint, len(self.items), self.config.poll_interval, self.stats)

    async def run(self, sink: SourceSink) -> None:
        while True:
            try:
                async with httpx.AsyncClient(
                    timeout=self.config.timeout,
                    # The agent is on the plant network: a proxy set for the host's own
                    # traffic is not the way to it.
                    trust_env=False,
                    headers={"Accept": "application/xml"},
                ) as client:
                    self.stats.state = "connecting"
                    await self._sync(client, sink, probe=True)
                    self.stats.connects += 1
                    await self._poll(client, sink)
            except asyncio.CancelledError:
                self.liveness.report(sink, False, "stopped")
                raise
            except Unreadable as exc:
                self.stats.failed_connects += self.stats.state == "connecting"
                self.stats.last_error = f"MTConnect source {self.id}: {exc}"
                self.stats.state = "disconnected"
                self.liveness.report(sink, False, self.stats.last_error)
            delay = self.backoff.next_delay()
            log.debug("MTConnect source %s: reconnecting in %.1f s", self.id, delay)
            await asyncio.sleep(delay)

    async def _poll(self, client: httpx.AsyncClient, sink: SourceSink) -> None:
        interval = self.config.poll_interval
        next_cycle = time.monotonic()
        self.stats.state = "polling"
        while True:
            started = time.monotonic()
            await self._cycle(client, sink)
            self.stats.last_cycle_s = time.monotonic() - started
            next_cycle = max(next_cycle + interval, time.monotonic())
            await asyncio.sleep(next_cycle - time.monotonic())

    async def _cycle(self, client: httpx.AsyncClient, sink: SourceSink) -> None:
        """``/sample`` from the cursor on, until the agent has nothing more waiting."""
        while True:
            cursor = self.cursor
            assert cursor is not None  # set by _sync
            url = f"{self.urls['sample']}?from={cursor.next_sequence}&count={self._count}"
            document = await self._get(client, url)
            if isinstance(document, AgentError):
                if not document.has(OUT_OF_RANGE):
                    raise Unreadable(f"GET {url}: {document}")
                # Behind the buffer's start (it overflowed) or past its end (a restart):
                # /current says which. If neither, the agent refuses something else
                # (a count over its buffer size): down, with its words.
                await self._sync(client, sink, probe=False)
                if self.cursor == cursor:
                    raise Unreadable(f"GET {url}: {document}")
                continue
            if not isinstance(document, Streams):
                raise Unreadable(f"GET {url}: an MTConnectDevices document, not Streams")
            head = document.header
            if head.instance_id != cursor.instance_id or head.first_sequence > cursor.next_sequence:
                await self._sync(client, sink, probe=False)  # a restart, or a gap
                if self.cursor == cursor:  # /current says neither: the answers disagree
                    raise Unreadable(
                        f"GET {url}: instanceId {head.instance_id}, firstSequence "
                        f"{head.first_sequence}, but /current finds no restart and no gap"
                    )
                continue
            self._deliver(document.observations, sink)
            self._advance(Cursor(head.instance_id, head.next_sequence))
            self.backoff.reset()
            self.liveness.report(sink, True, "")
            if head.next_sequence > head.last_sequence:
                return

    async def _sync(self, client: httpx.AsyncClient, sink: SourceSink, *, probe: bool) -> None:
        """Where to read from: ``/current``, against the cursor (and ``/probe`` first at a
        connection, and again when the agent restarted: its data items may have changed)."""
        if probe:
            await self._probe(client, sink)
        url = self.urls["current"]
        current = await self._get(client, url)
        if not isinstance(current, Streams):
            raise Unreadable(
                f"GET {url}: {current if isinstance(current, AgentError) else 'a probe'}"
            )
        head = current.header
        cursor = self.cursor
        if cursor is not None and (
            cursor.instance_id != head.instance_id or cursor.next_sequence > head.next_sequence
        ):
            self.stats.agent_restarts += 1
            log.warning(
                "MTConnect source %s: the agent at %s restarted (instanceId %s, now %s): "
                "reading it afresh from /current",
                self.id,
                self.endpoint,
                cursor.instance_id,
                head.instance_id,
            )
            cursor = None
            if not probe:
                await self._probe(client, sink)
                current = await self._get(client, url)  # after the probe: nothing in between
                if not isinstance(current, Streams):
                    raise Unreadable(f"GET {url}: not an MTConnectStreams document")
                head = current.header
        resume = head.next_sequence if cursor is None else cursor.next_sequence
        if cursor is not None and resume < head.first_sequence:
            self._gap(resume, head.first_sequence)
            resume = head.first_sequence
        # What /current holds from before the resume point: a fresh start's values, or
        # re-sent ones (their original time stamps); what came after comes from /sample.
        self._deliver(current.observations, sink, before=resume)
        self._missing_samples(sink)
        self._advance(Cursor(head.instance_id, resume))
        # An agent refuses a count over its buffer size (OUT_OF_RANGE).
        size = head.buffer_size
        self._count = min(self.config.sample_count, size) if size else self.config.sample_count

    async def _probe(self, client: httpx.AsyncClient, sink: SourceSink) -> None:
        url = self.urls["probe"]
        document = await self._get(client, url)
        if isinstance(document, AgentError):
            raise Unreadable(f"GET {url}: {document}")  # NO_DEVICE names the device
        if not isinstance(document, Devices):
            raise Unreadable(f"GET {url}: an MTConnectStreams document, not Devices")
        wanted: dict[str, list[tuple[str, str]]] = {}
        missing: list[BoundItem] = []
        refused: dict[str, str] = {}
        for item in self.items:
            found = document.items.get(item.data_item)
            if found is None:
                where = f" of device {self.config.device}" if self.config.device else ""
                reason = f"not in the agent's probe{where} ({item.process}.{item.signal})"
            elif item.device is not None and not found.belongs_to(item.device):
                reason = (
                    f"a data item of device {found.device}, not {item.device} "
                    f"({item.process}.{item.signal})"
                )
            else:
                wanted.setdefault(item.data_item, []).append((item.process, item.signal))
                continue
            missing.append(item)
            refused.setdefault(item.data_item, reason)
        self._wanted, self._missing = wanted, missing
        self.stats.refused = dict(list(refused.items())[:100])
        for culprit, reason in refused.items():
            if culprit not in self._rejected:
                self._rejected.add(culprit)
                log.warning("MTConnect source %s: data item %s: %s", self.id, culprit, reason)
                signals = [(i.process, i.signal) for i in missing if i.data_item == culprit]
                sink.rejected(self.id, culprit, reason, signals)

    async def _get(self, client: httpx.AsyncClient, url: str) -> Document:
        """One request's document; Unreadable when there is none to read."""
        self.stats.requests += 1
        try:
            async with client.stream("GET", url) as response:
                status = response.status_code
                if status >= 500:
                    raise Unreadable(f"GET {url}: HTTP {status}")
                body = await _body(response, url)
        except httpx.HTTPError as exc:
            raise Unreadable(f"GET {url}: {type(exc).__name__} {exc}".rstrip()) from None
        # A cancellation (the edge stopping the source) that arrives just as the answer
        # does must not be lost to whatever awaited it: look before going on.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        try:
            document = parse(body, self._wanted)
        except DocumentError as exc:
            raise Unreadable(f"GET {url} (HTTP {status}): {exc}") from None
        if status >= 300 and not isinstance(document, AgentError):
            raise Unreadable(f"GET {url}: HTTP {status}")
        return document

    def _deliver(
        self, observations: list[Observation], sink: SourceSink, before: int | None = None
    ) -> None:
        """Each observation as a sample of every signal bound to its data item, in sequence
        order; those from ``before`` on are left (they come with ``/sample``)."""
        recv = now_ns()
        wanted = self._wanted
        report = sink.sample
        for sequence, item, ts, value, status in observations:
            if before is not None and sequence >= before:
                break  # sorted by sequence
            stamp = recv if ts is None else ts  # a time stamp that did not read: arrival
            for process, signal in wanted[item]:
                # Sample(...) without its Python-level __new__: one per observation.
                report(_new(Sample, (process, signal, stamp, value, status, recv, None, False)))

    def _missing_samples(self, sink: SourceSink) -> None:
        recv = now_ns()
        for item in self._missing:
            sink.sample(Sample(item.process, item.signal, recv, None, BAD_NODE_ID_UNKNOWN, recv))

    def _gap(self, wanted_from: int, first: int) -> None:
        lost = first - wanted_from
        self.stats.sequence_gaps += 1
        self.stats.lost_sequences += lost
        log.warning(
            "MTConnect source %s: observations %d to %d left the buffer of the agent at %s "
            "before they were read (%d lost): reading on from %d, its oldest",
            self.id,
            wanted_from,
            first - 1,
            self.endpoint,
            lost,
            first,
        )

    def _advance(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.stats.instance_id, self.stats.next_sequence = cursor


async def _body(response: httpx.Response, url: str) -> bytes:
    """The answer's bytes, refused past MAX_DOCUMENT_BYTES (not read to the end first)."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_DOCUMENT_BYTES:
        raise Unreadable(f"GET {url}: an answer of {int(length):,} bytes is over the limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise Unreadable(f"GET {url}: the answer is over {MAX_DOCUMENT_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
