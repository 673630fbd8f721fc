"""Shared by the MQTT device source tests: a recording sink, test certificates, and a real
mosquitto that demands TLS (with a client certificate) and a password.

Only the sink, the far end of the source, records; the brokers are real mosquitto processes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.wire import Sample
from edge.sources import SignalKey
from harness.pki import make_pki
from harness.servers import LOOPBACK, MosquittoServer
from tests import registers

USER = "edge-a"
PASSWORD = "s3cret-Pa55"


class RecordingSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.events: list[tuple[str, bool, str]] = []
        self.rejections: list[tuple[str, str, str]] = []

    def sample(self, sample: Sample) -> None:
        self.samples.append(sample)

    def liveness(self, source: str, up: bool, detail: str = "") -> None:
        self.events.append((source, up, detail))

    def after_durable(self, callback: Callable[[], None]) -> None:
        callback()  # nothing to persist here: the sample is already recorded

    def rejected(
        self, source: str, culprit: str, reason: str, signals: Collection[SignalKey] = ()
    ) -> None:
        self.rejections.append((source, culprit, reason))

    def is_up(self) -> bool:
        return bool(self.events) and self.events[-1][1]


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    """A CA that did not sign the broker's certificate."""


def make_tls_files(folder: Path) -> TlsFiles:
    pki = make_pki(folder)
    client = pki.client("edge-a")
    return TlsFiles(
        ca=pki.ca,
        server_cert=pki.server.cert,
        server_key=pki.server.key,
        client_cert=client.cert,
        client_key=client.key,
        other_ca=pki.other_ca,
    )


def secure_mosquitto(folder: Path, tls: TlsFiles) -> MosquittoServer:
    """A mosquitto whose only listener wants TLS, a client certificate of our CA and a login."""
    passwords = folder / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwords), USER, PASSWORD],
        check=True,
        capture_output=True,
    )
    return MosquittoServer(
        folder / "broker",
        extra_config=[
            # These follow the server's own `listener` line, so they secure that listener.
            f"cafile {tls.ca}",
            f"certfile {tls.server_cert}",
            f"keyfile {tls.server_key}",
            "require_certificate true",
            "allow_anonymous false",
            f"password_file {passwords}",
        ],
    )


def tls_url(server: MosquittoServer) -> str:
    return f"mqtts://{LOOPBACK}:{server.port}"


def write_register(folder: Path, source: dict[str, Any], signals: list[dict[str, Any]]) -> Path:
    """A one-plant register with one MQTT source and process ``p1`` (plus ``p2``, empty)."""
    processes = [
        registers.process("p1", signals, name="Press"),
        registers.process("p2", [], key=False, name="Other"),
    ]
    source = {"id": "devices", "kind": "mqtt", **source}
    plant = registers.plant("plant-t", [source], [registers.line("l1", processes)])
    return registers.write(folder, registers.document([plant], region="r", version="test"))
