"""The MQTT device-broker reader of a register source, as the edge agent builds it (the
protocol registry names this module: ``common/protocols/mqtt.py``)."""

from __future__ import annotations

from common.endpoints import parse_broker_url
from common.protocols.mqtt import MqttSource as MqttSourceConfig
from common.register_base import SourceConfig
from edge.sources import BoundSignal, SourceContext
from edge.sources.mqtt.payload import DeviceLimits
from edge.sources.mqtt.routing import TopicBinding
from edge.sources.mqtt.security import build_security
from edge.sources.mqtt.source import MqttDeviceSource


def build_source(
    config: SourceConfig, signals: list[BoundSignal], context: SourceContext
) -> MqttDeviceSource:
    assert isinstance(config, MqttSourceConfig)
    settings = context.settings
    broker = parse_broker_url(settings.brokers.get(config.id) or config.broker)
    password = settings.broker_password(config.id)
    security = build_security(config, broker, password, context.register.path.parent)
    return MqttDeviceSource(
        config,
        # topic None: bound through the source's wildcard subscriptions
        [TopicBinding.of(process, signal) for process, signal in signals],
        client_id=f"plantkpi-{settings.resolved_edge_id}-{config.id}",
        broker=str(broker),
        security=security,
        reconnect_max_delay=settings.reconnect_max_delay,
        limits=DeviceLimits(
            settings.device_payload_max_bytes,
            settings.device_string_max_chars,
            settings.device_future_tolerance,
        ),
    )
