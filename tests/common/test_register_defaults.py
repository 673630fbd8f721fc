"""Defaults a plant gets without writing them: the reliable ones."""

from __future__ import annotations

from typing import Any

import pytest

from common.protocols.mqtt import MqttSource


def source(**fields: Any) -> MqttSource:
    return MqttSource.model_validate(
        {"id": "dev", "kind": "mqtt", "broker": "mqtt://h:1883", **fields}
    )


@pytest.mark.parametrize(
    ("fields", "persistent"),
    [
        ({}, True),  # QoS 1 by default: an edge restart must lose nothing
        ({"qos": 2}, True),
        ({"qos": 0}, False),  # brokers do not queue QoS 0
        ({"persistent_session": False}, False),  # said explicitly
        ({"sparkplug": {"group_id": "g", "primary_host_id": "host"}}, False),  # connects clean
    ],
)
def test_device_sources_keep_a_persistent_session_unless_they_cannot(
    fields: dict[str, Any], persistent: bool
) -> None:
    assert source(**fields).persistent_session is persistent
