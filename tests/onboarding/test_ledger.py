"""``plantkpi register import`` / ``export``: an equipment ledger (XLSX or CSV, Chinese
headers, UTF-8 or GBK) into a register that loads, every bad row named at once with its row
and column, and the same sheet written back."""

from __future__ import annotations

import contextlib
import csv
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml
from typer.testing import CliRunner

from common.register_loader import load_register
from onboarding.cli import app

BASE: dict[str, Any] = {
    "version": "2026-12",
    "enterprise": {"id": "jinhua", "region": "Shanxi", "above_designated_size": True},
    "equipment_classes": {
        "cnc-lathe": {
            "industry": "discrete",
            "key": True,
            "signals": [
                {
                    "id": "state",
                    "role": "state",
                    "update": "on_change",
                    "node": "nsu=urn:a;s={machine}.State",
                },
                {"id": "spindle_speed", "role": "parameter", "node": "nsu=urn:a;s={machine}.S"},
            ],
        },
        "press": {
            "industry": "discrete",
            "key": True,
            "signals": [
                {"id": "state", "role": "state", "update": "on_change", "address": "{base}"},
                {"id": "force", "role": "parameter", "address": "{base+4}", "type": "float32"},
            ],
        },
    },
    "plants": [
        {
            "id": "plant-a",
            "sources": [
                {
                    "id": "opc",
                    "kind": "opcua",
                    "endpoint": "opc.tcp://10.0.0.1:4840",
                    "security": {"policy": "None", "mode": "None"},
                },
                {"id": "plc", "kind": "modbus", "endpoint": "modbus://10.0.0.2"},
            ],
        }
    ],
}
HEADERS = [
    "工厂",
    "产线",
    "工序编号",
    "工序名称",
    "关键工序",
    "行业类型",
    "设备类别",
    "数据源",
    "参数:machine",
    "参数:base",
    "计划停机开始",
    "计划停机结束",
    "停机原因",
]
ROWS = [
    [
        "plant-a",
        "a1",
        "a1-lathe-01",
        "1号车床",
        "是",
        "离散",
        "cnc-lathe",
        "opc",
        "L01",
        "",
        "",
        "",
        "",
    ],
    [
        "plant-a",
        "a1",
        "a1-lathe-02",
        "2号车床",
        "是",
        "",
        "cnc-lathe",
        "opc",
        "L02",
        "",
        "",
        "",
        "",
    ],
    [
        "plant-a",
        "a2",
        "a2-press-01",
        "1号压力机",
        "是",
        "离散",
        "press",
        "plc",
        "",
        "100",
        "2026-12-24 08:00",
        "2026-12-26 08:00",
        "检修",
    ],
    ["plant-a", "a2", "a2-manual", "人工打磨", "是", "离散", "", "", "", "", "", "", ""],
]


def write_xlsx(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_csv(path: Path, headers: list[str], rows: list[list[Any]], encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def base_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(BASE, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["register", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_an_xlsx_ledger_with_chinese_headers_becomes_a_register_that_loads(tmp_path: Path) -> None:
    ledger = write_xlsx(tmp_path / "台账.xlsx", HEADERS, ROWS)
    out = tmp_path / "register.yaml"
    code, stdout, stderr = run("import", ledger, "--base", base_file(tmp_path), "-o", out)
    assert code == 0, stderr
    assert "4 processes from 4 rows" in stdout
    register = load_register(out)
    signals = {(r.process.id, r.signal.id): r for r in register.signals()}
    assert signals[("a2-press-01", "force")].signal.binding.address == 104  # type: ignore[union-attr]
    assert signals[("a1-lathe-02", "state")].signal.binding.node == "nsu=urn:a;s=L02.State"  # type: ignore[union-attr]
    a2 = register.plant("plant-a").lines[1]
    assert a2.id == "a2" and a2.downtime[0].reason == "检修"
    assert a2.downtime[0].start.isoformat() == "2026-12-24T08:00:00+08:00"
    manual = a2.processes[1]
    assert (manual.id, manual.key, manual.signals) == ("a2-manual", True, ())  # counts, unread


def test_a_gbk_csv_and_a_utf8_csv_give_the_same_register(tmp_path: Path) -> None:
    outs = []
    for encoding in ("gbk", "utf-8-sig"):
        ledger = write_csv(tmp_path / f"ledger-{encoding}.csv", HEADERS, ROWS, encoding)
        out = tmp_path / f"register-{encoding}.yaml"
        code, _, stderr = run("import", ledger, "--base", base_file(tmp_path), "-o", out)
        assert code == 0, stderr
        outs.append(load_register(out).model)
    assert outs[0] == outs[1]


def test_every_bad_row_is_named_with_its_row_and_column_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    rows = [
        ROWS[0],
        [
            "plant-a",
            "a1",
            "a1-lathe-01",
            "again",
            "是",
            "离散",
            "cnc-lathe",
            "opc",
            "L09",
            "",
            "",
            "",
            "",
        ],
        ["plant-a", "a1", "a1-x", "x", "可能", "离散", "cnc-lathe", "opc", "L03", "", "", "", ""],
        ["plant-a", "a1", "a1-y", "y", "是", "机械", "cnc-lathe", "opc", "L04", "", "", "", ""],
        ["plant-a", "a1", "a1-z", "z", "是", "离散", "lathe", "opc", "L05", "", "", "", ""],
        ["plant-b", "b1", "b1-a", "a", "是", "离散", "cnc-lathe", "opc", "L06", "", "", "", ""],
        ["plant-a", "a2", "a2-p", "p", "是", "离散", "press", "plc", "", "", "", "", ""],
        ["plant-a", "a2", "a2-t", "t", "是", "离散", "press", "plc", "", "7", "明天", "", ""],
    ]
    ledger = write_xlsx(tmp_path / "ledger.xlsx", HEADERS, rows)
    out = tmp_path / "register.yaml"
    code, _, stderr = run("import", ledger, "--base", base_file(tmp_path), "-o", out)
    assert code == 2 and not out.exists()
    lines = [line.strip() for line in stderr.splitlines()[1:]]
    assert lines == [
        "ledger.xlsx row 3: process a1-lathe-01 is also on row 2",
        "ledger.xlsx row 4, column 关键工序: '可能' is not yes or no (是/否, yes/no, 1/0)",
        "ledger.xlsx row 5, column 行业类型: '机械' is not discrete or process (离散/流程)",
        "ledger.xlsx row 6, column 设备类别: no equipment class 'lathe' in the base register "
        "(classes: cnc-lathe, press)",
        "ledger.xlsx row 7, column 工厂: plant 'plant-b' is not in the base register "
        "(plants: plant-a)",
        "ledger.xlsx row 9, column 计划停机开始: '明天' is not a date and time (2026-12-01 08:00)",
    ], stderr
    # Once the rows are right, what the loader would refuse is told as rows too.
    ledger = write_xlsx(tmp_path / "ledger.xlsx", HEADERS, [ROWS[0], rows[6]])
    code, _, stderr = run("import", ledger, "--base", base_file(tmp_path), "-o", out)
    assert code == 2
    assert (
        "ledger.xlsx row 3 (process a2-p): equipment_classes.press.signals[0].address: "
        "class press, for process a2-p (ledger.xlsx): no parameter 'base' for {base}"
    ) in stderr


def test_a_missing_column_is_named_in_both_languages(tmp_path: Path) -> None:
    ledger = write_csv(tmp_path / "l.csv", ["plant", "line", "name"], [["a", "b", "c"]], "utf-8")
    code, _, stderr = run(
        "import", ledger, "--base", base_file(tmp_path), "-o", tmp_path / "o.yaml"
    )
    assert code == 2 and "no column process (工序编号) in the header row" in stderr


def test_export_then_import_gives_the_register_again(tmp_path: Path) -> None:
    ledger = write_xlsx(tmp_path / "ledger.xlsx", HEADERS, ROWS)
    first = tmp_path / "first.yaml"
    assert run("import", ledger, "--base", base_file(tmp_path), "-o", first)[0] == 0
    for name, chinese in (("back.xlsx", "--chinese"), ("back.csv", "--no-chinese")):
        back = tmp_path / name
        code, stdout, stderr = run("export", first, "-o", back, chinese)
        assert code == 0, stderr
        assert f"{back}: 4 rows" in stdout
        again = tmp_path / f"again-{name}.yaml"
        code, _, stderr = run("import", back, "--base", first, "-o", again)
        assert code == 0, stderr
        assert load_register(again).model == load_register(first).model
    header = next(csv.reader((tmp_path / "back.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert header[:4] == ["plant", "line", "process", "name"] and "param:machine" in header


def test_leading_zeros_stay_an_unknown_source_is_a_row_problem_and_overrides_survive(
    tmp_path: Path,
) -> None:
    rows = [
        [
            "plant-a",
            "a1",
            "a1-lathe-01",
            "1号车床",
            "是",
            "离散",
            "cnc-lathe",
            "opc",
            "01",
            "",
            "",
            "",
            "",
        ],
    ]
    ledger = write_xlsx(tmp_path / "ledger.xlsx", HEADERS, rows)
    out = tmp_path / "first.yaml"
    assert run("import", ledger, "--base", base_file(tmp_path), "-o", out)[0] == 0
    node = load_register(out).signals()[0].signal.binding.node  # type: ignore[union-attr]
    assert node == "nsu=urn:a;s=01.State"  # the machine called 01 keeps its zero
    # An override written in the register (not the ledger) survives export and import.
    data = yaml.safe_load(out.read_text())
    data["plants"][0]["lines"][0]["processes"][0]["signals"] = [
        {"id": "spindle_speed", "interval": "500ms"}
    ]
    out.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    back = tmp_path / "back.xlsx"
    code, stdout, _ = run("export", out, "-o", back)
    assert code == 0 and "overrides of its class's signals are written in the register" in stdout
    again = tmp_path / "again.yaml"
    assert run("import", back, "--base", out, "-o", again)[0] == 0
    assert load_register(again).model == load_register(out).model
    # A source its plant does not have is named with its row and column.
    rows[0][7] = "nope"
    ledger = write_xlsx(tmp_path / "ledger.xlsx", HEADERS, rows)
    code, _, stderr = run("import", ledger, "--base", base_file(tmp_path), "-o", again)
    assert code == 2
    assert "ledger.xlsx row 2, column 数据源: source 'nope' is not one of its plant's" in stderr


def test_a_damaged_workbook_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    ledger = tmp_path / "台账.xlsx"
    ledger.write_bytes(b"PK\x03\x04" + bytes(200))  # a zip header, then nothing
    out = tmp_path / "register.yaml"
    code, _, stderr = run("import", ledger, "--base", base_file(tmp_path), "-o", out)
    assert code == 2 and "台账.xlsx: not a readable .xlsx workbook" in stderr
    assert not out.exists()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of our own, filled (the tests run as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def test_on_a_full_disk_the_register_and_the_ledger_are_left_as_they_were(
    tmp_path: Path, full_disk: Path
) -> None:
    ledger = write_xlsx(tmp_path / "ledger.xlsx", HEADERS, ROWS)
    out = full_disk / "register.yaml"
    assert run("import", ledger, "--base", base_file(tmp_path), "-o", out)[0] == 0
    before = out.read_bytes()
    back = full_disk / "ledger.csv"
    back.write_text("the plant's ledger\n", encoding="utf-8")
    with contextlib.suppress(OSError):  # fill what is left
        (full_disk / "filler").write_bytes(bytes(1024 * 1024))
    code, _, stderr = run("import", ledger, "--base", base_file(tmp_path), "-o", out)
    assert code == 1 and f"cannot write {out}: No space left on device" in stderr
    assert out.read_bytes() == before
    code, _, stderr = run("export", out, "-o", back)
    assert code == 1 and "No space left on device; it is as it was" in stderr
    assert back.read_text(encoding="utf-8") == "the plant's ledger\n"
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "ledger.csv", "register.yaml"]
