"""Sections to chunks with llama-index's SentenceSplitter, sized in the embedding model's tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from .loaders import Section


def check_sizes(chunk_size: int, chunk_overlap: int) -> None:
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError("chunk_overlap must be at least 0 and smaller than chunk_size")


@dataclass(frozen=True)
class ChunkSpec:
    """How to chunk, in a form the file reader process can be sent (see reader.py)."""

    size: int
    overlap: int
    tokenizer_file: str  # the embedding model's tokenizer.json

    def __post_init__(self):
        check_sizes(self.size, self.overlap)  # here, not once per file in the reader

    def chunker(self) -> "Chunker":
        from .embedding import file_tokenizer

        return Chunker(self.size, self.overlap, file_tokenizer(self.tokenizer_file))


@dataclass
class Chunk:
    text: str
    index: int  # position in the document, 0-based
    page: int | None
    heading: str | None
    start: int  # character offsets in the page (PDF) or the file's text
    end: int
    ocr: bool = False  # read from an image by OCR


# A sentence ends at . ! or ? (and any closing quotes or brackets) before white space and a character
# that is not a lower-case letter ("e.g. the" goes on). llama-index's default, nltk's punkt, knows more
# abbreviations but took 60 % of chunking's time, in the file reader that shares the cores with the
# embedder; sentences only decide where a chunk may end (bench/sentences.py compares the two).
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]\u201d\u2019]*\s+(?=[^a-z\s])")


# Tables of contents and indexes ("6.1 Structures . . . . . 111", "3.1. Guiding rules", "abline, 72"):
# they repeat every heading and word of a manual, so both retrievers ranked them above the sections
# themselves (README question: R-data's contents page; Octave's index pages for unrelated questions).
# A chunk is a listing when it has two dot leaders, or when most of its lines (four or more) are short
# numbered headings or short lines ending in page numbers. Marked at ingest (metadata "listing"),
# kept out of the keyword index, and ranked after every prose passage (rag/retrieval.py).
_LEADER = re.compile(r"(?:\.\s?){5,}")
_NUMBERED_LINE = re.compile(r"^\s*(?:[A-Z]|\d{1,3})(?:\.\d{1,3})*\.?\s+\S")  # each repeat needs its dot: linear
_PAGE_END = re.compile(r"(?:[\s,]|^)\d{1,4}(?:\s*[,\u2013-]\s*\d{1,4})*\s*$")


def is_listing(text: str) -> bool:
    """A table of contents or index rather than prose (see above)."""
    if len(_LEADER.findall(text)) >= 2:
        return True
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 4:
        return False
    listed = sum(len(line) <= 70 and bool(_NUMBERED_LINE.match(line) or _PAGE_END.search(line)) for line in lines)
    return listed >= 0.6 * len(lines)


def split_sentences(text: str) -> list[str]:
    """text in sentences, each with the white space after it: joined, they are the text again."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


class Chunker:
    def __init__(self, chunk_size: int, chunk_overlap: int, tokenize: Callable[[str], list]):
        from llama_index.core.node_parser import SentenceSplitter

        check_sizes(chunk_size, chunk_overlap)
        self.size, self.tokenize = chunk_size, tokenize
        self.splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            tokenizer=tokenize,
            paragraph_separator="\n\n",
            chunking_tokenizer_fn=split_sentences,
            include_metadata=False,
            include_prev_next_rel=False,
        )

    def chunk(self, sections: list[Section], first_index: int = 0) -> list[Chunk]:
        """Chunks numbered from first_index (a document chunked part by part keeps one numbering)."""
        chunks: list[Chunk] = []
        for section in sections:
            if section.header:  # offsets: the rows' own span (the repeated header is not in the source there)
                for text, at, end in self._table_pieces(section):
                    chunks.append(Chunk(text, first_index + len(chunks), section.page, section.heading,
                                        section.start + at, section.start + end, section.ocr))
                continue
            cursor = 0
            for piece in self.splitter.split_text(section.text):
                # The splitter keeps the original characters, so each piece is found in order;
                # overlap means the next piece may start before the previous one ended.
                at = section.text.find(piece, cursor)
                if at < 0:
                    at = section.text.find(piece)
                if at >= 0:
                    cursor = at + 1
                start = section.start + max(at, 0)
                chunks.append(Chunk(piece, first_index + len(chunks), section.page, section.heading, start,
                                    start + len(piece), section.ocr))
        return chunks

    def _table_pieces(self, section: Section) -> list[tuple[str, int, int]]:
        """(text, offsets of its first row's start and last row's end) of a table cut between rows, each piece headed by the
        table's header lines; a row too long for a chunk of its own is split by the sentence splitter."""
        header = section.header
        room = self.size - len(self.tokenize(header)) - 1
        rows, at = [], len(header) + 1
        for line in section.text[at:].split("\n"):
            rows.append((line, at))
            at += len(line) + 1
        pieces, group, used = [], [], 0
        for line, offset in rows:
            size = len(self.tokenize(line)) + 1
            if group and used + size > room:
                pieces.append(self._rows_piece(header, group))
                group, used = [], 0
            if size > room:  # one huge row: its pieces carry no header (there is no room for one)
                pieces += [(p, offset, offset + len(line)) for p in self.splitter.split_text(line)]
                continue
            group.append((line, offset))
            used += size
        if group:
            pieces.append(self._rows_piece(header, group))
        return pieces or [(header, 0, len(header))]

    @staticmethod
    def _rows_piece(header: str, group: list[tuple[str, int]]) -> tuple[str, int, int]:
        return header + "\n" + "\n".join(line for line, _ in group), group[0][1], group[-1][1] + len(group[-1][0])
