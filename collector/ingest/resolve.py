"""Check an uplink batch against the register and turn it into storage records. Pure.

A batch is trusted only as far as the register vouches for it: its topic, enterprise,
plant and every sample's (process, signal) must be in the register, in that plant.
Samples that are not are rejected one by one (counted and named); the rest are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.storage.lineprotocol import StoredSample
from common.register_loader import LoadedRegister
from common.topics import EdgeTopic
from common.wire import EDGE_SOURCE, LivenessEvent, UplinkBatch


class BatchRejected(ValueError):
    """The whole batch is unusable (wrong topic, unknown enterprise or plant)."""


@dataclass
class Resolved:
    samples: list[StoredSample] = field(default_factory=list)
    liveness: list[LivenessEvent] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    """Why samples were rejected, naming edge, batch and signal (the first few, then a count)."""
    rejected_samples: int = 0
    samples_unstorable: int = 0
    """Accepted here but refused by the line-protocol serializer (counted by the pipeline)."""


MAX_REJECTIONS_LISTED = 20


def resolve_batch(
    batch: UplinkBatch, topic: EdgeTopic, registers: dict[str, LoadedRegister]
) -> Resolved:
    where = f"edge {batch.edge} batch {batch.seq}"
    if (batch.enterprise, batch.plant, batch.edge) != (topic.enterprise, topic.plant, topic.edge):
        raise BatchRejected(
            f"{where}: claims {batch.enterprise}/{batch.plant}/{batch.edge} but arrived on "
            f"{topic.enterprise}/{topic.plant}/{topic.edge}"
        )
    register = registers.get(batch.enterprise)
    if register is None:
        raise BatchRejected(
            f"{where}: enterprise {batch.enterprise!r} is not in any loaded register"
        )
    plant_sources = {s.id for p in register.model.plants if p.id == batch.plant for s in p.sources}
    if not any(p.id == batch.plant for p in register.model.plants):
        raise BatchRejected(f"{where}: plant {batch.plant!r} is not in register {register.path}")

    out = Resolved()
    cols = batch.samples
    rejected = 0
    for i in range(len(cols)):
        ref = register.signal(cols.process[i], cols.signal[i])
        reason = None
        if ref is None:
            reason = "unknown signal"
        elif ref.plant.id != batch.plant:
            reason = f"belongs to plant {ref.plant.id}"
        if reason is not None or ref is None:
            rejected += 1
            if len(out.rejections) < MAX_REJECTIONS_LISTED:
                out.rejections.append(
                    f"{where} sample {i}: {cols.process[i]}/{cols.signal[i]}: {reason}"
                )
            continue
        out.samples.append(
            StoredSample(
                enterprise=batch.enterprise,
                plant=batch.plant,
                line=ref.line.id,
                process=ref.process.id,
                signal=ref.signal.id,
                ts_ns=cols.ts[i],
                value=cols.value[i],
                status=cols.status[i],
                recv_ns=cols.recv[i],
                server_ts_ns=cols.server_ts[i],
                edge=batch.edge,
                seq=batch.seq,
            )
        )
    out.rejected_samples = rejected
    if rejected > len(out.rejections):
        out.rejections.append(f"{where}: {rejected - len(out.rejections)} more samples rejected")
    for event in batch.liveness:
        if event.source != EDGE_SOURCE and event.source not in plant_sources:
            out.rejections.append(f"{where}: liveness for unknown source {event.source!r}")
            continue
        out.liveness.append(event)
    return out
