"""The generated mosquitto ACL: least privilege per edge, and the example in deploy/ is what
the command prints for the demo register."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from collector.acl import AclOptions, generate_acl
from collector.cli import service_app
from common.register_loader import load_register

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "examples" / "demo" / "register.yaml"
EXAMPLE = ROOT / "deploy" / "mosquitto" / "acl.example"


def rules(text: str) -> dict[str, list[str]]:
    by_user: dict[str, list[str]] = {}
    user = ""
    for line in text.splitlines():
        if line.startswith("user "):
            user = line.removeprefix("user ")
            by_user[user] = []
        elif line.startswith("topic "):
            by_user[user].append(line)
    return by_user


def test_example_acl_is_what_the_command_prints_for_the_demo_register() -> None:
    result = CliRunner().invoke(service_app, ["acl", "--register", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert result.stdout == EXAMPLE.read_text(), (
        "deploy/mosquitto/acl.example is stale: regenerate it with "
        "`plantkpi-collector acl --register examples/demo/register.yaml > deploy/mosquitto/acl.example`"
    )


def test_each_edge_may_write_only_its_own_topics_and_the_collector_only_read() -> None:
    by_user = rules(generate_acl([load_register(DEMO)]))
    assert set(by_user) == {"plantkpi-collector", "edge-plant-a", "edge-plant-b"}
    base = "topic write plantkpi/v1/jinhua-machinery/plant-a/edge-plant-a"
    assert by_user["edge-plant-a"] == [f"{base}/samples", f"{base}/state", f"{base}/health"]
    collector = by_user["plantkpi-collector"]
    writes = [rule for rule in collector if not rule.startswith("topic read ")]
    assert writes == ["topic write plantkpi/deadletter/#"]
    assert all("#" not in rule and "+" not in rule for rule in by_user["edge-plant-b"])


def test_user_and_edge_id_patterns() -> None:
    text = generate_acl(
        [load_register(DEMO)],
        AclOptions(edge_id_pattern="{plant}-gw", edge_user_pattern="{enterprise}.{edge}"),
    )
    assert "user jinhua-machinery.plant-b-gw\n" in text
    assert "topic write plantkpi/v1/jinhua-machinery/plant-b/plant-b-gw/state\n" in text


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (AclOptions(edge_user_pattern="{site}"), r"plant plant-a: pattern '\{site\}'"),
        (AclOptions(edge_user_pattern="edge"), "user 'edge' is already the edge of"),
        (AclOptions(edge_id_pattern="{plant}/x"), r"edge id: 'plant-a/x' cannot stand in an ACL"),
        (AclOptions(edge_user_pattern="plantkpi-collector"), "is already the collector"),
    ],
)
def test_unusable_patterns_name_the_register_and_plant(options: AclOptions, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        generate_acl([load_register(DEMO)], options)


def test_command_reports_a_bad_pattern_and_exits_2() -> None:
    result = CliRunner().invoke(
        service_app, ["acl", "--register", str(DEMO), "--edge-user-pattern", "{site}"]
    )
    assert result.exit_code == 2
    assert "plantkpi-collector acl:" in result.output and "{site}" in result.output
