"""Chunk texts of a local store. Chroma keeps their vectors and metadata only: deleting a document
took 3.5x as long with its texts in Chroma, for its trigram full-text index. Written in the same
transaction as the document's files row."""

from __future__ import annotations

from . import Database


class Texts:
    def __init__(self, db: Database):
        self.db = db

    def add(self, doc_id: str, chunks):
        """chunks: (index, text) pairs of one document."""
        self.db.executemany("INSERT OR REPLACE INTO chunk_texts VALUES (?, ?, ?)",
                            [(doc_id, index, text) for index, text in chunks])

    def copy(self, from_doc: str, to_doc: str):
        self.db.execute("INSERT OR REPLACE INTO chunk_texts SELECT ?, chunk, text FROM chunk_texts WHERE doc_id=?",
                        (to_doc, from_doc))

    def delete(self, doc_id: str):
        self.db.execute("DELETE FROM chunk_texts WHERE doc_id=?", (doc_id,))

    def get(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """{(doc id, chunk index): text} for those of `keys` whose text is here."""
        found = {}
        for i in range(0, len(keys), 400):
            batch = keys[i : i + 400]
            marks = ",".join("(?, ?)" for _ in batch)
            # A join, not `(doc_id, chunk) IN (VALUES ...)`: SQLite 3.40 scans the whole table for that
            # (66 ms for 60 texts at 100k passages, 0.6 s at 1M) and looks each key up for this (1 ms).
            rows = self.db.execute("SELECT c.doc_id, c.chunk, c.text FROM (VALUES " + marks + ") AS k "
                                   "JOIN chunk_texts c ON c.doc_id = k.column1 AND c.chunk = k.column2",
                                   [v for doc, chunk in batch for v in (doc, int(chunk))])
            found.update(((doc, chunk), text) for doc, chunk, text in rows)
        return found
