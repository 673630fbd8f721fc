"""Topic patterns, routing of topics to signals, and their validation at register load. Pure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.protocols.mqtt import MqttSignalBinding, MqttSubscription
from common.register import Signal
from common.register_loader import RegisterError, load_register
from common.topic_patterns import TopicPattern, filters_overlap
from edge.sources.mqtt.routing import TopicBinding, TopicRouter
from tests.edge.mqtt.helpers import write_register


def test_named_levels_are_read_and_become_plus_in_the_filter() -> None:
    pattern = TopicPattern.parse("plant/+/{process}/{signal}")
    assert pattern.filter == "plant/+/+/+"
    assert pattern.match("plant/l2/press1/torque") == {"process": "press1", "signal": "torque"}
    assert pattern.match("plant/l2/press1") is None
    assert pattern.match("plant/l2/press1/torque/extra") is None
    assert pattern.match("other/l2/press1/torque") is None


def test_hash_matches_the_rest_and_dollar_topics_are_not_wildcard_matches() -> None:
    pattern = TopicPattern.parse("{signal}/#")
    assert pattern.match("torque/a/b") == {"signal": "torque"}
    assert pattern.match("torque") == {"signal": "torque"}
    assert pattern.match("$SYS/broker") is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty"),
        ("plant/#/{signal}", "'#' must be the last level"),
        ("plant/{tag}/{signal}", "unknown named level '{tag}'"),
        ("plant/{signal}/{signal}", "'{signal}' appears twice"),
        ("plant/x+/{signal}", "mixes text"),
        ("plant/{signal}-v", "mixes text"),
        ("plant/+/press", "has no {signal} level"),
    ],
)
def test_bad_patterns_say_why(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("{", r"\{").replace("+", r"\+")):
        TopicPattern.parse(text)


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("a/+/c", "a/b/+", True),
        ("a/+/c", "a/+/d", False),
        ("a/#", "a", True),
        ("a/#", "b/#", False),
        ("+/x", "a/x/y", False),
    ],
)
def test_filter_overlap(a: str, b: str, overlap: bool) -> None:
    assert filters_overlap(a, b) is overlap
    assert filters_overlap(b, a) is overlap


def signal(signal_id: str, topic: str | None = None) -> Signal:
    binding = MqttSignalBinding(topic=topic)
    return Signal(id=signal_id, role="parameter", source="devices", binding=binding)


def test_router_prefers_exact_topics_and_names_what_maps_to_no_signal() -> None:
    torque = TopicBinding(None, "p1", signal("torque"))
    state = TopicBinding("plant/l1/p1/state", "p1", signal("state", "plant/l1/p1/state"))
    router = TopicRouter(
        "devices",
        [torque, state],
        (MqttSubscription(pattern="plant/+/{process}/{signal}"),),
    )
    # The exact topic is covered by the pattern: subscribing it too could deliver it twice.
    assert router.filters() == ["plant/+/+/+"]
    assert router.route("plant/l1/p1/torque") == [torque]
    assert router.route("plant/l1/p1/state") == [state]
    reason = router.route("plant/l1/p1/pressure")
    assert isinstance(reason, str)
    assert "matches subscription 'plant/+/{process}/{signal}'" in reason
    assert "process 'p1', signal 'pressure' is no signal of the register" in reason
    assert router.route("elsewhere/x") == "no signal of the register is bound to this topic"


def test_router_with_a_fixed_process_subscribes_uncovered_exact_topics_too() -> None:
    torque = TopicBinding(None, "p1", signal("torque"))
    other = TopicBinding("dev/9/state", "p2", signal("state", "dev/9/state"))
    router = TopicRouter(
        "devices", [torque, other], (MqttSubscription(pattern="press1/{signal}", process="p1"),)
    )
    assert router.filters() == ["press1/+", "dev/9/state"]
    assert router.route("press1/torque") == [torque]


TORQUE = {"id": "torque", "role": "parameter", "source": "devices"}


@pytest.mark.parametrize(
    ("source", "signals", "error"),
    [
        (
            {"subscriptions": [{"pattern": "plant/{signal}/#/x"}]},
            [TORQUE],
            r"subscriptions\[0\]: .*'#' must be the last level",
        ),
        (
            {"subscriptions": [{"pattern": "plant/{signal}"}]},
            [TORQUE],
            "has no {process} level: give 'process'",
        ),
        (
            {"subscriptions": [{"pattern": "plant/{signal}", "process": "nope"}]},
            [TORQUE],
            "process 'nope' is not a process of plant plant-t",
        ),
        (
            {
                "subscriptions": [
                    {"pattern": "a/+/{signal}", "process": "p1"},
                    {"pattern": "a/x/{signal}", "process": "p2"},
                ]
            },
            [TORQUE],
            "subscriptions 'a/+/+' and 'a/x/+' overlap",
        ),
        (
            {"subscriptions": [{"pattern": "plant/{signal}", "process": "p2"}]},
            [TORQUE],
            "signal torque: MQTT source 'devices' needs a 'topic', or a subscription",
        ),
        ({"persistent_session": True, "qos": 0}, [], "persistent_session needs qos 1 or 2"),
        ({"tls": {"ca_file": "ca.pem"}}, [], "tls given but broker 'mqtt://"),
        ({"tls": {"key_file": "k.pem"}}, [], "tls.key_file given without tls.cert_file"),
    ],
)
def test_bad_mqtt_source_settings_fail_at_register_load(
    tmp_path: Path, source: dict[str, Any], signals: list[dict[str, Any]], error: str
) -> None:
    path = write_register(tmp_path, {"broker": "mqtt://127.0.0.1:1883", **source}, signals)
    with pytest.raises(RegisterError) as caught:
        load_register(path)
    message = str(caught.value)
    assert f"{path}:" in message, message
    import re

    assert re.search(error.replace("{", r"\{").replace("+", r"\+"), message), message
