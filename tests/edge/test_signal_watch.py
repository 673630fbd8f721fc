"""Nothing silent: the signal watch names a signal that its up source does not deliver —
every reading rejected, or no valid sample for its hold limit — and leaves alone signals
that flow, signals of a down source, and one bad message among good ones."""

from __future__ import annotations

from typing import Any

from common.quality import BAD, GOOD
from common.register import Signal
from common.wire import Sample, Value
from edge.health import verdict
from edge.signal_watch import SignalWatch, address_of, problem_lines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def signal(signal_id: str, **fields: Any) -> Signal:
    return Signal.model_validate(
        {"id": signal_id, "role": "parameter", "source": "dev", "interval": 1.0, **fields}
    )


def watch_of(*signals: Signal) -> tuple[SignalWatch, Clock]:
    clock = Clock()
    watch = SignalWatch(clock=clock)
    watch.watch(("m1", s) for s in signals)
    watch.liveness("dev", True)
    return watch, clock


def good(name: str, value: Value = 1.0, status: int = GOOD) -> Sample:
    return Sample("m1", name, 1, value, status, 1)


def problems(watch: SignalWatch) -> dict[str, str]:
    return {p["signal"]: p["problem"] for p in watch.report()["problems"]}


def test_a_signal_whose_every_reading_is_rejected_is_a_problem_at_once() -> None:
    watch, _ = watch_of(signal("temp"), signal("speed"))
    watch.sample(good("speed"))
    watch.rejected("dev", "topic d/temp", "payload has no value at 'val'", [("m1", "temp")])
    report = watch.report()
    (problem,) = report["problems"]
    assert (problem["signal"], problem["problem"]) == ("temp", "rejected")
    assert problem["reason"] == (
        "1 readings rejected, none valid since: payload has no value at 'val' (topic d/temp)"
    )
    assert report["problem_signals"] == 1 and report["watched"] == 2


def test_one_bad_message_among_good_ones_is_no_problem_three_in_a_row_are() -> None:
    watch, clock = watch_of(signal("temp"))
    watch.sample(good("temp"))
    assert problems(watch) == {}
    watch.rejected("dev", "topic d/temp", "not JSON", [("m1", "temp")])
    watch.sample(good("temp"))
    clock.now += 1
    assert problems(watch) == {}
    for _ in range(3):
        watch.rejected("dev", "topic d/temp", "not JSON", [("m1", "temp")])
    clock.now += 1
    assert problems(watch) == {"temp": "rejected"}
    watch.sample(good("temp"))  # valid again: the problem goes
    clock.now += 1
    assert problems(watch) == {}


def test_a_periodic_signal_silent_past_its_hold_is_a_problem_saying_what_came() -> None:
    watch, clock = watch_of(signal("temp"), signal("speed", interval=10.0))
    clock.now += 3.0  # the hold of a 1 s signal: 3 intervals
    assert problems(watch) == {}
    clock.now += 0.5
    assert problems(watch) == {"temp": "silent"}
    (problem,) = watch.report()["problems"]
    assert problem["reason"] == "no valid sample for 4 s (hold 3 s): nothing arrived"
    watch.sample(good("temp", None, BAD))
    watch.sample(good("temp", 5.0, BAD))
    clock.now += 1
    (problem,) = watch.report()["problems"]
    assert problem["reason"].endswith("only Bad samples (2)")
    watch.sample(good("temp"))
    clock.now += 1
    assert problems(watch) == {}
    clock.now += 3.5
    assert problems(watch) == {"temp": "silent"}
    # The Bad samples were before the last valid one: now nothing arrives.
    assert watch.report()["problems"][0]["reason"].endswith("nothing arrived")


def test_signals_of_a_down_source_are_left_to_the_sources_own_problem() -> None:
    watch, clock = watch_of(signal("temp"))
    watch.rejected("dev", "topic d/temp", "not JSON", [("m1", "temp")])
    watch.liveness("dev", False)
    clock.now += 100
    assert problems(watch) == {}
    watch.liveness("dev", True)  # the hold counts from the source coming back
    clock.now += 2
    assert problems(watch) == {"temp": "rejected"}


def test_on_change_signals_wait_the_on_change_hold_and_manual_ones_are_not_watched() -> None:
    clock = Clock()
    watch = SignalWatch(on_change_max_hold=60.0, clock=clock)
    watch.watch(
        [
            ("m1", signal("state", role="state", update="on_change")),
            ("m1", Signal.model_validate({"id": "note", "role": "parameter", "source": "manual"})),
        ]
    )
    watch.liveness("dev", True)
    clock.now += 59
    assert watch.report() == {"watched": 1, "problem_signals": 0, "problems": []}
    clock.now += 2
    assert problems(watch) == {"state": "silent"}


def test_the_health_verdict_names_a_few_signals_and_counts_the_rest() -> None:
    watch, clock = watch_of(*(signal(f"s{n}") for n in range(8)))
    clock.now += 10
    report = {
        "uplink": {"state": "connected", "last_error": ""},
        "sources": {},
        "buffer": {"bytes_on_disk": 0, "depth": 0, "write_errors": 0, "last_error": ""},
        "signals": watch.report(),
    }
    lines = verdict(report, 1000, 1000)
    assert len(lines) == 6
    assert lines[0] == (
        "signal m1.s0 (source dev): no valid sample for 10 s (hold 3 s): nothing arrived"
    )
    assert lines[-1] == "3 more signals not delivered (see signals.problems)"
    assert problem_lines({}) == []


def test_the_address_is_the_bindings_own_fields() -> None:
    from common.protocols.mqtt import MqttSignalBinding

    bound = signal("temp").model_copy(
        update={"binding": MqttSignalBinding(topic="d/temp", path="val")}
    )
    assert address_of(bound) == "topic d/temp, path val"
    assert address_of(signal("temp")) == ""
