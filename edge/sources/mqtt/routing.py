"""Which register signals a message topic is for: exact topics first, then wildcard patterns.

Pure, unit-tested on its own. A topic that matches a pattern but names no signal of the
register is answered with the reason, so the source rejects it by name instead of
dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from common.protocols.mqtt import MqttSignalBinding, MqttSubscription
from common.register import Signal
from common.topic_patterns import TopicPattern


@dataclass(frozen=True)
class TopicBinding:
    topic: str | None
    """The exact topic, or None for a signal bound through the source's subscriptions."""
    process: str
    signal: Signal

    @classmethod
    def of(cls, process: str, signal: Signal) -> TopicBinding:
        """A register signal of an MQTT source."""
        return cls(mqtt_binding(signal).topic, process, signal)

    @cached_property  # read for every message
    def binding(self) -> MqttSignalBinding:
        return mqtt_binding(self.signal)


def mqtt_binding(signal: Signal) -> MqttSignalBinding:
    binding = signal.binding
    if not isinstance(binding, MqttSignalBinding):
        raise ValueError(f"signal {signal.id}: not bound to an MQTT source")
    return binding


@dataclass(frozen=True)
class _Route:
    pattern: TopicPattern
    process: str | None


class TopicRouter:
    def __init__(
        self,
        source_id: str,
        bindings: list[TopicBinding],
        subscriptions: tuple[MqttSubscription, ...],
    ) -> None:
        self.source_id = source_id
        self.exact: dict[str, list[TopicBinding]] = {}
        self.by_id: dict[tuple[str, str], TopicBinding] = {}
        for binding in bindings:
            if binding.topic is None:
                self.by_id[(binding.process, binding.signal.id)] = binding
            else:
                self.exact.setdefault(binding.topic, []).append(binding)
        self.routes = [_Route(TopicPattern.parse(s.pattern), s.process) for s in subscriptions]

    def filters(self) -> list[str]:
        """What to subscribe: every pattern, and the exact topics no pattern covers (a topic
        subscribed twice could be delivered twice)."""
        found = [route.pattern.filter for route in self.routes]
        for topic in self.exact:
            if not any(route.pattern.match(topic) is not None for route in self.routes):
                found.append(topic)
        return found

    def route(self, topic: str) -> list[TopicBinding] | str:
        """The bindings a message on ``topic`` feeds, or why it feeds none."""
        exact = self.exact.get(topic)
        if exact is not None:
            return exact
        for route in self.routes:
            levels = route.pattern.match(topic)
            if levels is None:
                continue
            process = levels.get("process", route.process)
            assert process is not None  # the register requires one or the other
            signal = levels["signal"]
            binding = self.by_id.get((process, signal))
            if binding is None:
                return (
                    f"topic matches subscription {route.pattern.text!r} but process "
                    f"{process!r}, signal {signal!r} is no signal of the register bound to "
                    f"source {self.source_id} without a topic"
                )
            return [binding]
        return "no signal of the register is bound to this topic"
