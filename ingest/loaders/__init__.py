"""Loaders turn one file into sections of text with provenance (page, heading, offset).

One module per format; `load(path)` picks by extension. A loader raises `LoadError` with a plain
reason a user can act on ("encrypted PDF; needs a password"), never a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import LoadError  # noqa: F401  (raised by every loader)




@dataclass
class Section:
    text: str
    page: int | None = None  # 1-based page number, PDFs only
    heading: str | None = None  # nearest section heading, where known
    start: int = 0  # offset of `text` within its page (PDF) or within the whole file
    header: str | None = None  # a table's header lines (tables.py), repeated atop each chunk cut from it
    ocr: bool = False  # the text was read from an image by OCR (ocr.py)


@dataclass
class Loaded:
    sections: list[Section]
    pages: int | None = None
    notes: list[str] = field(default_factory=list)  # things worth telling, e.g. pages re-extracted
    chunks: list = field(default_factory=list)  # when reader.py was asked to chunk (then sections is empty)
    streamed: int = 0  # sections already handed to load()'s sink, not in `sections`


def _loaders():
    from . import docx, epub, html, images, mail, markdown, odf, pdf, pptx, sheets, text

    return {
        ".pdf": pdf.load,
        ".txt": text.load,
        ".text": text.load,
        ".rst": text.load_rst,
        ".md": markdown.load,
        ".markdown": markdown.load,
        ".html": html.load,
        ".htm": html.load,
        ".docx": docx.load,
        ".odt": odf.load_text,
        ".pptx": pptx.load,
        ".xlsx": sheets.load_xlsx,
        ".ods": odf.load_sheets,
        ".csv": sheets.load_csv,
        ".epub": epub.load,
        ".eml": mail.load_eml,
        ".mbox": mail.load_mbox,
        **{ext: images.load for ext in images.EXTENSIONS},
    }


SUPPORTED = frozenset({".pdf", ".txt", ".text", ".rst", ".md", ".markdown", ".html", ".htm", ".docx", ".odt",
                       ".pptx", ".xlsx", ".ods", ".csv", ".epub", ".eml", ".mbox",
                       ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})


def is_supported(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUPPORTED


def load(path: str | Path, sink: Callable[[list[Section]], None] | None = None) -> Loaded:
    """The file's text sections. Given a sink, a PDF hands its pages to it as they are read, a few
    dozen at a time (the reader process chunks and sends them on: a long PDF is embedded while it is
    still being read), and only the sections not yet handed over are returned."""
    path = Path(path)
    loader = _loaders().get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}")
    if path.stat().st_size == 0:
        raise LoadError("empty file")
    loaded = loader(path, sink) if sink is not None and path.suffix.lower() == ".pdf" else loader(path)
    loaded.sections = [s for s in loaded.sections if s.text.strip()]
    if not loaded.sections and not loaded.streamed:
        raise LoadError("no text found in the file")
    return loaded


def warm_up() -> None:
    """Import the parser libraries now, so that no file's time limit pays for them."""
    import charset_normalizer  # noqa: F401
    import docx  # noqa: F401
    import lxml.etree  # noqa: F401
    import openpyxl  # noqa: F401
    import pptx  # noqa: F401
    import pypdf  # noqa: F401
    from PIL import Image  # noqa: F401
    from llama_index.core.node_parser import MarkdownNodeParser  # noqa: F401

    _loaders()
