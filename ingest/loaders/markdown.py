"""Markdown, split at headings by llama-index's MarkdownNodeParser (it knows code fences)."""

from __future__ import annotations

from pathlib import Path

from . import Loaded, Section
from .text import read_text


def load(path: Path) -> Loaded:
    from llama_index.core import Document
    from llama_index.core.node_parser import MarkdownNodeParser

    text = read_text(path)
    sections = []
    for node in MarkdownNodeParser().get_nodes_from_documents([Document(text=text)]):
        trail = [p for p in node.metadata.get("header_path", "/").split("/") if p]
        first = node.text.lstrip().split("\n", 1)[0]
        if first.startswith("#"):
            trail.append(first.lstrip("#").strip())
        start = node.start_char_idx if node.start_char_idx is not None else text.find(node.text)
        sections.append(Section(node.text, heading=" > ".join(trail) or None, start=max(start, 0)))
    return Loaded(sections)
