"""One login must not knock another client off the broker by taking its client id.

Found by attack: with the generated ACL and a password file, user ``edge-plant-a``
connecting as client id ``plantkpi-edge-plant-b`` every second disconnected plant B's edge
("already connected, closing old connection"), its Last Will fired each time and plant B
read offline; with client id ``plantkpi-collector`` it took the collector's persistent
session. The shipped ``mosquitto-secure.conf`` sets ``use_username_as_clientid`` (read
from the file itself here), and both attacks must leave their victims connected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from collector.acl import generate_acl
from common.register_loader import load_register
from common.topics import edge_topic
from harness.broker_config import CENTRAL_SECURE, shipped_lines, write_password_file
from harness.servers import LOOPBACK, MosquittoServer

DEMO_REGISTER = Path(__file__).parents[2] / "examples" / "demo" / "register.yaml"
PASSWORDS = {
    "edge-plant-a": "a-Secret-4-plant-a",
    "edge-plant-b": "b-Secret-4-plant-b",
    "plantkpi-collector": "c-Secret-4-collector",
}
ATTEMPTS = 5


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    passwords = write_password_file(tmp_path / "passwords", PASSWORDS)
    acl = tmp_path / "acl"
    acl.write_text(generate_acl([load_register(DEMO_REGISTER)]))
    server = MosquittoServer(
        tmp_path / "broker",
        extra_config=[
            "allow_anonymous false",
            f"password_file {passwords}",
            f"acl_file {acl}",
            *shipped_lines(CENTRAL_SECURE, frozenset({"use_username_as_clientid"})),
        ],
    )
    server.start()
    yield server
    server.close()


def _client(broker: MosquittoServer, user: str, client_id: str, **extra: object) -> aiomqtt.Client:
    return aiomqtt.Client(
        LOOPBACK,
        broker.port,
        username=user,
        password=PASSWORDS[user],
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        **extra,  # type: ignore[arg-type]
    )


async def _attack(broker: MosquittoServer, victim_id: str) -> None:
    """Plant A's edge logs in, again and again, with the victim's client id."""
    for _ in range(ATTEMPTS):
        async with _client(broker, "edge-plant-a", victim_id):
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)


def _assert_no_takeover(broker: MosquittoServer) -> None:
    log = broker.log_path.read_text(errors="replace")
    assert "already connected, closing old connection" not in log, log[-2000:]


async def test_an_edge_login_cannot_take_another_plants_edge_off_the_air(
    broker: MosquittoServer,
) -> None:
    state = edge_topic("plantkpi", "jinhua-machinery", "plant-b", "edge-plant-b", "state")
    will = aiomqtt.Will(state, b'{"online": false}', qos=1, retain=True)
    async with _client(broker, "plantkpi-collector", "plantkpi-collector") as collector:
        await collector.subscribe(state, qos=1)
        async with _client(broker, "edge-plant-b", "plantkpi-edge-plant-b", will=will) as edge:
            await _attack(broker, "plantkpi-edge-plant-b")
            # Still connected: a QoS 1 round trip on its own connection works.
            async with asyncio.timeout(5):
                await edge.publish(state, b'{"online": true}', qos=1)
            seen = []
            try:
                async with asyncio.timeout(1):
                    async for message in collector.messages:
                        seen.append(bytes(message.payload))
            except TimeoutError:
                pass
    assert b'{"online": false}' not in seen, "plant B's Last Will fired"
    assert b'{"online": true}' in seen
    _assert_no_takeover(broker)


async def test_an_edge_login_cannot_take_the_collectors_session(broker: MosquittoServer) -> None:
    async with _client(broker, "plantkpi-collector", "plantkpi-collector") as collector:
        await _attack(broker, "plantkpi-collector")
        async with asyncio.timeout(5):
            await collector.publish("plantkpi/deadletter/v1/probe", b"{}", qos=1)
    _assert_no_takeover(broker)
