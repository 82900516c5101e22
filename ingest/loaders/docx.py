"""Word .docx: paragraphs, split at Heading/Title styled paragraphs, and tables (tables.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from . import LoadError, Loaded, Section, archive
from .tables import table_section

def load(path: Path) -> Loaded:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    archive.check(path, "Word")
    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as exc:
        raise LoadError(f"not a valid .docx file ({type(exc).__name__})") from None
    sections, heading, lines, offset = [], None, [], 0

    def close():
        nonlocal offset, lines
        text = "\n".join(lines)
        sections.append(Section(text, heading=heading, start=offset))
        offset += len(text) + 1
        lines = []

    def add_table(rows):
        nonlocal offset
        close()
        table = table_section(rows, heading=heading, start=offset)
        if table is not None:
            sections.append(table)
            offset += len(table.text) + 1

    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = docx.text.paragraph.Paragraph(block, document)
            style = (para.style.name if para.style is not None else "") or ""
            text = para.text.strip()
            if text and (style.startswith("Heading") or style == "Title"):
                close()
                heading = text
            if text:
                lines.append(text)
        elif tag == "tbl":
            table = docx.table.Table(block, document)
            add_table([[c.text for c in row.cells] for row in table.rows])
    close()
    return Loaded(sections)
