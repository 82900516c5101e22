"""Answers and whole chats as Markdown: citations become footnotes with file, page and the passage.

Document text is escaped so that nothing in a passage (markup, HTML, a stray "[^1]:") can change
the file's structure; model output keeps its Markdown but not raw HTML.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from .answer import Answer

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape_text(text: str) -> str:
    """Document text as inert Markdown: one line, HTML entities and Markdown syntax escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False))


def display_path(source: str, library_root: Path | None) -> str:
    """The file relative to the library root when it is inside it, else ~-relative, else absolute."""
    path = Path(source)
    for root, prefix in ((library_root, ""), (Path.home(), "~/")):
        if root is not None:
            try:
                return prefix + str(path.relative_to(root))
            except ValueError:
                continue
    return str(path)


def _answer_body(answer: Answer, label: str) -> str:
    text = html.escape(answer.answer, quote=False)  # no raw HTML from the model
    return re.sub(r"\[(\d+)\]", lambda m: f"[^{label}{m.group(1)}]", text)


def _footnotes(answer: Answer, label: str, library_root: Path | None) -> list[str]:
    notes = []
    for c in answer.citations:
        where = escape_text(display_path(c.source, library_root)) + (f", page {c.page}" if c.page else "")
        if c.section:
            where += f" (§ {escape_text(c.section)})"
        notes.append(f"[^{label}{c.n}]: {where}\n    > {escape_text(c.quote)}")
    return notes


def _status(answer: Answer) -> list[str]:
    lines = []
    if answer.incomplete:
        lines.append("*This answer is incomplete: the model stopped before it finished.*")
    if answer.error:
        lines.append(f"*Note: {escape_text(answer.error)}*")
    return lines


def answer_markdown(answer: Answer, library_root: Path | None = None, collection: str = "") -> str:
    parts = ["# Hearth answer", "", f"**Question:** {escape_text(answer.question)}", "",
             _answer_body(answer, "") or "*(no answer)*", ""]
    parts += _status(answer)
    parts += ["", "---", "", _meta(answer, collection), ""]
    parts += _footnotes(answer, "", library_root)
    return "\n".join(parts).rstrip() + "\n"


def chat_markdown(answers: list[Answer], library_root: Path | None = None, collection: str = "") -> str:
    parts = ["# Hearth chat", ""]
    notes: list[str] = []
    for i, answer in enumerate(answers, 1):
        label = f"q{i}-"
        parts += [f"## {i}. {escape_text(answer.question)}", "", _answer_body(answer, label) or "*(no answer)*", ""]
        parts += _status(answer)
        parts += [_meta(answer, collection), ""]
        notes += _footnotes(answer, label, library_root)
    parts += ["---", ""] + notes
    return "\n".join(parts).rstrip() + "\n"


def _meta(answer: Answer, collection: str) -> str:
    bits = [f"Model: {escape_text(answer.model or 'none')}", f"Date: {answer.created_at}"]
    if collection:
        bits.append(f"Collection: {escape_text(collection)}")
    return "*" + " · ".join(bits) + "*"


def write(path: str | os.PathLike, markdown: str) -> Path:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    return path
