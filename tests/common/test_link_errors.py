"""Link errors name the cause the broker gave, not one it did not."""

from __future__ import annotations

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from common.mqtt_tls import LinkSecurity, connect_error_kind, explain_link_error

HINTS = {"login_hint": "EDGE_UPLINK__USERNAME", "ca_hint": "EDGE_UPLINK__CA_FILE"}


def test_a_broker_that_stopped_is_not_a_refused_login() -> None:
    # paho's MQTT_ERR_NO_CONN is 4, the same number as MQTT 3.1.1's "bad user name or
    # password": raised by a publish on a link the broker closed, it is no login refusal.
    gone = aiomqtt.MqttCodeError(4, "publish")
    assert connect_error_kind(gone) == "other"
    text = explain_link_error(gone, "central broker mqtt://127.0.0.1:1883", LinkSecurity(), **HINTS)
    assert "login refused" not in text and "EDGE_UPLINK__USERNAME" not in text
    assert "not currently connected" in text


def test_a_connack_refusal_is_a_refused_login_naming_the_user() -> None:
    for refusal in (
        MqttConnectError(4),  # MQTT 3.1.1: bad user name or password
        MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=135)),  # 5: not authorized
    ):
        assert connect_error_kind(refusal) == "login"
        text = explain_link_error(
            refusal, "central broker", LinkSecurity(username="edge-pa"), **HINTS
        )
        assert "login refused for user 'edge-pa'" in text and "EDGE_UPLINK__USERNAME" in text
