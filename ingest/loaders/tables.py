"""Tables as Markdown tables whose header travels with every piece of them.

A table becomes one Section: its text is the header row, the `| --- |` rule, then one line per row,
and `Section.header` holds those first two lines, so that the chunker (chunking.py) repeats them at
the top of each chunk it cuts from a long table. A question about one row then finds a passage
that names the columns, as the row alone would not.
"""

from __future__ import annotations

from . import Section


def _cell(value) -> str:
    return " ".join(str(value if value is not None else "").split()).replace("|", "\\|")


def rows_to_lines(rows: list[list]) -> tuple[int, list[str]]:
    """(columns, rows of cells as Markdown table lines), padded to the widest row; empty rows dropped."""
    rows = [[_cell(c) for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return 0, []
    width = max(len(row) for row in rows)
    while width > 1 and not any(len(row) >= width and row[width - 1] for row in rows):
        width -= 1  # trailing columns empty in every row (spreadsheets pad them)
    return width, ["| " + " | ".join((row + [""] * width)[:width]) + " |" for row in rows]


def table_section(rows: list[list], page: int | None = None, heading: str | None = None,
                  start: int = 0, ocr: bool = False) -> Section | None:
    """The table as one Section with its header row repeated in every chunk (None: no cells)."""
    width, lines = rows_to_lines(rows)
    if not lines:
        return None
    header = lines[0] + "\n" + "|" + " --- |" * width
    return Section("\n".join([header] + lines[1:]), page=page, heading=heading, start=start, header=header, ocr=ocr)
