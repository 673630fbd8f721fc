"""Time of ``plantkpi register import`` for a large equipment ledger.

    .venv/bin/python bench/ledger_import.py [--rows 5000] [--runs 3] [--out FILE]

Writes an XLSX ledger of ``--rows`` processes (five equipment classes, their parameters,
Chinese headers) and a base register, then times the import as the command runs it —
reading the workbook, building and checking every row, expanding the classes and loading
the result — and, apart, the load of the register it wrote. Medians of ``--runs``. Writes
the "Equipment ledger import" section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.register_classes import documents  # noqa: E402
from bench.report import machine_description, replace_section  # noqa: E402
from common.register_loader import load_register  # noqa: E402
from onboarding.ledger import export_ledger, import_ledger  # noqa: E402
from onboarding.sheets import read_rows, write_rows  # noqa: E402

SECTION = "Equipment ledger import"


def prepare(rows: int, folder: Path) -> tuple[Path, dict[str, Any]]:
    """A ledger of ``rows`` processes and its base register (the class-based plant of
    bench/register_classes.py, exported as a plant keeps it)."""
    _, with_classes = documents(rows)
    headers, table, _ = export_ledger(with_classes, chinese=True)
    ledger = folder / "台账.xlsx"
    write_rows(ledger, headers, table)
    base = {k: v for k, v in with_classes.items() if k != "plants"}
    base["plants"] = [{"id": p["id"], "sources": p["sources"]} for p in with_classes["plants"]]
    return ledger, base


def run_once(ledger: Path, base: dict[str, Any], out: Path) -> tuple[float, float]:
    started = time.perf_counter()
    result = import_ledger(read_rows(ledger), base, ledger.name, dt.timezone(dt.timedelta(hours=8)))
    if result.problems:
        raise SystemExit("\n".join(result.problems[:10]))
    out.write_text(yaml.safe_dump(result.document, sort_keys=False, allow_unicode=True))
    imported = time.perf_counter() - started
    started = time.perf_counter()
    load_register(out)
    return imported, time.perf_counter() - started


def measure(rows: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        ledger, base = prepare(rows, Path(tmp))
        times = [run_once(ledger, base, Path(tmp) / "register.yaml") for _ in range(runs)]
        return {
            "rows": rows,
            "bytes": ledger.stat().st_size,
            "import_s": statistics.median(t[0] for t in times),
            "load_s": statistics.median(t[1] for t in times),
        }


def render(result: dict[str, Any], command: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "\n".join(
            [
                f"Measured {when} with `{command}`.",
                "",
                *machine_description(),
                "",
                "| ledger rows (processes) | XLSX bytes | import: read, check, expand, load | "
                "loading the written register |",
                "|---|---|---|---|",
                f"| {result['rows']:,} | {result['bytes']:,} | {result['import_s']:.2f} s | "
                f"{result['load_s']:.2f} s |",
                "",
                "The ledger has Chinese headers and five equipment classes (OPC UA, Modbus, S7, "
                "MQTT); the import checks every row and expands every process's class once on "
                "its own (so each row's problem is reported) before the whole register is "
                "validated.",
            ]
        )
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = measure(args.rows, args.runs)
    command = "python bench/ledger_import.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    section = render(result, command.strip())
    print(section)
    if args.out:
        replace_section(args.out, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
