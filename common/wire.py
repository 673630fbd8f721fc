"""The uplink wire schema: one batch of samples and liveness events from one edge agent.

Columnar JSON keeps the per-message overhead low (MQTT messages/s, not bytes, limit a
Python pipeline) while staying readable with ``mosquitto_sub``. Timestamps are integers,
nanoseconds since the Unix epoch, UTC.

A sample is what was received, never a made-up value: ``value`` may be null when the
source reported a bad status without a value; the raw OPC UA status code is always kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

SCHEMA_VERSION = 1

Value = float | int | bool | str | None

StrictInt = Annotated[int, Strict()]
"""A JSON integer and nothing else: no ``true``, no ``"12"``, no ``1.0`` (lax pydantic would
take them as 1 and 12 and 1), so an absurd time or status refuses the batch by name."""


class Sample(NamedTuple):
    """One reading as a source reports it, the edge's buffer keeps it and the uplink carries
    it (as :class:`SampleColumns`). A tuple, so the edge's hot path pays no object per sample."""

    process: str
    signal: str
    ts: int
    """Source timestamp (ns); the edge's receive time when the source gave none."""
    value: Value
    status: int
    """Raw OPC UA status code (MQTT device qualities are mapped to codes at the edge)."""
    recv: int
    """When the edge received it (ns)."""
    server_ts: int | None = None
    """OPC UA server timestamp (ns) where the server sent one."""
    backfill: bool = False
    """Read from the source's history after a gap (``edge/sources/opcua/backfill.py``), not
    received live: a value known at its source time all the same."""


class WireError(ValueError):
    """A batch that cannot be accepted; the message names the culprit."""


class SampleColumns(BaseModel):
    """Samples as parallel columns; index i of every list is one sample."""

    model_config = ConfigDict(extra="forbid")

    process: list[str] = Field(default_factory=list)
    signal: list[str] = Field(default_factory=list)
    ts: list[StrictInt] = Field(default_factory=list)
    """Source timestamp (ns); the edge's receive time when the source gave none."""
    value: list[Value] = Field(default_factory=list)
    status: list[StrictInt] = Field(default_factory=list)
    """Raw OPC UA status code (MQTT device qualities are mapped to codes at the edge)."""
    recv: list[StrictInt] = Field(default_factory=list)
    """When the edge received it (ns)."""
    server_ts: list[StrictInt | None] = Field(default_factory=list)
    """OPC UA server timestamp (ns) where the server sent one."""
    backfill: list[StrictInt] = Field(default_factory=list)
    """Indexes of the samples read from the source's history after a gap (ascending);
    left out of a batch that has none, so a collector older than it reads live batches."""

    @model_validator(mode="after")
    def _same_length(self) -> SampleColumns:
        n = len(self.process)
        lengths = {
            name: len(getattr(self, name))
            for name in ("signal", "ts", "value", "status", "recv", "server_ts")
        }
        wrong = {name: length for name, length in lengths.items() if length != n}
        if wrong:
            raise ValueError(f"sample columns differ in length: process has {n}, {wrong}")
        for i, code in enumerate(self.status):
            if not 0 <= code <= 0xFFFFFFFF:
                raise ValueError(f"sample {i}: status {code} is not a 32-bit status code")
        previous = -1
        for index in self.backfill:
            if not previous < index < n:
                raise ValueError(f"backfill index {index}: not ascending within the {n} samples")
            previous = index
        return self

    def __len__(self) -> int:
        return len(self.process)

    def append(self, sample: Sample) -> None:
        self.process.append(sample.process)
        self.signal.append(sample.signal)
        self.ts.append(sample.ts)
        self.value.append(sample.value)
        self.status.append(sample.status)
        self.recv.append(sample.recv)
        self.server_ts.append(sample.server_ts)
        if sample.backfill:
            self.backfill.append(len(self.process) - 1)

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> SampleColumns:
        """The columns of samples this process made itself (not validated again)."""
        if not samples:
            return cls()
        process, signal, ts, value, status, recv, server_ts, backfill = map(
            list, zip(*samples, strict=True)
        )
        return cls.model_construct(
            process=process,
            signal=signal,
            ts=ts,
            value=value,
            status=status,
            recv=recv,
            server_ts=server_ts,
            backfill=[i for i, flag in enumerate(backfill) if flag] if any(backfill) else [],
        )


class LivenessEvent(BaseModel):
    """A source (or the edge itself) went up or down at ``ts``."""

    model_config = ConfigDict(extra="forbid")

    source: str
    """A source id of the plant, or ``EDGE_SOURCE`` for the edge agent itself."""
    ts: int
    up: bool
    detail: str = ""


EDGE_SOURCE = "_edge"


class UplinkBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: Literal[1] = Field(1, alias="schema")
    edge: str
    enterprise: str
    plant: str
    register_version: str
    boot: int
    """The edge's start time (ns): with ``seq`` it identifies a batch across restarts."""
    seq: int = Field(ge=0)
    sent: int
    complete_until: StrictInt = 0
    """The edge's watermark (ns, edge clock): everything it acquired before this time is in
    this batch or an earlier one. 0: not known yet (an edge still sending the backlog it
    started with, or one older than this field). The KPI calls a window provisional while
    its end is past the plant's watermark: data for it is still on its way."""
    samples: SampleColumns = Field(default_factory=SampleColumns)
    liveness: list[LivenessEvent] = Field(default_factory=list)

    def encode(self) -> bytes:
        if self.samples.backfill:
            return self.model_dump_json(by_alias=True).encode()
        return self.model_dump_json(by_alias=True, exclude={"samples": {"backfill"}}).encode()


def decode_batch(payload: bytes, topic: str) -> UplinkBatch:
    """Parse and validate a batch, or raise WireError naming the topic and the fields."""
    try:
        return UplinkBatch.model_validate_json(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise WireError(f"malformed batch on {topic}: {problems}{more}") from None


class EdgeState(BaseModel):
    """Retained on the edge's state topic: a birth on every uplink connection, a death as
    that connection's Last Will, and a death with ``shutdown`` when the agent stops.

    What ``online: false`` asserts depends on ``shutdown``: with it, the agent stopped
    acquiring; without it (the Last Will), only that the uplink connection ``link`` of the
    agent started at ``boot`` was lost. Whether acquisition went on is known from what
    follows: a birth of the same boot on a later link says it did (an uplink gap), one of a
    newer boot says the agent died (``collector/kpi/edge_liveness.py``). ``boot`` and
    ``link`` order the messages by the edge's own history, so a Will delivered late (from a
    broker's queue or retained store) is never read as newer than the birth that followed it.
    """

    model_config = ConfigDict(extra="forbid")

    edge: str
    online: bool
    boot: int
    link: int = Field(0, ge=0)
    """Uplink connection number within this boot (1 for the first connection; 0 from edges
    older than this field)."""
    shutdown: bool = False
    """The agent said goodbye: it stops acquiring (a clean stop, not a lost connection)."""
    register_version: str = ""
    sources: list[str] = Field(default_factory=list)
