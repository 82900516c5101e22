"""HTML: the visible text only (no script, style or markup), split at headings; tables as tables
(tables.py). A table inside a table cell is read as that cell's text."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from . import Loaded, Section
from .tables import table_section
from .text import read_text

_HIDDEN = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
_BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer",
    "blockquote", "pre", "dd", "dt", "dl", "hr", "main", "nav", "aside", "figcaption", "td", "th",
}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


class _Visible(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str | None, list[str]]] = [(None, [])]
        self.hidden = 0
        self.heading: list[str] | None = None
        self.title: list[str] = []
        self.in_title = False
        self.tables = 0  # depth of <table> nesting
        self.rows: list[list[list[str]]] = []  # the outermost table's rows of cells (cell: its pieces)
        self.tables_at: dict[int, list] = {}  # index in self.sections -> the rows of the table before it

    def _in_cell(self) -> bool:
        return self.tables >= 1 and bool(self.rows) and bool(self.rows[-1])

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "table" and not self.hidden:
            self.tables += 1
            if self.tables == 1:
                self.rows = []
        elif self.tables == 1 and tag == "tr":
            self.rows.append([])
        elif self.tables == 1 and tag in ("td", "th"):
            if not self.rows:
                self.rows.append([])
            self.rows[-1].append([])
        elif self.tables > 1 and tag in ("td", "th", "tr") and self._in_cell():
            self.rows[-1][-1].append(" ")
        elif tag in _HEADINGS and not self.hidden:
            self.heading = []
        elif tag in _BLOCK:
            self.sections[-1][1].append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK:
            self.sections[-1][1].append("\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "table" and self.tables and not self.hidden:
            self.tables -= 1
            if self.tables == 0:
                self.sections.append((self.sections[-1][0], []))  # the text after the table
                self.tables_at[len(self.sections) - 1] = [["".join(cell) for cell in row] for row in self.rows]
                self.rows = []
        elif tag in _HEADINGS and self.heading is not None:
            title = " ".join("".join(self.heading).split())
            self.sections.append((title or None, [title, "\n"]))
            self.heading = None
        elif tag in _BLOCK:
            self.sections[-1][1].append("\n")

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
        if self.hidden:
            return
        if self.tables:
            if self._in_cell():
                self.rows[-1][-1].append(data)
            return
        (self.heading if self.heading is not None else self.sections[-1][1]).append(data)


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.split("\n"))
    out, blank = [], False
    for line in lines:
        if line or not blank:
            out.append(line)
        blank = not line
    return "\n".join(out).strip()


def load(path: Path) -> Loaded:
    return Loaded(sections_of(read_text(path)))


def sections_of(markup: str) -> list[Section]:
    """The visible text of an HTML document, split at headings, tables as tables (e-book chapters
    and mail bodies come here too)."""
    parser = _Visible()
    parser.feed(markup)
    parser.close()
    sections, offset, title = [], 0, _tidy("".join(parser.title)) or None
    for i, (heading, parts) in enumerate(parser.sections):
        table = table_section(parser.tables_at[i], heading=heading or title, start=offset) if i in parser.tables_at else None
        if table is not None:
            sections.append(table)
            offset += len(table.text) + 2
        text = _tidy("".join(parts))
        sections.append(Section(text, heading=heading or title, start=offset))
        offset += len(text) + 2
    return sections
