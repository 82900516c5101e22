"""Sections to chunks with llama-index's SentenceSplitter, sized in the embedding model's tokens."""

from __future__ import annotations

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


class Chunker:
    def __init__(self, chunk_size: int, chunk_overlap: int, tokenize: Callable[[str], list]):
        from llama_index.core.node_parser import SentenceSplitter

        check_sizes(chunk_size, chunk_overlap)
        self.splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            tokenizer=tokenize,
            paragraph_separator="\n\n",
            include_metadata=False,
            include_prev_next_rel=False,
        )

    def chunk(self, sections: list[Section], first_index: int = 0) -> list[Chunk]:
        """Chunks numbered from first_index (a document chunked part by part keeps one numbering)."""
        chunks: list[Chunk] = []
        for section in sections:
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
                chunks.append(
                    Chunk(piece, first_index + len(chunks), section.page, section.heading, start, start + len(piece))
                )
        return chunks
