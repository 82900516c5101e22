"""OpenDocument .odt (text) and .ods (spreadsheet), read from the archive's content.xml with lxml.

.odt: paragraphs split at headings (text:h), lists, and tables (tables.py). .ods: each sheet is a
page, one table, capped like any sheet (sheets.py). Repeated rows and cells (an .ods file may say
"this empty row, a million times") are expanded only where they hold something.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from . import LoadError, Loaded, archive
from .sheets import MAX_COLUMNS, MAX_ROWS, sheet
from .tables import Blocks

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"


def _content(path: Path, kind: str):
    archive.check(path, kind)
    try:
        with zipfile.ZipFile(path) as z:
            data = archive.read_member(z, "content.xml")
    except zipfile.BadZipFile:
        raise LoadError(f"not a valid {path.suffix.lower()} file (not a readable zip archive)") from None
    return archive.parse_xml(data, f"{path.suffix.lower()} file", "content.xml")


def _text(element) -> str:
    """An element's text, with ODF's spaces, tabs and line breaks."""
    out = []
    for node in element.iter():
        if node is not element and node.tag in (TEXT + "s", TEXT + "tab"):
            out.append(" ")
        elif node.tag == TEXT + "line-break":
            out.append("\n")
        if node.text and node.tag not in (TEXT + "note",):
            out.append(node.text)
        if node is not element and node.tail:
            out.append(node.tail)
    return "".join(out)


def _repeat(element, attribute: str, has_content: bool, cap: int) -> int:
    try:
        n = int(element.get(TABLE + attribute, "1"))
    except ValueError:
        n = 1
    return min(max(n, 1), cap) if has_content else 1


def _rows(table):
    """A table's rows as lists of cell texts, repeats expanded where they hold something."""
    for row in table.iter(TABLE + "table-row"):
        cells = []
        for cell in row:
            if cell.tag not in (TABLE + "table-cell", TABLE + "covered-table-cell"):
                continue
            value = cell.get(OFFICE + "value") if cell.get(OFFICE + "value-type") in ("float", "percentage", "currency") else None
            text = value if value is not None else "\n".join(_text(p) for p in cell.iter(TEXT + "p"))
            cells += [text] * _repeat(cell, "number-columns-repeated", bool(text.strip()), MAX_COLUMNS)
            if len(cells) >= MAX_COLUMNS:
                break
        content = any(c.strip() for c in cells)
        for _ in range(_repeat(row, "number-rows-repeated", content, MAX_ROWS + 1)):
            yield cells


def load_sheets(path: Path) -> Loaded:
    root = _content(path, "OpenDocument spreadsheet")
    sections, notes, pages = [], [], 0
    for table in root.iter(TABLE + "table"):
        pages += 1
        found = sheet(_rows(table), pages, table.get(TABLE + "name"), notes)
        if found is not None:
            sections.append(found)
    return Loaded(sections, pages=pages or None, notes=notes)


def load_text(path: Path) -> Loaded:
    root = _content(path, "OpenDocument text")
    body = root.find(f"{OFFICE}body/{OFFICE}text")
    if body is None:
        raise LoadError("not an OpenDocument text file (no text body)")
    blocks = Blocks()

    def walk(element):
        for child in element:
            if child.tag == TEXT + "h":
                blocks.start(" ".join(_text(child).split()) or blocks.heading or "")
            elif child.tag == TEXT + "p":
                blocks.line(_text(child).strip())
            elif child.tag == TABLE + "table":
                blocks.table(list(_rows(child)))
            elif child.tag in (TEXT + "list", TEXT + "list-item", TEXT + "section", TEXT + "list-header"):
                walk(child)

    walk(body)
    return Loaded(blocks.done())
