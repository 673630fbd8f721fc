"""OPC UA security against a server we did not write: node-opcua with SignAndEncrypt, a
user/password and its own PKI folder that refuses unknown client certificates. Trust is
set up both ways the way a plant engineer does it: our certificate into the server's
trusted/certs, the server's (refused once, saved in our rejected/) moved into ours."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

import pytest
from cryptography import x509

from edge.sources.opcua.pki import application_uri
from harness.servers import free_port
from tests.edge.opcua.helpers import NodeOpcUaServer, edge_source, interop_register
from tests.edge.opcua.security_kit import EDGE_ID, PASSWORD, USER, Keys, make_keys, trust
from tests.edge.source_kit import RecordingSink, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("opcua-keys"))


def secured_register(policy: str, mode: str) -> str:
    identity = {"type": "username", "username": USER}
    return interop_register(
        source={"security": {"policy": policy, "mode": mode, "identity": identity}}
    )


async def start_secured_node_opcua(
    tmp_path: Path, keys: Keys, password: str, *, trust_edge: bool = True
) -> NodeOpcUaServer:
    server_pki = tmp_path / "node-pki"
    if trust_edge:
        trust(
            keys.edge_pki / "own" / "certs" / "plantkpi-edge.der",
            server_pki / "trusted" / "certs",
        )
    server = NodeOpcUaServer(
        free_port(), INTEROP_PKI=str(server_pki), INTEROP_USERS=f"{USER}:{password}"
    )
    await server.start()
    return server


@pytest.mark.parametrize("policy", ["Basic256Sha256", "Aes256_Sha256_RsaPss"])
async def test_sign_and_encrypt_with_password_against_node_opcua(
    tmp_path: Path, keys: Keys, policy: str
) -> None:
    pki = keys.edge_pki_copy(tmp_path / "edge-pki")
    register = tmp_path / "register.yaml"
    register.write_text(secured_register(policy, "SignAndEncrypt"))
    server = await start_secured_node_opcua(tmp_path, keys, PASSWORD)
    source = edge_source(
        register, server.url, opcua_pki_dir=pki.root, opcua_passwords={"s1": PASSWORD}
    )
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        # First attempt: node-opcua's certificate is unknown to us, saved in rejected/.
        await eventually(lambda: any(pki.rejected_dir.glob("*.der")), what="rejected server cert")
        assert "is not trusted" in source.connections[0].stats.last_error
        assert not sink.samples
        for rejected in pki.rejected_dir.glob("*.der"):
            shutil.move(rejected, pki.trusted_dir / rejected.name)
        await eventually(
            lambda: sum(1 for s in sink.samples if s.signal == "count") >= 3,
            what="samples over the encrypted session",
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.kill()
    assert sink.ups(), sink.events
    assert {s.signal for s in sink.samples} >= {"force", "count"}
    assert all(s.status == 0 for s in sink.samples)


async def test_wrong_password_against_node_opcua_is_a_clear_error(
    tmp_path: Path, keys: Keys
) -> None:
    pki = keys.edge_pki_copy(tmp_path / "edge-pki")
    register = tmp_path / "register.yaml"
    register.write_text(secured_register("Basic256Sha256", "SignAndEncrypt"))
    server = await start_secured_node_opcua(tmp_path, keys, "the-real-one")
    source = edge_source(
        register,
        server.url,
        opcua_pki_dir=pki.root,
        opcua_passwords={"s1": PASSWORD},
        opcua_trust_unknown_servers=True,
    )
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(
            lambda: "refused the user identity" in source.connections[0].stats.last_error,
            what="the identity error",
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.kill()
    error = source.connections[0].stats.last_error
    assert server.url in error and f"user {USER!r}" in error
    assert PASSWORD not in error
    assert not sink.samples


async def test_node_opcua_refusing_our_certificate_says_where_it_is(
    tmp_path: Path, keys: Keys
) -> None:
    """node-opcua's trusted/ lacks our certificate: the error names the server, says it
    refused our application certificate and where that file is; trusting it on the server
    (moving it from node-opcua's rejected/) is enough for the next retry to connect."""
    pki = keys.edge_pki_copy(tmp_path / "edge-pki")
    register = tmp_path / "register.yaml"
    register.write_text(secured_register("Basic256Sha256", "SignAndEncrypt"))
    server = await start_secured_node_opcua(tmp_path, keys, PASSWORD, trust_edge=False)
    source = edge_source(
        register,
        server.url,
        opcua_pki_dir=pki.root,
        opcua_passwords={"s1": PASSWORD},
        opcua_trust_unknown_servers=True,
    )
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(
            lambda: "refused our application certificate" in source.connections[0].stats.last_error,
            what="the certificate-refused error",
        )
        await eventually(lambda: len(sink.events) >= 1, what="the source reported down")
        error = source.connections[0].stats.last_error
        assert server.url in error and str(pki.cert_file) in error, error
        assert application_uri(EDGE_ID) in error
        assert not sink.ups() and not sink.samples
        # node-opcua keeps the refused certificate (PEM) in its rejected list, where the
        # message says it can be accepted instead of copied.
        (refused,) = (tmp_path / "node-pki" / "rejected").glob("*.pem")
        ours = x509.load_der_x509_certificate(pki.cert_file.read_bytes())
        assert x509.load_pem_x509_certificate(refused.read_bytes()) == ours
        shutil.move(refused, tmp_path / "node-pki" / "trusted" / "certs" / refused.name)
        await eventually(lambda: bool(sink.samples), what="samples once node-opcua trusts us")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.kill()
    assert sink.ups(), sink.events
