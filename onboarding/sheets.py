"""Equipment-ledger files as rows of text: XLSX (openpyxl) and CSV in UTF-8 or GBK, as
plants' ledgers come (Chinese headers and all).

A row is a mapping of header → cell text, with its number in the file (the header is row
1), so that every problem can name the row and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import openpyxl

ENCODINGS = ("utf-8-sig", "gbk")
"""Tried in order: UTF-8 (with or without the BOM Excel writes), then GBK (GB2312's
superset, what a Chinese Excel saves as "CSV")."""
MAX_ROWS = 100_000


class SheetError(ValueError):
    """A ledger file that cannot be read as rows; the message names the file."""


@dataclass(frozen=True)
class Row:
    number: int
    cells: dict[str, str]


def read_rows(path: Path, sheet: str | None = None) -> list[Row]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _xlsx(path, sheet)
    if suffix == ".csv":
        return _csv(path)
    raise SheetError(f"{path}: a ledger is .xlsx or .csv, not {suffix or 'no extension'}")


def write_rows(
    path: Path, headers: Sequence[str], rows: Sequence[Sequence[str]], kind: str | None = None
) -> None:
    """Write the rows as ``kind`` (``.xlsx`` or ``.csv``; default: the path's suffix)."""
    suffix = (kind or path.suffix).lower()
    if suffix == ".csv":
        # UTF-8 with a BOM: what Excel recognises as UTF-8 when it opens a CSV.
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(headers)
            writer.writerows(rows)
        return
    if suffix != ".xlsx":
        raise SheetError(f"{path}: a ledger is written as .xlsx or .csv, not {suffix}")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "ledger"
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    book.save(path)


def _xlsx(path: Path, name: str | None) -> list[Row]:
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, InvalidFileException…
        raise SheetError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    try:
        if name is not None and name not in book.sheetnames:
            raise SheetError(f"{path}: no sheet {name!r} (sheets: {', '.join(book.sheetnames)})")
        sheet = book[name] if name is not None else book.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header = next(values, None)
        if header is None:
            raise SheetError(f"{path}: the sheet {sheet.title!r} is empty")
        headers = [_text(h) for h in header]
        rows = []
        for number, cells in enumerate(values, start=2):
            if number > MAX_ROWS:
                raise SheetError(f"{path}: more than {MAX_ROWS:,} rows")
            texts = [_text(c) for c in cells]
            if any(texts):
                rows.append(Row(number, _cells(headers, texts)))
        return rows
    finally:
        book.close()


def _csv(path: Path) -> list[Row]:
    raw = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SheetError(f"{path}: neither UTF-8 nor GBK text")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise SheetError(f"{path}: empty")
    headers = [h.strip() for h in header]
    rows = []
    for number, cells in enumerate(reader, start=2):
        if number > MAX_ROWS:
            raise SheetError(f"{path}: more than {MAX_ROWS:,} rows")
        texts = [c.strip() for c in cells]
        if any(texts):
            rows.append(Row(number, _cells(headers, texts)))
    return rows


def _cells(headers: list[str], texts: list[str]) -> dict[str, str]:
    return {h: (texts[i] if i < len(texts) else "") for i, h in enumerate(headers) if h}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
