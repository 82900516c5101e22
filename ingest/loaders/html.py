"""HTML: the visible text only (no script, style or markup), split at headings."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from . import Loaded, Section
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

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in _HIDDEN:
            self.hidden += 1
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
    parser = _Visible()
    parser.feed(read_text(path))
    parser.close()
    sections, offset = [], 0
    for heading, parts in parser.sections:
        text = _tidy("".join(parts))
        sections.append(Section(text, heading=heading or (_tidy("".join(parser.title)) or None), start=offset))
        offset += len(text) + 2
    return Loaded(sections)
