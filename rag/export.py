"""Answers and whole chats as Markdown: citations become footnotes with file, page and the quote
that supports the sentences citing them (rag/support.py); a sentence nothing supports is marked.

Everything a document or the model wrote goes through rag.render, as in the app: document text
with every punctuation mark escaped, so nothing in a passage (markup, HTML, a stray "[^1]:") can
change the file's structure; the model's answer with its emphasis, lists and code but no link,
image, HTML or math. Opened in any CommonMark viewer, the file reaches nothing; its only links
are its own footnotes.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

from . import render
from .answer import MISMATCH_NOTE, RETRY_NOTE, Answer, Citation


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
    # render.answer writes a citation [2] as \[2\]: those become the footnote references
    body = render.answer(answer.answer, [x.end for x in answer.unsupported], UNSUPPORTED)
    body = re.sub(r"\\\[(\d+)\\\]", lambda m: f"[^{label}{m.group(1)}]", body)
    if answer.mismatch:
        body = f"*{render.text(MISMATCH_NOTE)}*\n\n" + "\n".join("> " + line for line in body.split("\n"))
    if answer.lead is not None:  # the documents' own words, shown first in the app too
        body = f"From the documents: “{render.text(answer.lead.quote)}” [^{label}{answer.lead.n}]\n\n" + body
    return body


def _footnotes(answer: Answer, label: str, library_root: Path | None) -> list[str]:
    notes = []
    citations = list(answer.citations)
    if answer.lead is not None and all(c.n != answer.lead.n for c in citations):
        hit = answer.passages[answer.lead.n - 1]
        citations.append(Citation(answer.lead.n, hit.source, hit.page, answer.lead.quote, hit.section))
    for c in sorted(citations, key=lambda c: c.n):
        where = render.text(display_path(c.source, library_root)) + (f", page {c.page}" if c.page else "")
        if c.section:
            where += f" (§ {render.text(c.section)})"
        notes.append(f"[^{label}{c.n}]: {where}\n    > {render.text(c.quote)}")
    return notes


UNSUPPORTED = "*(unsupported)*"


def _status(answer: Answer) -> list[str]:
    lines = []
    if answer.unsupported:
        claims = sum(x.supported is not None for x in answer.sentences)
        lines.append(f"*{len(answer.unsupported)} of {claims} sentences, marked {UNSUPPORTED}, are not supported "
                     "by the passages shown.*")
    if answer.incomplete:
        lines.append("*This answer is incomplete: the model stopped before it finished.*")
    if answer.error:
        lines.append(f"*Note: {render.text(answer.error)}*")
    return lines


def answer_markdown(answer: Answer, library_root: Path | None = None, collection: str = "") -> str:
    parts = ["# Hearth answer", "", f"**Question:** {render.text(answer.question)}", ""]
    parts += _attempts(answer, "")
    parts += ["", "---", "", _meta(answer, collection), ""]
    parts += _footnotes(answer, "", library_root)
    if answer.retry is not None:
        parts += _footnotes(answer.retry, "r", library_root)
    return "\n".join(parts).rstrip() + "\n"


def _attempts(answer: Answer, label: str) -> list[str]:
    """The answer with its status lines; then a second attempt's, under RETRY_NOTE (footnotes `label`r)."""
    parts = [_answer_body(answer, label) or "*(no answer)*", ""] + _status(answer)
    if answer.retry is not None:
        parts += ["", f"*{render.text(RETRY_NOTE)}*", "", _answer_body(answer.retry, label + "r") or "*(no answer)*", ""]
        parts += _status(answer.retry)
    return parts


def chat_markdown(answers: list[Answer], library_root: Path | None = None, collection: str = "", title: str = "") -> str:
    parts = [f"# {render.text(title)}" if title else "# Hearth chat", ""]
    notes: list[str] = []
    for i, answer in enumerate(answers, 1):
        label = f"q{i}-"
        parts += [f"## {i}. {render.text(answer.question)}", ""] + _attempts(answer, label)
        parts += [_meta(answer, collection), ""]
        notes += _footnotes(answer, label, library_root)
        if answer.retry is not None:
            notes += _footnotes(answer.retry, label + "r", library_root)
    parts += ["---", ""] + notes
    return "\n".join(parts).rstrip() + "\n"


def _meta(answer: Answer, collection: str) -> str:
    bits = [f"Model: {render.text(answer.model or 'none')}", f"Date: {answer.created_at}"]
    if collection:
        bits.append(f"Collection: {render.text(collection)}")
    return "*" + " · ".join(bits) + "*"


def chats_zip(chats: list[tuple[str, str, list[Answer]]], library_root: Path | None = None) -> bytes:
    """Every chat, (id, title, answers), as one Markdown file each in a zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for chat_id, title, answers in chats:
            archive.writestr(f"hearth-chat-{chat_id}.md", chat_markdown(answers, library_root, title=title))
    return buffer.getvalue()


def write(path: str | os.PathLike, markdown: str) -> Path:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    return path
