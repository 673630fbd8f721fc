"""``plantkpi register check``: every error of a register at once, then warnings with
file and line for what loads but will not measure what its author means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from onboarding.cli import app
from tests import registers


def doc(lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    lines = lines or [registers.line("l1", [registers.process()])]
    return registers.document([registers.plant("pl", registers.SOURCES, lines)])


def check(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["register", "check", str(path), *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_clean_register_loads_with_a_summary_and_no_warning(tmp_path: Path) -> None:
    path = registers.write(tmp_path, doc())
    code, out, _ = check(path)
    assert code == 0
    assert out.strip().endswith("signals; 0 warnings"), out
    assert ": loads: 1 plants, 1 processes (1 key), 2 signals" in out


def test_every_error_is_listed_at_once_with_its_line(tmp_path: Path) -> None:
    signals = [
        registers.sig("state", "state", update="on_change", intervl="1s"),
        registers.sig("speed", role="paramter"),
    ]
    path = registers.write(
        tmp_path, doc([registers.line("l1", [registers.process("p1", signals)])])
    )
    code, _, err = check(path)
    assert code == 2
    text = path.read_text().splitlines()
    typo = next(n for n, row in enumerate(text, 1) if "intervl" in row)
    role = next(n for n, row in enumerate(text, 1) if "paramter" in row)
    assert f"register.yaml:{typo}: " in err and "intervl: unknown key" in err, err
    assert f"register.yaml:{role}: " in err and ".role: " in err, err


def test_warnings_name_the_process_the_interval_and_the_shared_address(tmp_path: Path) -> None:
    lonely = registers.process("lonely", [registers.sig("state", "state", update="on_change")])
    slow = registers.process(
        "slow",
        [
            registers.sig("state", "state", update="on_change", node="ns=2;s=slow.state"),
            registers.sig("speed", interval="30m"),
        ],
    )
    copied = registers.process(
        "copied",
        [
            registers.sig("state", "state", update="on_change", node="ns=2;s=copied.state"),
            registers.sig("speed", node="ns=2;s=speed"),  # slow's node: a copy-paste slip
        ],
    )
    path = registers.write(tmp_path, doc([registers.line("l1", [lonely, slow, copied])]))
    code, out, _ = check(path, "--window", "1h")
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3, out
    text = path.read_text().splitlines()

    def line_of(needle: str, after: int = 0) -> int:
        return next(n for n, row in enumerate(text, 1) if n > after and needle in row)

    assert warnings[0] == (
        f"warning: {path}:{line_of('id: lonely')}: plants[0].lines[0].processes[0]: key "
        "process lonely has no key parameter signal: its state alone decides whether it counts"
    )
    assert warnings[1].startswith(f"warning: {path}:{line_of('interval: 30m')}: ")
    assert warnings[1].endswith(
        "interval 1800 s: a sample holds 3 intervals (5400 s), longer than the KPI window "
        "(3600 s): a feed that stops is never seen"
    )
    copied_speed = line_of("id: speed", line_of("id: copied"))
    assert warnings[2] == (
        f"warning: {path}:{copied_speed}: plants[0].lines[0].processes[2].signals[1]: "
        "copied.speed is read from the same address of source opc as slow.speed"
    )
    assert check(path, "--strict")[0] == 1
    assert check(path, "--window", "3h")[1].count("warning: ") == 2


def test_a_bad_window_is_named(tmp_path: Path) -> None:
    path = registers.write(tmp_path, doc())
    code, _, err = check(path, "--window", "soon")
    assert code == 2 and "--window" in err


def test_a_packml_mode_read_as_numbers_without_the_servers_numbering_is_named(
    tmp_path: Path,
) -> None:
    def filler(process_id: str, source: str, **mode: Any) -> dict[str, Any]:
        return registers.process(
            process_id,
            [
                registers.sig("state", "state", update="on_change", source=source),
                registers.sig("speed", source=source),
                registers.sig(
                    "unit_mode",
                    "mode",
                    source=source,
                    update="on_change",
                    profile="PackMLUnitMode",
                    **mode,
                ),
            ],
        )

    processes = [
        filler("bare", "opc"),  # numbers from OPC UA, no numbering: warned
        filler("numbered", "opc2", numbering={"Production": 1, "Manual": 3}),
        filler("named", "dev"),  # an MQTT device sends the names
    ]
    path = registers.write(tmp_path, doc([registers.line("l1", processes)]))
    code, out, _ = check(path)
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, out
    profile_line = next(
        n for n, row in enumerate(path.read_text().splitlines(), 1) if "PackMLUnitMode" in row
    )
    assert warnings[0].startswith(f"warning: {path}:{profile_line}: "), warnings
    assert "bare.unit_mode: PackMLUnitMode fixes no numbers and opcua reports numbers" in out
