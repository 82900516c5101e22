"""Word .docx: paragraphs and tables, split at Heading/Title styled paragraphs."""

from __future__ import annotations

import zipfile
from pathlib import Path

from . import LoadError, Loaded, Section

OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # Office's older container, also used for encrypted .docx
MAX_EXPANDED = 256 * 2**20  # no real .docx expands to more; a zip bomb does
MAX_RATIO = 100  # XML compresses ~10:1; a bomb far more


def _check_archive(path: Path) -> None:
    with open(path, "rb") as fh:
        if fh.read(8) == OLE_MAGIC:
            raise LoadError("password-protected or an old Word (.doc) file renamed to .docx; "
                            "open and save it as .docx without a password")
    try:
        with zipfile.ZipFile(path) as z:
            expanded = sum(info.file_size for info in z.infolist())
    except zipfile.BadZipFile:
        return  # python-docx says why
    size = max(path.stat().st_size, 1)
    if expanded > MAX_EXPANDED or (expanded > 16 * 2**20 and expanded / size > MAX_RATIO):
        raise LoadError(f"suspicious archive: {size / 2**20:.2g} MB that expands to {expanded / 2**20:,.0f} MB "
                        "(a zip bomb?); not read")


def load(path: Path) -> Loaded:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    _check_archive(path)
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
            for row in table.rows:
                cells = [c.text.strip() for c in row.cells]
                if any(cells):
                    lines.append(" | ".join(cells))
    close()
    return Loaded(sections)
