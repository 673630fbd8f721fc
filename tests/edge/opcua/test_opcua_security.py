"""OPC UA security end to end against the asyncua simulator: encrypted sessions with a
password under each policy, and the clear errors a plant engineer gets (wrong password,
untrusted server, our certificate refused, no matching endpoint) while the source keeps
retrying."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from cryptography import x509

from common.protocols.opcua import OpcUaSource as OpcUaSourceConfig
from common.register_loader import RegisterError, load_register, parse_register
from edge.sources.opcua.pki import ApplicationPki, application_uri, thumbprint
from edge.sources.opcua.security import _first_certificate
from edge.sources.opcua.source import OpcUaSource
from harness.servers import free_port
from simulators.opcua_server import ServerSecurity
from tests import registers
from tests.edge.opcua.helpers import edge_source
from tests.edge.opcua.security_kit import (
    EDGE_ID,
    PASSWORD,
    URI,
    USER,
    Keys,
    make_keys,
    make_user_certificate,
    policy_type,
    register_yaml,
    secured_server,
    trust,
)
from tests.edge.source_kit import RecordingSink, eventually, running

pytestmark = pytest.mark.integration

SECURE = {
    "policy": "Basic256Sha256",
    "mode": "SignAndEncrypt",
    "identity": {"type": "username", "username": USER},
}


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("opcua-keys"))


@pytest.fixture(scope="session")
def user_certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """User name → (certificate, key) of two X.509 user identities."""
    folder = tmp_path_factory.mktemp("opcua-users")
    return {name: make_user_certificate(folder, name) for name in ("alice", "mallory")}


def setup(
    tmp_path: Path,
    keys: Keys,
    security: dict[str, Any],
    *,
    trust_server: bool = True,
    **settings: Any,
) -> tuple[OpcUaSource, ApplicationPki, str]:
    pki = keys.edge_pki_copy(tmp_path / "pki")
    if trust_server:
        trust(keys.server_cert, pki.trusted_dir)
    register = tmp_path / "register.yaml"
    register.write_text(register_yaml(security))
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    settings.setdefault("opcua_passwords", {"s1": PASSWORD})
    source = edge_source(register, endpoint, opcua_pki_dir=pki.root, **settings)
    return source, pki, endpoint


def server_security(
    keys: Keys,
    tmp_path: Path,
    *policies: ua.SecurityPolicyType,
    trust_edge: bool = True,
    user_certificates: tuple[Path, ...] = (),
) -> ServerSecurity:
    trusted = tmp_path / "server-trusted"
    trusted.mkdir()
    if trust_edge:
        trust(keys.edge_pki / "own" / "certs" / "plantkpi-edge.der", trusted)
    return ServerSecurity(
        keys.server_cert,
        keys.server_key,
        policies or (policy_type("Basic256Sha256", "SignAndEncrypt"),),
        users={} if user_certificates else {USER: PASSWORD},
        trusted_dir=trusted,
        user_certificates=user_certificates,
    )


def speeds(sink: RecordingSink) -> int:
    return sum(1 for s in sink.samples if s.signal == "speed")


@pytest.mark.parametrize(
    ("policy", "mode"),
    [
        ("Basic256Sha256", "SignAndEncrypt"),
        ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
        ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
        ("Basic256Sha256", "Sign"),
    ],
)
async def test_secured_session_with_password_delivers_samples(
    tmp_path: Path, keys: Keys, policy: str, mode: str
) -> None:
    security = {"policy": policy, "mode": mode, "identity": {"type": "username", "username": USER}}
    source, _, endpoint = setup(tmp_path, keys, security)
    offered = server_security(keys, tmp_path, policy_type(policy, mode))
    async with secured_server(endpoint, offered), running(source) as sink:
        await eventually(lambda: speeds(sink) >= 5, what="samples over the secured session")
    assert sink.ups(), sink.events
    assert {s.signal for s in sink.samples} == {"state", "speed"}
    assert not sink.rejections


async def test_wrong_password_is_a_clear_error_and_retried(tmp_path: Path, keys: Keys) -> None:
    source, _, endpoint = setup(tmp_path, keys, SECURE, opcua_passwords={"s1": "wrong-guess"})
    async with secured_server(endpoint, server_security(keys, tmp_path)), running(source) as sink:
        await eventually(
            lambda: source.connections[0].stats.last_error.count("refused the user identity") > 0,
            what="the identity error",
        )
        error = source.health()["last_error"]
        await eventually(lambda: len(sink.events) >= 1, what="the source reported down")
    assert isinstance(error, str)
    assert endpoint in error and "BadUserAccessDenied" in error
    assert f"user {USER!r}" in error and "EDGE_OPCUA_PASSWORDS" in error
    assert "wrong-guess" not in error
    assert not sink.ups() and not sink.samples
    assert sink.events[-1].detail == error


async def test_untrusted_server_certificate_is_rejected_then_trusted_by_moving_it(
    tmp_path: Path, keys: Keys
) -> None:
    source, pki, endpoint = setup(tmp_path, keys, SECURE, trust_server=False)
    async with secured_server(endpoint, server_security(keys, tmp_path)), running(source) as sink:
        await eventually(
            lambda: "is not trusted" in source.connections[0].stats.last_error,
            what="the untrusted-server error",
        )
        (rejected,) = pki.rejected_dir.iterdir()
        error = source.connections[0].stats.last_error
        assert endpoint in error
        assert f"move it into {pki.trusted_dir}" in error and str(rejected) in error
        assert rejected.read_bytes() == keys.server_cert.read_bytes()
        assert not sink.samples
        # Doing what the message says is enough: the next retry connects.
        shutil.move(rejected, pki.trusted_dir / rejected.name)
        await eventually(lambda: speeds(sink) >= 3, what="samples once the server is trusted")


async def test_trust_on_first_use_when_turned_on(
    tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    source, pki, endpoint = setup(
        tmp_path, keys, SECURE, trust_server=False, opcua_trust_unknown_servers=True
    )
    with caplog.at_level(logging.WARNING, "edge.sources.opcua.pki"):
        async with (
            secured_server(endpoint, server_security(keys, tmp_path)),
            running(source) as sink,
        ):
            await eventually(lambda: speeds(sink) >= 3, what="samples")
    assert [p.read_bytes() for p in pki.trusted_dir.iterdir()] == [keys.server_cert.read_bytes()]
    assert "trust on first use" in caplog.text


async def test_server_refusing_our_certificate_says_where_it_is(tmp_path: Path, keys: Keys) -> None:
    source, pki, endpoint = setup(tmp_path, keys, SECURE)
    refusing = server_security(keys, tmp_path, trust_edge=False)
    async with secured_server(endpoint, refusing), running(source) as sink:
        await eventually(
            lambda: "refused our application certificate" in source.connections[0].stats.last_error,
            what="the certificate-refused error",
        )
    error = source.connections[0].stats.last_error
    assert endpoint in error and str(pki.cert_file) in error
    assert application_uri(EDGE_ID) in error
    assert not sink.samples


async def test_no_matching_endpoint_lists_what_the_server_offers(
    tmp_path: Path, keys: Keys
) -> None:
    wanted = SECURE | {"policy": "Aes256_Sha256_RsaPss"}
    source, _, endpoint = setup(tmp_path, keys, wanted)
    offered = server_security(keys, tmp_path, policy_type("Basic256Sha256", "Sign"))
    async with secured_server(endpoint, offered), running(source) as sink:
        await eventually(
            lambda: "offers no endpoint" in source.connections[0].stats.last_error,
            what="the no-endpoint error",
        )
    error = source.connections[0].stats.last_error
    assert "OPC UA source s1" in error and endpoint in error
    assert "Aes256_Sha256_RsaPss and mode SignAndEncrypt" in error
    assert "Basic256Sha256/Sign (username)" in error
    assert not sink.samples


async def test_certificate_is_kept_across_starts(tmp_path: Path, keys: Keys) -> None:
    pki = keys.edge_pki_copy(tmp_path / "pki")
    made = x509.load_der_x509_certificate(pki.cert_file.read_bytes())
    first = await pki.own_certificate()
    again = await ApplicationPki(pki.root, application_uri(EDGE_ID)).own_certificate()
    assert first.thumbprint == again.thumbprint == thumbprint(made)
    san = made.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert application_uri(EDGE_ID) in san.get_values_for_type(x509.UniformResourceIdentifier)
    assert (pki.key_file.stat().st_mode & 0o077) == 0, "the private key is private"
    # Another edge id needs another ApplicationUri: a new certificate, the same key.
    renamed = await ApplicationPki(pki.root, application_uri("edge-x")).own_certificate()
    assert renamed.thumbprint != first.thumbprint
    assert (
        pki.key_file.read_bytes()
        == (tmp_path / "pki" / "own/private/plantkpi-edge.pem").read_bytes()
    )


async def test_policy_none_is_warned_about_at_start_and_needs_no_certificate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    register = tmp_path / "register.yaml"
    register.write_text(register_yaml(registers.NO_SECURITY))
    with caplog.at_level(logging.WARNING, "edge.sources.opcua.security"):
        source = edge_source(register, "opc.tcp://127.0.0.1:4840", opcua_pki_dir=tmp_path / "pki")
    assert "OPC UA source s1 (opc.tcp://127.0.0.1:4840): security policy None" in caplog.text
    security = source.connections[0].security
    assert security is not None
    await security.prepare()
    assert not (tmp_path / "pki").exists()


def test_username_without_password_fails_at_start(tmp_path: Path) -> None:
    register = tmp_path / "register.yaml"
    register.write_text(register_yaml(SECURE))
    with pytest.raises(ValueError, match="identity username 'operator' needs a password"):
        edge_source(register, "opc.tcp://127.0.0.1:4840", opcua_pki_dir=tmp_path / "pki")


def test_an_unwritable_pki_folder_fails_at_start_naming_it(tmp_path: Path) -> None:
    register = tmp_path / "register.yaml"
    register.write_text(register_yaml(SECURE))
    (tmp_path / "a-file").write_text("")  # a folder cannot be made under a file (even as root)
    with pytest.raises(ValueError, match=r"a-file/pki \(EDGE_OPCUA_PKI_DIR\) is not writable"):
        edge_source(
            register,
            "opc.tcp://127.0.0.1:4840",
            opcua_pki_dir=tmp_path / "a-file" / "pki",
            opcua_passwords={"s1": PASSWORD},
        )


SECURITY_AT_LINE_6 = """\
enterprise: {{id: test-ent, region: Test, above_designated_size: true}}
plants:
- id: p1
  sources:
  - {{id: s1, kind: opcua, endpoint: "opc.tcp://127.0.0.1:4840", publishing_interval: 100ms{security}}}
  lines:
  - id: l1
    processes:
    - id: m0
      name: Machine
      key: true
      industry: discrete
      signals:
      - {{id: state, role: state, source: s1, node: "ns=2;s=m0.state", update: on_change}}
"""
"""A loader test: the error's line number is what it checks, so the register stays text."""


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        (None, ["plant.yaml:5", "'security' is required", "policy: None, mode: None"]),
        ("{policy: None, mode: Sign}", ["plant.yaml:6", "policy None goes only with mode None"]),
        ("{policy: Basic256Sha256, mode: None}", ["plant.yaml:6", "needs mode Sign"]),
        ("{policy: Basic128Rsa15, mode: Sign}", ["plant.yaml:6", "policy"]),
        (
            "{policy: Basic256Sha256, mode: Sign, identity: {type: username, username: u, password: p}}",
            ["plant.yaml:6", "password", "unknown key"],
        ),
    ],
)
def test_register_security_errors_name_the_line(security: str | None, expected: list[str]) -> None:
    text = SECURITY_AT_LINE_6.format(security=f",\n     security: {security}" if security else "")
    with pytest.raises(RegisterError) as excinfo:
        parse_register(text.encode(), Path("plant.yaml"))
    for part in expected:
        assert part in str(excinfo.value), str(excinfo.value)


def test_production_example_encrypts_every_opcua_link() -> None:
    example = Path(__file__).parents[3] / "examples" / "production" / "register.yaml"
    register = load_register(example)
    sources = [
        s for p in register.model.plants for s in p.sources if isinstance(s, OpcUaSourceConfig)
    ]
    assert sources
    assert all(s.security.mode == "SignAndEncrypt" for s in sources)


async def test_browse_command_connects_with_the_register_sources_security(
    tmp_path: Path, keys: Keys
) -> None:
    """``browse --register`` uses the source's policy, identity, password and PKI folder
    exactly as the agent does; a wrong password gives the agent's clear error."""
    _, pki, endpoint = setup(tmp_path, keys, SECURE)
    register = tmp_path / "register.yaml"

    async def browse(password: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "edge", "browse", "--register", str(register), "--plant", "p1"),
            *("--source", "s1", "--endpoint", endpoint, "--root", "/Objects", "--depth", "3"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={
                **os.environ,
                "EDGE_OPCUA_PKI_DIR": str(pki.root),
                "EDGE_OPCUA_PASSWORDS": json.dumps({"s1": password}),
                "EDGE_HEALTH_ENABLED": "false",
            },
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()

    async with secured_server(endpoint, server_security(keys, tmp_path)):
        code, out, err = await browse(PASSWORD)
        bad_code, _, bad_err = await browse("wrong-guess")
    assert code == 0, err
    assert f"nsu={URI};s=m0.speed" in out
    assert bad_code == 1
    assert "refused the user identity" in bad_err and "wrong-guess" not in bad_err


def test_the_first_certificate_of_a_chain_is_cut_by_its_der_length(keys: Keys) -> None:
    der = keys.server_cert.read_bytes()
    assert _first_certificate(der + der) == der
    assert _first_certificate(der) == der
    assert _first_certificate(b"\x30\x03abc" + der) == b"\x30\x03abc"  # short-form length
    assert _first_certificate(b"\x30\x81\x02xy" + der) == b"\x30\x81\x02xy"


def certificate_identity(tmp_path: Path, cert_file: Path, key_file: Path) -> dict[str, Any]:
    """The register's security with an X.509 user identity, its files next to the register
    (relative paths, resolved against the register's folder)."""
    (tmp_path / "users").mkdir()
    shutil.copy(cert_file, tmp_path / "users" / cert_file.name)
    shutil.copy(key_file, tmp_path / "users" / key_file.name)
    identity = {
        "type": "certificate",
        "cert_file": f"users/{cert_file.name}",
        "key_file": f"users/{key_file.name}",
    }
    return {"policy": "Basic256Sha256", "mode": "SignAndEncrypt", "identity": identity}


async def test_user_certificate_identity_delivers_samples(
    tmp_path: Path, keys: Keys, user_certificates: dict[str, tuple[Path, Path]]
) -> None:
    """The server accepts alice's user certificate and not our application certificate as
    a user: samples flowing proves the X.509 token carries the user certificate."""
    alice_cert, alice_key = user_certificates["alice"]
    security = certificate_identity(tmp_path, alice_cert, alice_key)
    source, pki, endpoint = setup(tmp_path, keys, security, opcua_passwords={})
    assert pki.cert_file.read_bytes() != alice_cert.read_bytes()
    offered = server_security(keys, tmp_path, user_certificates=(alice_cert,))
    async with secured_server(endpoint, offered), running(source) as sink:
        await eventually(lambda: speeds(sink) >= 5, what="samples with the user certificate")
    assert sink.ups(), sink.events
    assert {s.signal for s in sink.samples} == {"state", "speed"}
    assert not source.connections[0].stats.last_error.count("refused")


async def test_user_certificate_the_server_does_not_accept_is_a_clear_error(
    tmp_path: Path, keys: Keys, user_certificates: dict[str, tuple[Path, Path]]
) -> None:
    """mallory's certificate is refused even though the server would accept our
    application certificate as a user: the token does not fall back to it."""
    mallory_cert, mallory_key = user_certificates["mallory"]
    security = certificate_identity(tmp_path, mallory_cert, mallory_key)
    source, pki, endpoint = setup(tmp_path, keys, security, opcua_passwords={})
    accepted = (user_certificates["alice"][0], pki.cert_file)
    offered = server_security(keys, tmp_path, user_certificates=accepted)
    async with secured_server(endpoint, offered), running(source) as sink:
        await eventually(
            lambda: "refused the user identity" in source.connections[0].stats.last_error,
            what="the user-certificate error",
        )
        await eventually(lambda: len(sink.events) >= 1, what="the source reported down")
    error = source.connections[0].stats.last_error
    assert endpoint in error and "BadUserAccessDenied" in error
    refused = tmp_path / "users" / mallory_cert.name
    assert f"the server does not accept the user certificate {refused}" in error, error
    assert not sink.ups() and not sink.samples
