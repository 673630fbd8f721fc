"""The collector's record of each edge agent (``collector/ingest/edges.py``), no server."""

from __future__ import annotations

from pathlib import Path

from collector.ingest.edges import EdgeRegistry
from collector.ingest.paced_log import LimitViolations
from common.limits import UplinkLimits
from common.register_loader import load_register
from common.topics import EdgeTopic
from common.wire import EdgeState

REGISTER = load_register(Path(__file__).parents[3] / "examples" / "demo" / "register.yaml")
E = REGISTER.enterprise_id
TOPIC = EdgeTopic(E, "plant-a", "edge-plant-a", "samples")


def registry(**limits: int) -> EdgeRegistry:
    violations = LimitViolations({})
    return EdgeRegistry({E: REGISTER}, UplinkLimits(**limits), violations, {})


def test_sequence_numbers_count_gaps_and_redeliveries() -> None:
    edges = registry()
    for boot, seq in [(1, 0), (1, 1), (1, 4), (1, 2), (1, 4), (2, 0), (2, 1)]:
        edges.batch_arrived(TOPIC, boot, seq)
    seen = edges.get(TOPIC)
    assert (seen.boot, seen.last_seq) == (2, 1)
    assert seen.seq_gaps == 2  # 2 and 3 were skipped when 4 came
    assert seen.redeliveries == 2  # the late 2 and the repeated 4; a new boot starts afresh


def test_a_late_will_of_an_older_link_is_counted_and_does_not_take_the_edge_offline() -> None:
    edges = registry()
    edges.state_arrived(TOPIC, EdgeState(edge="edge-plant-a", online=True, boot=5, link=2))
    seen = edges.state_arrived(TOPIC, EdgeState(edge="edge-plant-a", online=False, boot=5, link=1))
    assert seen.online and (seen.boot, seen.link) == (5, 2)
    assert seen.stale_states == 1
    edges.state_arrived(TOPIC, EdgeState(edge="edge-plant-a", online=False, boot=5, link=2))
    assert not seen.online and seen.stale_states == 1


def test_only_edges_of_known_plants_are_kept_and_at_most_the_limit() -> None:
    edges = registry(edges=1)
    edges.health_arrived(EdgeTopic("nobody", "nowhere", "e", "health"), {"x": 1})
    assert edges.seen == {}
    edges.get(TOPIC)
    edges.get(EdgeTopic(E, "plant-a", "another-edge", "samples"))
    assert list(edges.seen) == [f"{E}/plant-a/edge-plant-a"]
    assert edges.violations.counts == {"edges": 1}
