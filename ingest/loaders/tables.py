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


class Blocks:
    """A document's sections, built block by block (Word, OpenDocument): lines gather under the
    current heading; a heading or a table closes them. Offsets count the text as joined by newlines."""

    def __init__(self):
        self.sections: list[Section] = []
        self.heading: str | None = None
        self.lines: list[str] = []
        self.offset = 0

    def _close(self):
        text = "\n".join(self.lines)
        self.sections.append(Section(text, heading=self.heading, start=self.offset))
        self.offset += len(text) + 1
        self.lines = []

    def line(self, text: str):
        self.lines.append(text)

    def start(self, heading: str):
        """A heading: the lines so far end their section; it starts the next (and is its first line)."""
        self._close()
        self.heading = heading
        self.lines.append(heading)

    def table(self, rows: list[list]):
        self._close()
        table = table_section(rows, heading=self.heading, start=self.offset)
        if table is not None:
            self.sections.append(table)
            self.offset += len(table.text) + 1

    def done(self) -> list[Section]:
        self._close()
        return self.sections
