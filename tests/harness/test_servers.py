"""The test servers themselves: config rewriting, restarts on the same port with the same data."""

from __future__ import annotations

import shutil
import subprocess
import tomllib

import pytest

from harness.servers import InfluxServer, MosquittoServer, ServerError, rewrite_toml

BASE = """reporting-enabled = false
bind-address = "127.0.0.1:8088"

[meta]
  dir = "/var/lib/influxdb/meta"

[http]
  bind-address = ":8086"

[[graphite]]
  bind-address = ":2003"
"""


def test_rewrite_toml_sets_adds_and_leaves_array_tables() -> None:
    text = rewrite_toml(
        BASE,
        {
            ("", "bind-address"): "127.0.0.1:1",
            ("", "new-top"): True,
            ("meta", "dir"): "/tmp/x",
            ("http", "bind-address"): "127.0.0.1:2",
            ("http", "log-enabled"): False,
            ("monitor", "store-enabled"): False,
        },
    )
    parsed = tomllib.loads(text)
    assert parsed["bind-address"] == "127.0.0.1:1"
    assert parsed["new-top"] is True
    assert parsed["meta"]["dir"] == "/tmp/x"
    assert parsed["http"] == {"bind-address": "127.0.0.1:2", "log-enabled": False}
    assert parsed["monitor"] == {"store-enabled": False}
    assert parsed["graphite"] == [{"bind-address": ":2003"}]


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto-clients")
def test_mosquitto_keeps_port_and_retained_messages_across_restarts(
    private_mosquitto: MosquittoServer,
) -> None:
    server = private_mosquitto
    port = server.port
    args = ["-h", "127.0.0.1", "-p", str(port), "-t", "t/1"]
    subprocess.run(["mosquitto_pub", *args, "-r", "-q", "1", "-m", "kept"], check=True, timeout=10)
    server.restart()  # SIGTERM: mosquitto saves its persistence file
    assert (server.port, server.url) == (port, f"mqtt://127.0.0.1:{port}")
    got = subprocess.run(
        ["mosquitto_sub", *args, "-C", "1", "-W", "5"],
        check=True,
        timeout=10,
        capture_output=True,
        text=True,
    )
    assert got.stdout.strip() == "kept"
    server.kill()
    assert not server.running
    server.start()
    assert server.running and server.port == port


@pytest.mark.integration
async def test_influx_async_restart_keeps_data(private_influxdb: InfluxServer) -> None:
    server = private_influxdb
    server.create_database("keep")
    await server.restart_async(hard=True)
    names = server.query("SHOW DATABASES")["results"][0]["series"][0]["values"]
    assert ["keep"] in names


def test_start_failure_shows_the_log() -> None:
    server = MosquittoServer(extra_config=["no_such_option 1"], startup_timeout=5)
    try:
        with pytest.raises(
            ServerError, match=r"(?s)mosquitto .* exited with code .*no_such_option"
        ):
            server.start()
        assert not server.running
    finally:
        server.close()


def test_missing_binary_is_a_clear_error() -> None:
    server = InfluxServer(binary="/nonexistent/influxd")
    try:
        with pytest.raises(ServerError, match=r"install-system-deps\.sh"):
            server.start()
    finally:
        server.close()
