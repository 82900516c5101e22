"""PowerPoint .pptx (python-pptx): a slide is a page, titled by its title placeholder; its text
boxes in order, its tables as tables (tables.py), then its speaker notes."""

from __future__ import annotations

import zipfile
from pathlib import Path

from . import LoadError, Loaded, Section, archive
from .tables import table_section


def _shapes(shapes):
    """Every shape, those inside groups included, in the slide's order."""
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None and shape.shape_type == 6:  # MSO_SHAPE_TYPE.GROUP
            yield from _shapes(shape.shapes)
        else:
            yield shape


def load(path: Path) -> Loaded:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    archive.check(path, "PowerPoint")
    try:
        deck = Presentation(str(path))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, TypeError) as exc:
        raise LoadError(f"not a valid .pptx file ({type(exc).__name__})") from None
    sections, count = [], 0
    for number, slide in enumerate(deck.slides, 1):
        count = number
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text.split()) if title_shape is not None and title_shape.has_text_frame else ""
        heading = f"Slide {number}: {title}" if title else f"Slide {number}"
        lines, tables = [], []
        for shape in _shapes(slide.shapes):
            if getattr(shape, "has_table", False) and shape.has_table:
                tables.append([[cell.text for cell in row.cells] for row in shape.table.rows])
            elif getattr(shape, "has_text_frame", False) and shape.has_text_frame and shape.text_frame.text.strip():
                lines.append(shape.text_frame.text.strip())
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                lines.append(f"Speaker notes: {notes}")
        text = "\n\n".join(lines)
        sections.append(Section(text, page=number, heading=heading))
        offset = len(text) + 2
        for rows in tables:
            table = table_section(rows, page=number, heading=heading, start=offset)
            if table is not None:
                sections.append(table)
                offset += len(table.text) + 2
    return Loaded(sections, pages=count)
