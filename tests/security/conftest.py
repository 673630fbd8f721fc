"""A real mosquitto as a production central broker: TLS only (client certificate required),
a password file and the ACL ``plantkpi-collector acl`` generates for the demo register.

Users: ``edge-plant-a``, ``edge-plant-b``, ``plantkpi-collector`` (the ACL's), and
``test-observer``, a test-only user who may read and write everything (to watch what
arrives and to forge batches on an edge's own topic).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.acl import generate_acl
from common.register_loader import load_register
from common.topics import edge_topic
from harness.broker_config import write_password_file
from harness.pki import Pki, make_pki
from harness.servers import LOOPBACK, MosquittoServer

DEMO_REGISTER = Path(__file__).parents[2] / "examples" / "demo" / "register.yaml"
OBSERVER = "test-observer"
HALF = "edge-half"
NO_READ = "collector-no-read"
"""A collector user the ACL lets publish dead letters but read nothing."""
"""A test-only edge of plant-a whose ACL lets its birth through but not its batches."""
PASSWORDS = {
    "edge-plant-a": "a-Secret-4-plant-a",
    "edge-plant-b": "b-Secret-4-plant-b",
    "plantkpi-collector": "c-Secret-4-collector",
    OBSERVER: "o-Secret-4-observer",
    HALF: "h-Secret-4-half-edge",
    NO_READ: "n-Secret-4-no-read",
}


@dataclass(frozen=True)
class SecureBroker:
    server: MosquittoServer
    pki: Pki
    secrets: Path
    """A folder with ``<user>.password`` files."""

    @property
    def url(self) -> str:
        return f"mqtts://{LOOPBACK}:{self.server.port}"

    def password_file(self, user: str) -> Path:
        return self.secrets / f"{user}.password"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureBroker]:
    folder = tmp_path_factory.mktemp("secure-broker")
    passwords = folder / "passwords"
    secrets = folder / "secrets"
    secrets.mkdir()
    write_password_file(passwords, PASSWORDS)
    for user, password in PASSWORDS.items():
        (secrets / f"{user}.password").write_text(password + "\n")
    acl = folder / "acl"
    generated = generate_acl([load_register(DEMO_REGISTER)])
    half_state = edge_topic("plantkpi", "jinhua-machinery", "plant-a", HALF, "state")
    acl.write_text(
        generated
        + f"\nuser {OBSERVER}\ntopic readwrite #\n"
        + f"\nuser {HALF}\ntopic write {half_state}\n"
        + f"\nuser {NO_READ}\ntopic write plantkpi/deadletter/#\n"
    )
    server = MosquittoServer(
        folder / "broker",
        extra_config=[
            # These follow the harness's own `listener` line, so they secure that listener.
            f"cafile {pki.ca}",
            f"certfile {pki.server.cert}",
            f"keyfile {pki.server.key}",
            "require_certificate true",
            "allow_anonymous false",
            f"password_file {passwords}",
            f"acl_file {acl}",
        ],
    )
    server.start()
    yield SecureBroker(server, pki, secrets)
    server.close()
