"""InfluxDB credentials come from the environment or a secrets file, and never show."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from collector.settings import CollectorSettings
from collector.storage.settings import InfluxSettings

SECRET = "s3cr3t-token-Zq9"


def test_token_is_read_from_a_secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "influx-token"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("COLLECTOR_REGISTERS", '["r.yaml"]')
    monkeypatch.setenv("COLLECTOR_INFLUX__MODE", "v2")
    monkeypatch.setenv("COLLECTOR_INFLUX__TOKEN_FILE", str(secret_file))
    settings = CollectorSettings()
    assert settings.influx.token is not None
    assert settings.influx.token.get_secret_value() == SECRET
    assert settings.influx.auth_headers() == {"Authorization": f"Token {SECRET}"}
    for shown in (repr(settings), str(settings), settings.influx.describe()):
        assert SECRET not in shown


def test_password_file_for_a_v1_user(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2")
    settings = InfluxSettings(username="plantkpi", password_file=tmp_path / "pw")
    assert settings.password is not None
    assert settings.password.get_secret_value() == "hunter2"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"token": "x", "token_file": "f"}, "give influx token or token_file, not both"),
        ({"token_file": "/nonexistent/token"}, "token_file /nonexistent/token: cannot read it"),
        ({"username": "u", "password_file": "EMPTY"}, "password_file .* is empty"),
    ],
)
def test_bad_secret_settings_fail_at_start_up_naming_the_setting(
    tmp_path: Path, given: dict[str, str], message: str
) -> None:
    (tmp_path / "EMPTY").write_text("\n")
    if given.get("password_file") == "EMPTY":
        given = {**given, "password_file": str(tmp_path / "EMPTY")}
    with pytest.raises(ValidationError, match=message):
        InfluxSettings(**given)


def test_a_secret_in_a_validation_error_is_not_echoed() -> None:
    # pydantic echoes the input of a failing field; a secret must not be one of them.
    with pytest.raises(ValidationError) as failure:
        InfluxSettings(token=SECRET, url="ftp://nowhere")
    assert SECRET not in str(failure.value)


def test_settings_errors_never_echo_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # A model-level error would print the whole input (password included) without
    # hide_input_in_errors; so would a malformed JSON value of a nested setting.
    monkeypatch.setenv("COLLECTOR_REGISTERS", '["r.yaml"]')
    monkeypatch.setenv("COLLECTOR_INFLUX__PASSWORD", SECRET)
    with pytest.raises(ValidationError) as failure:
        CollectorSettings()
    assert "give both username and password" in str(failure.value)
    assert SECRET not in str(failure.value)
    monkeypatch.delenv("COLLECTOR_INFLUX__PASSWORD")
    monkeypatch.setenv("COLLECTOR_API__TOKENS", f'["{SECRET}", ')
    with pytest.raises(ValueError, match="api") as broken:
        CollectorSettings()
    assert "api" in str(broken.value)
    assert SECRET not in str(broken.value)
