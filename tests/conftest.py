"""Shared fixtures: real servers on free loopback ports, data in temp folders.

Session-scoped (one per test run, shared — do not stop them; use the ``private_*``
fixtures to crash or restart a server):

- ``mosquitto``: :class:`~harness.servers.MosquittoServer` (``.url``, ``.port``)
- ``influxdb``: :class:`~harness.servers.InfluxServer` (``.url``, ``.query()``)
- ``v2_proxy``: :class:`~harness.servers.V2ProxyServer`, the InfluxDB 1.8-style
  ``/api/v2/write`` endpoint in front of ``influxdb`` (``.url``)

Function-scoped:

- ``influx_db``: a fresh database on ``influxdb`` for this test (created, dropped after)
- ``private_mosquitto``, ``private_influxdb``: servers of this test alone, free to stop,
  kill and restart
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator

import pytest

from harness.servers import InfluxServer, MosquittoServer, ServerError, V2ProxyServer


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MosquittoServer]:
    server = MosquittoServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def influxdb() -> Iterator[InfluxServer]:
    server = InfluxServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def v2_proxy(influxdb: InfluxServer) -> Iterator[V2ProxyServer]:
    server = V2ProxyServer(influxdb.url)
    server.start()
    yield server
    server.close()


@pytest.fixture
def influx_db(influxdb: InfluxServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database name unique to this test, already created on ``influxdb``."""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:40]
    name = f"t_{stem}_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(name)
    yield name
    if influxdb.running:
        # The test may have left the server unusable; its data dir goes anyway.
        with contextlib.suppress(ServerError):
            influxdb.drop_database(name)


@pytest.fixture
def private_mosquitto() -> Iterator[MosquittoServer]:
    server = MosquittoServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def private_influxdb() -> Iterator[InfluxServer]:
    server = InfluxServer()
    server.start()
    yield server
    server.close()
