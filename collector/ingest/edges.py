"""What the collector knows of each edge agent: online or not, its boot, its batch
sequence (gaps, redeliveries) and its latest health report — for the API's edge view.

State is kept only for edges of a plant some loaded register has, and for at most
``limits.edges`` of them: whoever can publish on an uplink topic cannot make this process
keep state for edges that do not exist (docs/hostile-input.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from collector.ingest.paced_log import LimitViolations
from common.limits import UplinkLimits
from common.register_loader import LoadedRegister
from common.topics import EdgeTopic
from common.wire import EdgeState

log = logging.getLogger(__name__)


@dataclass
class EdgeSeen:
    """What the collector knows of one edge agent (for the API and the KPI's edge view)."""

    plant: str
    enterprise: str
    online: bool = False
    last_seen_ns: int = 0
    last_seq: int = -1
    boot: int = 0
    seq_gaps: int = 0
    """Batches skipped in the edge's sequence when a later one arrived (a skipped batch
    may still come later, redelivered: then it is also counted below)."""
    link: int = 0
    """The uplink connection number of the newest state message (``EdgeState.link``)."""
    stale_states: int = 0
    """State messages older than one already seen (a Will delivered after the next birth)."""
    redeliveries: int = 0
    """Batches of the same edge boot whose sequence number was not new (a repeat after a
    reconnect or restart, or a late one): written again as the same points."""
    health: dict[str, object] = field(default_factory=dict)


class EdgeRegistry:
    def __init__(
        self,
        registers: dict[str, LoadedRegister],
        limits: UplinkLimits,
        violations: LimitViolations,
        seen: dict[str, EdgeSeen],
    ) -> None:
        """``seen``: ``enterprise/plant/edge`` → its record, the dict the API reads."""
        self.registers = registers
        self.limits = limits
        self.violations = violations
        self.seen = seen

    def known_plant(self, topic: EdgeTopic) -> bool:
        register = self.registers.get(topic.enterprise)
        return register is not None and any(p.id == topic.plant for p in register.model.plants)

    def get(self, topic: EdgeTopic) -> EdgeSeen:
        """The state kept for this edge. For an unknown plant, or beyond ``limits.edges``
        edges, a detached record that is not kept (memory stays bounded)."""
        key = f"{topic.enterprise}/{topic.plant}/{topic.edge}"
        seen = self.seen.get(key)
        if seen is not None:
            return seen
        seen = EdgeSeen(topic.plant, topic.enterprise)
        if not self.known_plant(topic):
            return seen
        if len(self.seen) >= self.limits.edges:
            self.violations.count(
                "edges",
                f"edge {key} not tracked: {self.limits.edges} edges already are "
                "(COLLECTOR_LIMITS__EDGES); its samples are still stored",
            )
            return seen
        self.seen[key] = seen
        return seen

    def batch_arrived(self, topic: EdgeTopic, boot: int, seq: int) -> None:
        """A batch of this edge's boot ``boot`` with sequence number ``seq`` was accepted."""
        seen = self.get(topic)
        seen.last_seen_ns = time.time_ns()
        seen.online = True
        if boot == seen.boot and seq > seen.last_seq + 1 and seen.last_seq >= 0:
            seen.seq_gaps += seq - seen.last_seq - 1
        if boot == seen.boot and 0 <= seq <= seen.last_seq:
            seen.redeliveries += 1
        if boot != seen.boot:
            seen.boot, seen.last_seq, seen.link = boot, seq, 0
        elif seq > seen.last_seq:
            seen.last_seq = seq

    def state_arrived(self, topic: EdgeTopic, state: EdgeState) -> EdgeSeen:
        """A birth or a death (Last Will) of this edge; a stale one (an older connection's
        Will delivered late) is counted and does not change the view."""
        seen = self.get(topic)
        if state.boot and (state.boot, state.link) < (seen.boot, seen.link):
            seen.stale_states += 1
        else:
            seen.online = state.online
            seen.boot, seen.link = state.boot or seen.boot, state.link
        seen.last_seen_ns = time.time_ns()
        return seen

    def health_arrived(self, topic: EdgeTopic, health: dict[str, object]) -> None:
        self.get(topic).health = health
