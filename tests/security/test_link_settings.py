"""Uplink and collector link settings: unusable ones fail at start-up naming the setting;
secrets come from the environment or a file and never show in a repr."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from collector.settings import CollectorSettings
from edge.settings import EdgeSettings
from harness.pki import Pki


def edge(**values: Any) -> EdgeSettings:
    return EdgeSettings(_env_file=None, register_file=Path("r.yaml"), plant="p", **values)


def collector(**values: Any) -> CollectorSettings:
    return CollectorSettings(_env_file=None, registers=[Path("r.yaml")], **values)


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (
            {"uplink": {"ca_file": "ca.pem"}},
            r"broker mqtt://127.0.0.1:1883: EDGE_UPLINK__CA_FILE given but the broker, "
            r"mqtt://127.0.0.1:1883, is not mqtts://",
        ),
        (
            {"uplink": {"url": "mqtts://h:8883", "key_file": "k.pem"}},
            "EDGE_UPLINK__KEY_FILE given without EDGE_UPLINK__CERT_FILE",
        ),
        (
            {"uplink": {"url": "mqtts://h:8883", "ca_file": "/nonexistent/ca.pem"}},
            r"broker mqtts://h:8883: EDGE_UPLINK__CA_FILE /nonexistent/ca.pem: No such file",
        ),
        (
            {"uplink": {"username": "u", "password_file": "/nonexistent/pw"}},
            "cannot read EDGE_UPLINK__PASSWORD_FILE /nonexistent/pw: No such file",
        ),
        (
            {"uplink": {"username": "u", "password": "x", "password_file": "/pw"}},
            "both EDGE_UPLINK__PASSWORD and EDGE_UPLINK__PASSWORD_FILE are set",
        ),
        (
            {"uplink": {"password": "x"}},
            "a password is configured but EDGE_UPLINK__USERNAME is not",
        ),
    ],
)
def test_unusable_uplink_settings_name_the_setting(values: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        edge(**values).uplink_security()


def test_collector_settings_name_their_own_variables(pki: Pki) -> None:
    with pytest.raises(
        ValueError, match=r"COLLECTOR_BROKER__CERT_FILE .*COLLECTOR_BROKER__KEY_FILE"
    ):
        collector(
            broker={"url": "mqtts://h:8883", "cert_file": pki.ca, "key_file": pki.other_ca}
        ).broker_security()
    with pytest.raises(ValueError, match="COLLECTOR_BROKER__CA_FILE given"):
        collector(broker={"ca_file": pki.ca}).broker_security()


def test_password_from_the_environment_or_a_file_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pki: Pki
) -> None:
    monkeypatch.setenv("EDGE_UPLINK__PASSWORD", "env-Secret-1")
    monkeypatch.setenv("EDGE_UPLINK__USERNAME", "edge-p")
    settings = edge(uplink={"url": "mqtts://127.0.0.1:8883", "ca_file": pki.ca})
    security = settings.uplink_security()
    assert security.plain_password() == "env-Secret-1"
    assert security.describe() == f"user 'edge-p', TLS verified against CA file {pki.ca}"
    assert "env-Secret-1" not in repr(settings) + repr(security) + str(settings)

    secret = tmp_path / "collector.password"
    secret.write_text("file-Secret-2\n")
    monkeypatch.setenv("COLLECTOR_BROKER__USERNAME", "plantkpi-collector")
    monkeypatch.setenv("COLLECTOR_BROKER__PASSWORD_FILE", str(secret))
    settings_c = collector()
    security_c = settings_c.broker_security()
    assert security_c.plain_password() == "file-Secret-2"  # the file's newline is not in it
    assert security_c.tls is None
    assert "file-Secret-2" not in repr(settings_c) + repr(security_c)


def test_mqtts_without_a_ca_file_verifies_against_the_system_cas() -> None:
    security = edge(uplink={"url": "mqtts://broker.example:8883"}).uplink_security()
    assert security.tls is not None and security.tls.check_hostname
    assert security.describe() == "anonymous, TLS verified against the system CAs"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"uplink": {"url": "mqtts://edge:Pw-in-url-1@broker:8883"}},
            "broker 'mqtts://***@broker",
        ),
        ({"brokers": {"dev": "mqtt://dev:Pw-in-url-1@h:1883"}}, "broker 'mqtt://***@h:1883'"),
        ({"endpoints": {"s1": "opc.tcp://op:Pw-in-url-1@plc:4840"}}, "'opc.tcp://***@plc:4840'"),
    ],
)
def test_credentials_in_a_url_are_refused_without_echoing_them(
    tmp_path: Path, settings: dict[str, Any], expected: str
) -> None:
    """asyncua would log in with ``user:password@`` from an endpoint (and paho-based code
    would drop it silently); URLs are logged and reported, so they may carry no secret."""
    with pytest.raises(ValueError, match=re.escape(expected)) as failure:
        EdgeSettings(register_file=tmp_path / "r.yaml", plant="p", **settings)
    assert expected in str(failure.value)
    assert "credentials do not belong in the URL" in str(failure.value)
    assert "Pw-in-url-1" not in str(failure.value)
