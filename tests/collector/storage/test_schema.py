"""The storage schema is declared once (``collector/storage/schema.py``): every line the
collector writes keeps to it, and docs/schema.md describes exactly it. No server."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from collector.kpi import EDGE_SOURCE, SourceEvent, aggregate, evaluate
from collector.kpi.partials import ProcessPartial, SignalPartial
from collector.kpi.service import KpiResult, result_lines
from collector.kpi.stored_partials import partial_line
from collector.storage.lineprotocol import (
    SampleValue,
    StoredLiveness,
    StoredSample,
    liveness_line,
    reconfirm_line,
    replica_line,
    sample_line,
    watermark_line,
)
from collector.storage.schema import BY_NAME, MEASUREMENTS, FieldType, Measurement
from common.quality import GOOD
from tests.collector.kpi.kpi_testkit import DEFAULTS, at, window
from tests.registers import healthy_signals, process, register, sig

DOCS = Path(__file__).parents[3] / "docs" / "schema.md"
S = 1_000_000_000


# -- what the writers write -----------------------------------------------------------------


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped, quoted = [], "", False, False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == '"':
            current += char
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _field_type(raw: str) -> FieldType:
    if raw.startswith('"'):
        return "string"
    if raw in ("true", "false"):
        return "boolean"
    if raw.endswith("i"):
        return "integer"
    float(raw)
    return "float"


def parse_line(line: str) -> tuple[str, set[str], dict[str, FieldType]]:
    """(measurement, tag keys, field key → type) of one line of line protocol."""
    series, fields, _time = _split_unescaped(line, " ")
    name, *tags = _split_unescaped(series, ",")
    field_types = {
        key: _field_type(value)
        for key, _, value in (pair.partition("=") for pair in _split_unescaped(fields, ","))
    }
    return name, {tag.partition("=")[0] for tag in tags}, field_types


def written_lines() -> list[str]:
    """At least one line of every measurement, with every optional field some line has."""

    def sample(value: SampleValue, server: int | None) -> StoredSample:
        return StoredSample(
            "ent", "pl", "l1", "p1", "speed", at(0), value, GOOD, at(5), server, "e", 7
        )

    lines = [sample_line(sample(v, at(1))) for v in (1.5, True, "RUNNING")]
    lines.append(sample_line(sample(None, None)))
    lines.append(sample_line(replace(sample(2.5, None), backfill=True)))
    reconfirm = reconfirm_line(sample(1.5, None))
    assert reconfirm is not None
    lines.append(reconfirm)
    lines.append(liveness_line(StoredLiveness("ent", "pl", "opc", at(0), False, "lost", "e")))
    lines.append(
        liveness_line(
            StoredLiveness("ent", "pl", EDGE_SOURCE, at(0), True, "birth", "e", boot=at(-9), link=2)
        )
    )
    lines.append(watermark_line("ent", "pl", "e", at(0), at(-9), 3))
    lines.append(replica_line(0, 2, at(0)))
    signal = SignalPartial(60, 0, 0, 0, 60, 0, 0, 1, False, 0)
    lines.append(partial_line("ent", "pl", "p1", at(0), ProcessPartial((signal,), 5), "d", "{}"))
    with_mode = [*healthy_signals(), sig("mode", role="mode", update="on_change")]
    reg = register([process(), process("p2", with_mode)], enterprise="ent")
    win = window(0, 100)
    will = SourceEvent(at(40), False, "uplink link 1 lost (Last Will)", at(-3600), 1)
    for watermark in (at(40), at(200)):  # provisional (no rate), then final
        live = evaluate(reg, win, {}, {("pl", EDGE_SOURCE): [will]}, DEFAULTS, {"pl": watermark})
        lines += result_lines(KpiResult(win, 0, (live,), tuple(aggregate([live]))))
    return lines


def test_every_line_written_keeps_to_the_declared_schema() -> None:
    seen: dict[str, set[str]] = {}
    for line in written_lines():
        name, tags, fields = parse_line(line)
        declared = BY_NAME.get(name)
        assert declared is not None, f"undeclared measurement {name!r}: {line}"
        assert tags <= set(declared.tags), f"{name}: undeclared tags {tags - set(declared.tags)}"
        for key, kind in fields.items():
            assert declared.fields.get(key) == kind, f"{name}.{key} written as {kind}: {line}"
        seen.setdefault(name, set()).update(fields)
    assert set(seen) == set(BY_NAME), "a measurement was not exercised"
    assert all(seen[m.name] == set(m.fields) for m in MEASUREMENTS), "a field never written"


# -- what the documentation says --------------------------------------------------------------

_NAME = re.compile(r"`([a-z_]+)`")
_TYPES = {"int": "integer", "bool": "boolean"}


def documented() -> dict[str, tuple[set[str], dict[str, str]]]:
    """Per ``## `measurement``` section of docs/schema.md: its tags, its fields → type."""
    out: dict[str, tuple[set[str], dict[str, str]]] = {}
    current: tuple[set[str], dict[str, str]] | None = None
    header: list[str] = []
    for line in DOCS.read_text().splitlines():
        heading = re.fullmatch(r"## `([a-z_]+)`", line)
        if heading:
            current = out[heading.group(1)] = (set(), {})
            header = []
            continue
        if line.startswith("## "):
            current = None
        if current is None or not line.startswith("|") or line.startswith("|---"):
            if not line.startswith("|"):
                header = []
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not header:
            header = cells
            continue
        tags, fields = current
        if header[0] == "":  # | kind | name | type | meaning |
            kind, names, of = cells[0], _NAME.findall(cells[1]), cells[2]
        else:  # | tag | meaning |  or  | field | type | meaning |
            kind, names = header[0], _NAME.findall(cells[0])
            of = cells[1] if kind == "field" else ""
        if kind == "tag":
            tags.update(names)
        elif kind == "field":
            fields.update(dict.fromkeys(names, _TYPES.get(of, of)))
    return out


def test_the_documented_measurements_are_the_declared_ones() -> None:
    assert set(documented()) == {m.name for m in MEASUREMENTS}


@pytest.mark.parametrize("measurement", MEASUREMENTS, ids=lambda m: m.name)
def test_docs_describe_each_measurement_exactly(measurement: Measurement) -> None:
    tags, fields = documented()[measurement.name]
    assert tags == set(measurement.tags)
    assert fields == dict(measurement.fields)
