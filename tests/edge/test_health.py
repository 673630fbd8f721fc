"""Pure rules of the edge's self-knowledge, and the local endpoint's start-up errors."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from edge.health import RateMeter, add_connection_rates, verdict
from edge.health_server import HealthServer, HealthServerError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_is_measured_over_the_window() -> None:
    clock = FakeClock()
    meter = RateMeter(window=60.0, clock=clock)
    assert meter.rates({"s1": 0}) == {"s1": 0.0}
    for second in range(1, 121):
        clock.now = float(second)
        rates = meter.rates({"s1": second * 10, "s2": (second - 60) * 5 if second > 60 else 0})
    assert rates["s1"] == pytest.approx(10.0)
    # s2 started half-way: the window only covers its active minute.
    assert rates["s2"] == pytest.approx(5.0, rel=0.05)
    # Old snapshots are dropped: memory does not grow with the number of reports.
    assert len(meter._snapshots) <= 62


def test_a_stalled_source_drops_to_zero_rate() -> None:
    clock = FakeClock()
    meter = RateMeter(window=10.0, clock=clock)
    for second in range(0, 30):
        clock.now = float(second)
        rates = meter.rates({"s1": min(second, 10) * 100})
    assert rates["s1"] == 0.0


def _report(**overrides: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "uplink": {"state": "connected", "last_error": ""},
        "sources": {"line1": {"state": "subscribed"}, "dev": {"state": "subscribed"}},
        "buffer": {"bytes_on_disk": 0, "depth": 0, "write_errors": 0, "last_error": ""},
    }
    report.update(overrides)
    report["status"] = "ok"
    return report


def test_verdict_names_every_problem() -> None:
    assert verdict(_report(), 1000, 1000) == []
    problems = verdict(
        _report(
            uplink={"state": "disconnected", "last_error": "connection refused"},
            sources={
                "line1": {"state": "disconnected", "last_error": "BadTimeout"},
                "dev": {"state": "subscribed"},
            },
            buffer={"bytes_on_disk": 900, "depth": 10, "write_errors": 0, "last_error": ""},
        ),
        1000,
        1000,
    )
    assert problems == [
        "uplink disconnected (connection refused)",
        "source line1 disconnected (BadTimeout)",
        "buffer 90% full (10 samples waiting)",
    ]


def test_a_standing_uplink_error_while_connected_is_a_problem() -> None:
    # The broker takes the birth but refuses every batch: connected, yet nothing goes out.
    refused = {"state": "connected", "last_error": "broker refused the publish (135)"}
    assert verdict(_report(uplink=refused), 1000, 1000) == [
        "uplink connected (broker refused the publish (135))"
    ]


def test_a_sparkplug_node_without_a_live_birth_is_a_problem() -> None:
    sources = {
        "dev": {"state": "subscribed", "sparkplug": {"nodes_without_birth": ["gw1", "gw2"]}},
        "ok": {"state": "subscribed", "sparkplug": {"nodes_without_birth": []}},
    }
    assert verdict(_report(sources=sources), 1000, 1000) == [
        "source dev: Sparkplug nodes without a live birth: gw1, gw2"
    ]


def test_failed_opc_ua_nodes_are_a_problem_naming_a_few_and_the_count() -> None:
    # As OpcUaSource.health() reports them: a node id the server does not know, a browse
    # path that did not resolve; the rest of the source is subscribed and delivering.
    failed = {
        "ns=2;s=Line1.Nope": "BadNodeIdUnknown (signals m1.speed)",
        "nsu=urn:plant;/Objects/Line1/Gone": "browse path did not resolve (signals m1.temp)",
    }
    sources = {"line1": {"state": "subscribed", "nodes_failed": 2, "failed_nodes": failed}}
    report = _report(sources=sources)
    assert verdict(report, 1000, 1000) == [
        "source line1: 2 nodes failed: ns=2;s=Line1.Nope, nsu=urn:plant;/Objects/Line1/Gone"
    ]


def test_many_failed_nodes_name_five_and_count_all() -> None:
    # The source's report names at most 100 failed nodes; nodes_failed counts every one.
    failed = {f"ns=2;i={n}": "BadNodeIdUnknown" for n in range(100)}
    sources = {"s1": {"state": "subscribed", "nodes_failed": 4000, "failed_nodes": failed}}
    (problem,) = verdict(_report(sources=sources), 1000, 1000)
    assert (
        problem
        == "source s1: 4000 nodes failed: " + ", ".join(f"ns=2;i={n}" for n in range(5)) + " …"
    )


def test_a_stale_failed_count_without_failed_nodes_is_no_problem() -> None:
    # A reconnect that resolved every node empties failed_nodes; the count may lag behind.
    sources = {"s1": {"state": "subscribed", "nodes_failed": 3, "failed_nodes": {}}}
    assert verdict(_report(sources=sources), 1000, 1000) == []


def test_a_read_cycle_longer_than_the_poll_interval_is_a_problem() -> None:
    slow = {"state": "polling", "mode": "poll", "last_cycle_s": 1.5, "poll_interval_s": 1.0}
    fast = {"state": "polling", "mode": "poll", "last_cycle_s": 0.2, "poll_interval_s": 1.0}
    assert verdict(_report(sources={"s1": slow, "s2": fast}), 1000, 1000) == [
        "source s1: read cycle 1.50s is longer than its poll interval 1s (samples are late; "
        "poll less often or split the nodes)"
    ]


def test_a_standing_buffer_write_error_and_lost_items_are_problems() -> None:
    failing = {"bytes_on_disk": 1, "depth": 1, "write_errors": 7, "last_error": "[Errno 28] full"}
    assert verdict(_report(buffer=failing), 1000, 1000) == ["buffer write errors: [Errno 28] full"]
    # The disk freed itself: past errors stay counted but are no problem any more.
    recovered = {**failing, "last_error": ""}
    assert verdict(_report(buffer=recovered), 1000, 1000) == []
    damaged = {**recovered, "lost_items": 50}
    (problem,) = verdict(_report(buffer=damaged), 1000, 1000)
    assert problem.startswith("buffer: 50 unacknowledged items were unreadable at start-up")


def test_buffer_fill_counts_samples_as_well_as_bytes() -> None:
    report = _report(buffer={"bytes_on_disk": 1, "depth": 850, "write_errors": 0, "last_error": ""})
    assert verdict(report, 1000, 1000) == ["buffer 85% full (850 samples waiting)"]


async def test_a_taken_port_is_a_configuration_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer(lambda: _report(), "127.0.0.1", port)
        with pytest.raises(HealthServerError, match=f"127.0.0.1:{port}.*EDGE_HEALTH_PORT"):
            await server.start()


async def test_port_zero_reports_the_port_it_got() -> None:
    server = HealthServer(lambda: _report(), "127.0.0.1", 0)
    await server.start()
    try:
        assert server.port > 0
    finally:
        await server.stop()


def test_each_connection_of_a_split_source_gets_its_rate() -> None:
    clock = FakeClock()
    meter = RateMeter(window=60.0, clock=clock)

    def sources(first: int, second: int) -> dict[str, dict[str, Any]]:
        connections = [
            {"name": "s1#1", "notifications": first},
            {"name": "s1#2", "notifications": second},
        ]
        return {"s1": {"connections": connections}, "dev": {"state": "subscribed"}}

    add_connection_rates(meter, sources(0, 0))
    clock.now = 10.0
    report = sources(1000, 0)  # the second session is silent
    add_connection_rates(meter, report)
    assert [c["notifications_per_s"] for c in report["s1"]["connections"]] == [100.0, 0.0]
    assert "connections" not in report["dev"]


def test_frequent_polls_keep_at_most_one_snapshot_per_second() -> None:
    clock = FakeClock()
    meter = RateMeter(window=60.0, clock=clock)
    for tick in range(6000):  # /health polled 100 times a second for a minute
        clock.now = tick / 100
        rates = meter.rates({"s1": tick})
    assert len(meter._snapshots) <= 61
    assert rates["s1"] == pytest.approx(100.0, rel=0.02)
