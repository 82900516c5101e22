"""Spreadsheets: .xlsx (openpyxl) and .csv; each sheet is a page, read as one table (tables.py) whose
first row is the header. A huge sheet is cut at MAX_ROWS rows, with a note saying how many there were.
(.ods is read in odf.py.)"""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from pathlib import Path

from . import LoadError, Loaded, Section, archive
from .tables import table_section
from .text import read_text

MAX_ROWS = 10_000  # rows read per sheet (about 1,000 passages); the rest is counted and noted
MAX_COLUMNS = 64


def value(v) -> str:
    """A cell as a person reads it: 3 not 3.0, dates without a midnight time."""
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime.datetime) and v.time() == datetime.time():
        return v.date().isoformat()
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    return str(v)


def sheet(rows, page: int, name: str | None, notes: list[str]) -> Section | None:
    """The first MAX_ROWS rows of an iterable of rows as the table of one page; the rest counted."""
    kept, total = [], 0
    for row in rows:
        total += 1
        if total <= MAX_ROWS:
            kept.append([value(v) for v in list(row)[:MAX_COLUMNS]])
    if total > MAX_ROWS:
        where = f"sheet '{name}'" if name else "the file"
        notes.append(f"{where} has {total:,} rows; only the first {MAX_ROWS:,} were read")
    return table_section(kept, page=page, heading=name)


def load_csv(path: Path) -> Loaded:
    text = read_text(path)
    try:
        dialect = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    notes: list[str] = []
    try:
        table = sheet(csv.reader(io.StringIO(text), dialect), 1, None, notes)
    except csv.Error as exc:
        raise LoadError(f"not a readable CSV file ({exc})") from None
    return Loaded([table] if table else [], pages=1, notes=notes)


def load_xlsx(path: Path) -> Loaded:
    import openpyxl

    archive.check(path, "Excel")
    try:
        book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise LoadError(f"not a valid .xlsx file ({type(exc).__name__})") from None
    sections, notes = [], []
    try:
        for i, ws in enumerate(book.worksheets, 1):
            table = sheet(ws.iter_rows(values_only=True), i, ws.title, notes)
            if table is not None:
                sections.append(table)
        pages = len(book.worksheets)
    finally:
        book.close()
    return Loaded(sections, pages=pages, notes=notes)
