"""tests/interop/server.js in a subprocess for a module's tests: started with its options
(environment), ready once it prints READY, terminated afterwards."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.servers import free_port

HERE = Path(__file__).parent


@contextlib.contextmanager
def node_opcua_server(**options: str) -> Iterator[str]:
    """The server's endpoint URL, with ``options`` as its INTEROP_* environment."""
    if not (HERE / "node_modules" / "node-opcua").is_dir():
        pytest.fail(
            "node-opcua is not installed: run bash scripts/bootstrap.sh (npm install in tests/interop)"
        )
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(HERE / "server.js"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **options},
    )
    try:
        deadline = time.monotonic() + 60  # a bound on waiting, not on speed
        assert proc.stdout is not None
        output = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            output.append(line)
            if line.startswith("READY"):
                break
            if not line and proc.poll() is not None:
                pytest.fail(f"node-opcua server exited with {proc.returncode}: {''.join(output)}")
        else:
            pytest.fail(f"node-opcua server not ready within 60 s: {''.join(output)}")
        yield f"opc.tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
