"""Settings variables: a misspelt name is warned about, a value that is not JSON is an error
naming its variable, and neither message ever quotes a value."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import SettingsError

from collector.settings import CollectorSettings
from common.settings_env import (
    bad_json_settings,
    renamed_settings,
    setting_names,
    unknown_settings,
    warn_unknown_settings,
)
from edge.settings import EdgeSettings

ROOT = Path(__file__).parents[2]
SECRET = "s3cr3t-Value-7Qz"


def test_a_misspelt_setting_is_named_with_the_one_meant() -> None:
    environ = {
        "COLLECTOR_BROKR": "mqtt://broker:1883",
        "COLLECTOR_INFLUX_DATABASE": "plantkpi",  # one underscore: not the nested setting
        "COLLECTOR_BROKER_PASWORD": SECRET,
    }
    assert unknown_settings(environ, CollectorSettings) == [
        "COLLECTOR_BROKER_PASWORD is not a setting (did you mean COLLECTOR_BROKER__PASSWORD?)",
        "COLLECTOR_BROKR is not a setting (did you mean COLLECTOR_BROKER?)",
        "COLLECTOR_INFLUX_DATABASE is not a setting (did you mean COLLECTOR_INFLUX__DATABASE?)",
    ]


def test_nested_settings_are_known_and_a_misspelt_nested_key_is_not() -> None:
    valid = {
        "COLLECTOR_KPI__WINDOW": "1h",
        "COLLECTOR_INFLUX__URL": "http://influx:8086",
        "COLLECTOR_KPI__THRESHOLDS__COVERAGE_MIN": "0.9",
        "COLLECTOR_KPI": '{"period": "30s"}',  # a nested model as one JSON value
        "COLLECTOR_LIMITS__PAYLOAD_BYTES": "1000000",
        "collector_broker__url": "mqtt://x",  # pydantic-settings matches names in any case
    }
    assert unknown_settings(valid, CollectorSettings) == []
    assert unknown_settings({"COLLECTOR_KPI__WINDOWW": "1h"}, CollectorSettings) == [
        "COLLECTOR_KPI__WINDOWW is not a setting (did you mean COLLECTOR_KPI__WINDOW?)"
    ]
    # Below a plain setting there is nothing to set.
    assert unknown_settings({"COLLECTOR_SHARE_GROUP__NAME": "x"}, CollectorSettings) == [
        "COLLECTOR_SHARE_GROUP__NAME is not a setting (did you mean COLLECTOR_SHARE_GROUP?)"
    ]


def test_only_the_services_prefix_is_checked_and_far_names_get_no_guess() -> None:
    environ = {"PATH": "/usr/bin", "EDGE_PLANT": "p", "COLLECTOR_QWERTY": "1"}
    assert unknown_settings(environ, CollectorSettings) == ["COLLECTOR_QWERTY is not a setting"]


def test_the_edges_nested_settings_are_known() -> None:
    environ = {
        "EDGE_PLANTT": "plant-a",
        "EDGE_ENDPOINTS__LINE1": "opc.tcp://plc:4840",  # one key of a mapping
        "EDGE_ENDPOINTS": '{"line1": "opc.tcp://plc:4840"}',
        "EDGE_UPLINK__PASSWORD": SECRET,
        "EDGE_UPLINK__PASWORD": SECRET,
    }
    assert unknown_settings(environ, EdgeSettings) == [
        "EDGE_PLANTT is not a setting (did you mean EDGE_PLANT?)",
        "EDGE_UPLINK__PASWORD is not a setting (did you mean EDGE_UPLINK__PASSWORD?)",
    ]


def test_a_setting_under_its_earlier_name_is_read_and_named_for_renaming(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker links' settings were flat (``EDGE_UPLINK_BROKER``, ``COLLECTOR_BROKER``,
    ``COLLECTOR_CLIENT_ID``, …) before they were one nested model: a plant's deployment
    keeps working, told what to rename."""
    (clean_env / ".env").write_text("EDGE_UPLINK_CA_FILE=/etc/ca.pem\n")
    environ = {
        "EDGE_UPLINK_BROKER": "mqtts://central:8883",
        "EDGE_UPLINK_USERNAME": "edge-plant-a",
        "EDGE_UPLINK_PASSWORD": SECRET,
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = EdgeSettings(register_file=Path("r.yaml"), plant="plant-a")
    assert settings.uplink.url == "mqtts://central:8883"
    assert settings.uplink.username == "edge-plant-a"
    assert settings.uplink.password is not None
    assert settings.uplink.password.get_secret_value() == SECRET
    assert settings.uplink.ca_file == Path("/etc/ca.pem")  # from the .env file
    assert unknown_settings(environ, EdgeSettings) == []
    assert renamed_settings(environ, EdgeSettings) == [
        "EDGE_UPLINK_BROKER is now EDGE_UPLINK__URL: the earlier name still works; rename it",
        "EDGE_UPLINK_PASSWORD is now EDGE_UPLINK__PASSWORD: the earlier name still works; "
        "rename it",
        "EDGE_UPLINK_USERNAME is now EDGE_UPLINK__USERNAME: the earlier name still works; "
        "rename it",
    ]

    for name, value in {
        "COLLECTOR_BROKER": "mqtt://central:1883",
        "COLLECTOR_CLIENT_ID": "collector-2",
        "COLLECTOR_BROKER_USERNAME": "plantkpi-collector",
    }.items():
        monkeypatch.setenv(name, value)
    collector = CollectorSettings(registers=[Path("r.yaml")])
    assert collector.broker.url == "mqtt://central:1883"
    assert collector.client_id == "collector-2"
    assert collector.broker.username == "plantkpi-collector"


def test_a_setting_under_both_names_is_refused_naming_both(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_UPLINK_USERNAME", "edge-a")
    monkeypatch.setenv("EDGE_UPLINK__USERNAME", "edge-b")
    with pytest.raises(SettingsError, match="EDGE_UPLINK_USERNAME and EDGE_UPLINK__USERNAME"):
        EdgeSettings(_env_file=None, register_file=Path("r.yaml"), plant="plant-a")


def test_the_collector_broker_as_json_is_the_whole_link_not_its_earlier_name(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = '{"url": "mqtt://central:1884", "client_id": "c-1"}'
    monkeypatch.setenv("COLLECTOR_BROKER", link)
    monkeypatch.setenv("COLLECTOR_BROKER__USERNAME", "plantkpi-collector")
    settings = CollectorSettings(_env_file=None, registers=[Path("r.yaml")])
    assert (settings.broker.url, settings.client_id) == ("mqtt://central:1884", "c-1")
    assert settings.broker.username == "plantkpi-collector"
    assert renamed_settings({"COLLECTOR_BROKER": link}, CollectorSettings) == []


@pytest.mark.parametrize("settings", [CollectorSettings, EdgeSettings])
def test_every_setting_name_is_known(settings: type[CollectorSettings | EdgeSettings]) -> None:
    names = setting_names(settings)
    assert unknown_settings(dict.fromkeys(names, "x"), settings) == []


def test_a_value_that_is_not_json_names_its_variable_and_never_the_value() -> None:
    environ = {
        "COLLECTOR_REGISTERS": "[bad",
        "COLLECTOR_KPI__THRESHOLDS": '{"coverage_min": 0.9,',
        "COLLECTOR_API__TOKENS": f'["{SECRET}",',
        "COLLECTOR_BROKER": "mqtt://not-json-and-need-not-be",  # the URL's earlier name
        "COLLECTOR_INFLUX": '{"url": "http://influx:8086"}',
    }
    messages = bad_json_settings(environ, CollectorSettings)
    assert messages == [
        "COLLECTOR_API__TOKENS (setting api.tokens) is not valid JSON: "
        "Expecting value at line 1 column 21",
        "COLLECTOR_KPI__THRESHOLDS (setting kpi.thresholds) is not valid JSON: "
        "Expecting property name enclosed in double quotes at line 1 column 22",
        "COLLECTOR_REGISTERS (setting registers) is not valid JSON: "
        "Expecting value at line 1 column 2",
    ]
    assert not any(SECRET in message for message in messages)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No settings variable of the calling shell, no developer's .env (cwd is tmp_path)."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.upper().startswith(("COLLECTOR_", "EDGE_")):
            monkeypatch.delenv(key)
    return tmp_path


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COLLECTOR_REGISTERS", "[bad"),
        ("COLLECTOR_KPI__THRESHOLDS", "{...bad"),
        ("COLLECTOR_API__TOKENS", f'["{SECRET}", '),
    ],
)
def test_the_collector_settings_error_names_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    if variable != "COLLECTOR_REGISTERS":
        monkeypatch.setenv("COLLECTOR_REGISTERS", '["r.yaml"]')
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as failure:
        CollectorSettings()
    assert str(failure.value).startswith(f"{variable} (setting ")
    assert "is not valid JSON" in str(failure.value)
    assert SECRET not in str(failure.value)


def test_the_edge_settings_error_names_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_BROKER_PASSWORDS", f'{{"devices": "{SECRET}"')
    with pytest.raises(SettingsError) as failure:
        EdgeSettings(register_file=Path("r.yaml"), plant="p")
    assert str(failure.value).startswith("EDGE_BROKER_PASSWORDS (setting broker_passwords)")
    assert SECRET not in str(failure.value)


def test_a_bad_value_in_the_env_file_is_named_too(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        'COLLECTOR_REGISTERS=["r.yaml"]\nCOLLECTOR_KPI__THRESHOLDS={bad\n'
    )
    with pytest.raises(SettingsError, match=r"^COLLECTOR_KPI__THRESHOLDS \(setting kpi"):
        CollectorSettings()
    # An explicitly empty _env_file reads none: nothing is wrong then.
    assert CollectorSettings(_env_file=None, registers=[Path("r.yaml")]).kpi.window == 3600


def test_unknown_variables_are_logged_as_warnings(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("EDGE_BUFER_DIR", SECRET)
    (clean_env / ".env").write_text("EDGE_PLANTT=plant-a\n")
    log = logging.getLogger("test.settings")
    with caplog.at_level(logging.WARNING, logger="test.settings"):
        warn_unknown_settings(EdgeSettings, log)
    assert [r.getMessage() for r in caplog.records] == [
        "EDGE_BUFER_DIR is not a setting (did you mean EDGE_BUFFER_DIR?)",
        "EDGE_PLANTT is not a setting (did you mean EDGE_PLANT?)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize(
    ("command", "typo", "meant", "missing"),
    [
        (["collector", "run"], "COLLECTOR_REGISTRS", "COLLECTOR_REGISTERS", "registers"),
        (["edge", "run", "--register", "r.yaml"], "EDGE_PLANTT", "EDGE_PLANT", "plant"),
    ],
)
def test_start_up_warns_about_the_typo_before_the_error_it_causes(
    tmp_path: Path, command: list[str], typo: str, meant: str, missing: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("COLLECTOR_", "EDGE_"))}
    env |= {typo: SECRET, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    warning = f"WARNING {command[0]}.cli: {typo} is not a setting (did you mean {meant}?)"
    lines = result.stderr.splitlines()
    warned = next(i for i, line in enumerate(lines) if warning in line)
    failed = next(i for i, line in enumerate(lines) if "configuration error" in line)
    assert warned < failed and missing in "\n".join(lines[failed:])
    assert SECRET not in result.stderr
