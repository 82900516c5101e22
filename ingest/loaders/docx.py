"""Word .docx: paragraphs, split at Heading/Title styled paragraphs, and tables (tables.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from . import LoadError, Loaded, archive
from .tables import Blocks

def load(path: Path) -> Loaded:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    archive.check(path, "Word")
    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as exc:
        raise LoadError(f"not a valid .docx file ({type(exc).__name__})") from None
    blocks = Blocks()
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = docx.text.paragraph.Paragraph(block, document)
            style = (para.style.name if para.style is not None else "") or ""
            text = para.text.strip()
            if text and (style.startswith("Heading") or style == "Title"):
                blocks.start(text)
            elif text:
                blocks.line(text)
        elif tag == "tbl":
            table = docx.table.Table(block, document)
            blocks.table([[c.text for c in row.cells] for row in table.rows])
    return Loaded(blocks.done())
