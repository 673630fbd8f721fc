"""``plantkpi register diff``: what a register change does to each scope's denominator,
before it is deployed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from onboarding.cli import app
from tests import registers


def plant(plant_id: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return registers.plant(plant_id, registers.SOURCES, lines)


def write(folder: Path, name: str, plants: list[dict[str, Any]]) -> Path:
    return registers.write(folder, registers.document(plants), name)


def run(*args: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["register", "diff", *[str(a) for a in args]])
    return result.exit_code, result.stdout, result.stderr


def test_added_removed_rekeyed_moved_and_changed_signals_with_the_denominators(
    tmp_path: Path,
) -> None:
    p = registers.process
    old = write(
        tmp_path,
        "old.yaml",
        [
            plant("a", [registers.line("l1", [p("p1"), p("p2"), p("p3")])]),
            plant("b", [registers.line("l2", [p("p4")])]),
        ],
    )
    changed_signals = [
        registers.sig("state", "state", update="on_change"),
        registers.sig("speed", interval="2s", node="ns=2;s=speed2"),
        registers.sig("torque"),
    ]
    new = write(
        tmp_path,
        "new.yaml",
        [
            plant(
                "a",
                [
                    registers.line("l1", [p("p1", changed_signals), p("p2", key=False)]),
                    registers.line("l3", [p("p3")]),
                ],
            ),
            plant("b", [registers.line("l2", [p("p4"), p("p5"), p("p6", key=False)])]),
        ],
    )
    code, out, _ = run(old, new)
    assert code == 0
    assert out.splitlines() == [
        "added: p5 (b/l2, key)",
        "added: p6 (b/l2, not key)",
        "re-keyed: p2: key → not key",
        "moved: p3: a/l1 → a/l3",
        "signal: p1.torque added (parameter, source opc)",
        "signal: p1.speed: interval 1.0 → 2.0; node 'ns=2;s=speed' → 'ns=2;s=speed2'",
        "denominator line l1: 3 → 1 key processes (-2)",
        "denominator line l2: 1 → 2 key processes (+1)",
        "denominator line l3: 0 → 1 key processes (+1)",
        "denominator plant a: 3 → 2 key processes (-1)",
        "denominator plant b: 1 → 2 key processes (+1)",
    ]  # the enterprise keeps 4 key processes: no line for it


def test_the_same_register_changes_nothing_and_a_bad_one_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", [plant("a", [registers.line("l1", [registers.process()])])])
    code, out, _ = run(path, path)
    assert code == 0 and out.strip().endswith("no process or signal changed")
    broken = tmp_path / "broken.yaml"
    broken.write_text("enterprise: {id: e}\nplants: 3\n")
    code, _, err = run(path, broken)
    assert code == 2 and "broken.yaml" in err
