"""Equipment ledger (设备台账) ↔ register (pure): one row per process — plant, line,
process id and name, key, industry, equipment class, the class's parameters, planned
downtime — and a base register for what a ledger does not hold (the enterprise, the
equipment classes, each plant's sources).

Import checks every row and reports every problem at once, each with its row and column;
a register that would not load is reported the same way (the loader's error on a process
is told as the row it came from). Export writes the same sheet back from a register file,
so a plant keeps its ledger as the source of truth: export then import gives the register
again. Headers may be English or Chinese (``docs/onboarding.md`` lists them).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.protocols import BY_KIND
from common.register import Register
from common.register_classes import ClassError
from common.register_classes import expand as expand_classes
from common.yaml_source import YamlDocument, render_loc
from onboarding.sheets import Row

COLUMNS: dict[str, tuple[str, ...]] = {
    "plant": ("plant", "工厂", "厂区"),
    "line": ("line", "产线", "生产线"),
    "line_name": ("line name", "产线名称"),
    "process": ("process", "工序编号", "工序"),
    "name": ("name", "工序名称"),
    "key": ("key", "关键工序"),
    "industry": ("industry", "行业类型"),
    "class": ("class", "设备类别"),
    "source": ("source", "数据源"),
    "equipment": ("equipment", "设备"),
    "downtime_start": ("downtime start", "计划停机开始"),
    "downtime_end": ("downtime end", "计划停机结束"),
    "downtime_reason": ("downtime reason", "停机原因"),
}
"""Column → its headers (English, then Chinese); matched without regard to case."""
REQUIRED = ("plant", "line", "process", "name")
PARAM_PREFIXES = ("param:", "参数:", "参数：")
"""A column ``param:machine`` (``参数:machine``) gives the class parameter ``machine``."""
YES = {"yes", "y", "true", "1", "是", "关键", "√", "✓"}
NO = {"no", "n", "false", "0", "否", "非关键", "×", "✗"}
INDUSTRIES = {"discrete": "discrete", "离散": "discrete", "process": "process", "流程": "process"}
CHINESE_HEADERS = {column: names[1] for column, names in COLUMNS.items()}


@dataclass
class Imported:
    document: dict[str, Any]
    """The register file's data: the base's enterprise, classes and sources, the ledger's
    lines and processes (instances of their classes, not expanded)."""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def import_ledger(
    rows: Sequence[Row], base: dict[str, Any], label: str, timezone: dt.tzinfo
) -> Imported:
    result = Imported(copy.deepcopy(base))
    problems = result.problems
    headers = {h for row in rows for h in row.cells}
    columns = _columns(headers, label, problems)
    if problems:
        return result
    classes = base.get("equipment_classes") or {}
    plants = {p.get("id"): p for p in result.document.get("plants", []) if isinstance(p, dict)}
    base_processes = _processes(base)
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    seen: dict[str, int] = {}
    row_of: dict[tuple[str, str, str], int] = {}
    for row in rows:
        where = f"{label} row {row.number}"
        cell = {column: row.cells.get(header, "").strip() for column, header in columns.items()}
        missing = [COLUMNS[c][0] for c in REQUIRED if not cell.get(c) and c != "process"]
        plant_id, line_id = cell.get("plant", ""), cell.get("line", "")
        if not cell.get("process"):
            _line_row(cell, where, columns, plants, lines, timezone, problems)
            continue
        pid = cell["process"]
        if missing:
            problems.append(f"{where} (process {pid}): empty {', '.join(missing)}")
            continue
        if pid in seen:
            problems.append(f"{where}: process {pid} is also on row {seen[pid]}")
            continue
        seen[pid] = row.number
        if plant_id not in plants:
            problems.append(
                f"{where}, column {_header(columns, 'plant')}: plant {plant_id!r} is not in the "
                f"base register (plants: {', '.join(map(str, plants)) or 'none'})"
            )
            continue
        sources = {
            str(source.get("id"))
            for source in plants[plant_id].get("sources", []) or []
            if isinstance(source, dict)
        }
        process = _process(cell, row, where, columns, classes, base_processes, sources, problems)
        if process is None:
            continue
        line = lines.setdefault((plant_id, line_id), {"id": line_id, "processes": []})
        if cell.get("line_name"):
            line["name"] = cell["line_name"]
        _downtime(cell, line, where, columns, timezone, problems)
        line["processes"].append(process)
        row_of[(plant_id, line_id, pid)] = row.number
    for (plant_id, _), line in lines.items():
        plant = plants.get(plant_id)
        if plant is not None:
            plant.setdefault("_ledger_lines", []).append(line)
    for plant in plants.values():
        if "_ledger_lines" in plant:
            plant["lines"] = plant.pop("_ledger_lines")
    if not problems:
        problems += _load_problems(result.document, label, row_of)
    return result


def _line_row(
    cell: dict[str, str],
    where: str,
    columns: dict[str, str],
    plants: dict[Any, dict[str, Any]],
    lines: dict[tuple[str, str], dict[str, Any]],
    timezone: dt.tzinfo,
    problems: list[str],
) -> None:
    """A row without a process: a planned downtime (and name) of its line, or a mistake."""
    plant_id, line_id = cell.get("plant", ""), cell.get("line", "")
    if not (plant_id and line_id and cell.get("downtime_start")):
        problems.append(f"{where}: no process id ({_header(columns, 'process')})")
        return
    if plant_id not in plants:
        problems.append(
            f"{where}, column {_header(columns, 'plant')}: plant {plant_id!r} is not in the "
            "base register"
        )
        return
    line = lines.setdefault((plant_id, line_id), {"id": line_id, "processes": []})
    if cell.get("line_name"):
        line["name"] = cell["line_name"]
    _downtime(cell, line, where, columns, timezone, problems)


def _process(
    cell: dict[str, str],
    row: Row,
    where: str,
    columns: dict[str, str],
    classes: dict[str, Any],
    base_processes: dict[str, dict[str, Any]],
    sources: set[str],
    problems: list[str],
) -> dict[str, Any] | None:
    """The register entry of one row's process; None when its class is unknown."""
    pid = cell["process"]
    process: dict[str, Any] = {"id": pid, "name": cell["name"]}
    if cell.get("key"):
        key = _yes_no(cell["key"])
        if key is None:
            problems.append(
                f"{where}, column {_header(columns, 'key')}: {cell['key']!r} is not yes or no "
                "(是/否, yes/no, 1/0)"
            )
        else:
            process["key"] = key
    if cell.get("industry"):
        industry = INDUSTRIES.get(cell["industry"].lower())
        if industry is None:
            problems.append(
                f"{where}, column {_header(columns, 'industry')}: {cell['industry']!r} is "
                "not discrete or process (离散/流程)"
            )
        else:
            process["industry"] = industry
    if cell.get("equipment"):
        process["equipment"] = cell["equipment"]
    params = {
        name: _param(value)
        for header, value in row.cells.items()
        if (name := _param_name(header)) and value.strip()
    }
    if cell.get("class"):
        if cell["class"] not in classes:
            problems.append(
                f"{where}, column {_header(columns, 'class')}: no equipment class "
                f"{cell['class']!r} in the base register (classes: "
                f"{', '.join(sorted(classes)) or 'none'})"
            )
            return None
        process["class"] = cell["class"]
        if cell.get("source"):
            if cell["source"] not in sources:
                problems.append(
                    f"{where}, column {_header(columns, 'source')}: source "
                    f"{cell['source']!r} is not one of its plant's in the base register "
                    f"(sources: {', '.join(sorted(sources)) or 'none'})"
                )
            process["source"] = cell["source"]
        if params:
            process["params"] = params
        kept = base_processes.get(pid)
        if kept is not None and kept.get("class") == cell["class"] and kept.get("signals"):
            # The instance's signal overrides live in the register, not the ledger.
            process["signals"] = copy.deepcopy(kept["signals"])
    else:
        kept = base_processes.get(pid)
        if kept is not None and "signals" in kept and "class" not in kept:
            process["signals"] = copy.deepcopy(kept["signals"])
        elif params or cell.get("source"):
            problems.append(
                f"{where}: parameters or a source without an equipment class "
                f"({_header(columns, 'class')})"
            )
    return process


def export_ledger(
    data: dict[str, Any], chinese: bool
) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, rows and warnings for a register file's data (not expanded: classes and
    parameters stay as written)."""
    param_names = sorted(
        {
            str(name)
            for process in _processes(data).values()
            for name in (process.get("params") or {})
        }
    )
    columns = [c for c in COLUMNS if c != "line_name"] + ["line_name"]
    headers = [CHINESE_HEADERS[c] if chinese else COLUMNS[c][0] for c in columns]
    headers += [("参数:" if chinese else "param:") + name for name in param_names]
    rows: list[list[str]] = []
    warnings: list[str] = []
    for plant in data.get("plants", []):
        for line in plant.get("lines", []) or []:
            downtime = list(line.get("downtime", []) or [])
            processes = list(line.get("processes", []) or [])
            for index in range(max(len(processes), len(downtime))):
                process = processes[index] if index < len(processes) else {}
                stop = downtime[index] if index < len(downtime) else {}
                values = {
                    "plant": plant.get("id", ""),
                    "line": line.get("id", ""),
                    "line_name": line.get("name", "") if index == 0 else "",
                    "process": process.get("id", ""),
                    "name": process.get("name", ""),
                    "key": "" if "key" not in process else ("yes" if process["key"] else "no"),
                    "industry": process.get("industry", ""),
                    "class": process.get("class", ""),
                    "source": process.get("source", ""),
                    "equipment": process.get("equipment", ""),
                    "downtime_start": _time_text(stop.get("start")),
                    "downtime_end": _time_text(stop.get("end")),
                    "downtime_reason": stop.get("reason", ""),
                }
                if process and process.get("signals"):
                    what = "overrides of its class's" if "class" in process else "its"
                    warnings.append(
                        f"process {process.get('id')}: {what} signals are written in the "
                        "register, not the ledger (an import with this register as --base "
                        "keeps them)"
                    )
                params = process.get("params") or {}
                rows.append(
                    [str(values[c]) for c in columns]
                    + [str(params.get(name, "")) for name in param_names]
                )
    return headers, rows, warnings


def _columns(headers: Iterable[str], label: str, problems: list[str]) -> dict[str, str]:
    by_name = {h.strip().lower(): h for h in headers}
    found: dict[str, str] = {}
    for column, names in COLUMNS.items():
        for name in names:
            if name.lower() in by_name:
                found[column] = by_name[name.lower()]
                break
    missing = [f"{COLUMNS[c][0]} ({COLUMNS[c][1]})" for c in REQUIRED if c not in found]
    if missing:
        problems.append(f"{label}: no column {', '.join(missing)} in the header row")
    return found


def _header(columns: dict[str, str], column: str) -> str:
    return columns.get(column, COLUMNS[column][0])


def _yes_no(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in YES:
        return True
    if lowered in NO:
        return False
    return None


def _param_name(header: str) -> str | None:
    lowered = header.strip()
    for prefix in PARAM_PREFIXES:
        if lowered.lower().startswith(prefix):
            return lowered[len(prefix) :].strip() or None
    return None


_WHOLE = re.compile(r"^(0|-?[1-9][0-9]{0,17})$")


def _param(text: str) -> str | int:
    """A whole number written as one (``100``, ``-4``) is a number; anything else, ``01``
    included, stays text (a machine called ``01`` keeps its zero)."""
    value = text.strip()
    return int(value) if _WHOLE.match(value) else value


def _downtime(
    cell: dict[str, str],
    line: dict[str, Any],
    where: str,
    columns: dict[str, str],
    timezone: dt.tzinfo,
    problems: list[str],
) -> None:
    start, end = cell.get("downtime_start", ""), cell.get("downtime_end", "")
    if not start and not end:
        return
    times = []
    for column, text in (("downtime_start", start), ("downtime_end", end)):
        try:
            value = dt.datetime.fromisoformat(text.replace("/", "-"))
        except ValueError:
            problems.append(
                f"{where}, column {_header(columns, column)}: {text!r} is not a date and time "
                "(2026-12-01 08:00)"
            )
            return
        times.append(value if value.tzinfo else value.replace(tzinfo=timezone))
    entry: dict[str, Any] = {"start": times[0].isoformat(), "end": times[1].isoformat()}
    if cell.get("downtime_reason"):
        entry["reason"] = cell["downtime_reason"]
    if entry not in line.setdefault("downtime", []):
        line["downtime"].append(entry)


def _time_text(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def _processes(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(process.get("id")): process
        for plant in data.get("plants", []) or []
        if isinstance(plant, dict)
        for line in plant.get("lines", []) or []
        if isinstance(line, dict)
        for process in line.get("processes", []) or []
        if isinstance(process, dict)
    }


def _load_problems(
    document: dict[str, Any], label: str, row_of: dict[tuple[str, str, str], int]
) -> list[str]:
    """The loader's verdict on the imported register, each error told as its row."""
    where_of: dict[tuple[int, int, int], str] = {}
    for p, plant in enumerate(document.get("plants", [])):
        for li, line in enumerate(plant.get("lines", []) or []):
            for pi, process in enumerate(line.get("processes", []) or []):
                row = row_of.get((plant.get("id"), line.get("id"), process.get("id")))
                if row is not None:
                    where_of[(p, li, pi)] = f"{label} row {row} (process {process.get('id')})"
    problems = []
    # Classes are expanded process by process, so that every row's problem is reported.
    for (p, li, pi), where in where_of.items():
        plant = document["plants"][p]
        single = {
            **{k: v for k, v in document.items() if k != "plants"},
            "plants": [
                {
                    **plant,
                    "lines": [
                        {**plant["lines"][li], "processes": [plant["lines"][li]["processes"][pi]]}
                    ],
                }
            ],
        }
        try:
            expand_classes(YamlDocument(Path(label), single, {}))
        except ClassError as exc:
            problems.append(f"{where}: {str(exc).split(': ', 1)[-1]}")
    if problems:
        return problems
    try:
        data, _ = expand_classes(YamlDocument(Path(label), document, {}))
    except ClassError as exc:  # a process of the base the ledger leaves as it is
        return [f"{label} (the base register's processes): {exc}"]
    try:
        Register.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if part not in ("binding", *BY_KIND))
            reason = error["msg"].removeprefix("Value error, ")
            key = (loc[1], loc[3], loc[5]) if len(loc) >= 6 and loc[0] == "plants" else None
            if key is not None and key in where_of:
                problems.append(f"{where_of[key]}: {render_loc(loc[6:]) or 'process'}: {reason}")
            else:
                problems.append(f"{label}: {render_loc(loc) or '(register)'}: {reason}")
    return problems
