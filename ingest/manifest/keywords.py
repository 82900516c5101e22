"""The keyword (BM25) index: SQLite FTS5 with Porter stemming, written in the same transactions as
the files rows, so it always holds exactly the live documents' chunks (nothing rebuilt per query).
Against a Chroma server it is this instance's cache of the server's chunks (CachedKeywords)."""

from __future__ import annotations

import json

from ..chunking import is_listing
from . import Database


class Keywords:
    def __init__(self, db: Database, files):
        self.db, self.files = db, files  # files: whose physical name the rows belong to

    @property
    def _built_key(self) -> str:
        return f"keywords built:{self.files.collection}"

    def add(self, doc_id: str, chunks):
        """chunks: (index, text) pairs of one document. Tables of contents and indexes are left out:
        they repeat every heading, so BM25 ranked them above the sections themselves (R FAQ: keyword
        hit@1 0.42 with them, 0.82 without; bench/devset.py)."""
        for index, text in chunks:
            if is_listing(text):
                continue
            row = self.db.execute("INSERT INTO keyword_chunks (collection, doc_id, chunk) VALUES (?, ?, ?)",
                                  (self.files.collection, doc_id, index)).lastrowid
            self.db.execute("INSERT INTO keywords (rowid, text) VALUES (?, ?)", (row, text))

    def copy(self, from_doc: str, to_doc: str):
        rows = self.db.execute("SELECT k.chunk, w.text FROM keyword_chunks k JOIN keywords w ON w.rowid = k.id "
                               "WHERE k.doc_id=? ORDER BY k.chunk", (from_doc,)).fetchall()
        self.add(to_doc, rows)

    def delete(self, doc_id: str):
        self.db.execute("DELETE FROM keywords WHERE rowid IN (SELECT id FROM keyword_chunks WHERE doc_id=?)", (doc_id,))
        self.db.execute("DELETE FROM keyword_chunks WHERE doc_id=?", (doc_id,))

    def rows(self) -> list[tuple[str, int, str]]:
        """(doc_id, chunk, text) of every keyword row: for integrity checks."""
        return self.db.execute("SELECT k.doc_id, k.chunk, w.text FROM keyword_chunks k JOIN keywords w ON w.rowid = k.id "
                               "WHERE k.collection=?", (self.files.collection,)).fetchall()

    def built(self) -> bool:
        """The index was built for this collection (ingests keep it current from then on)."""
        return self.db.execute("SELECT 1 FROM meta WHERE key=?", (self._built_key,)).fetchone() is not None

    def mark_built(self, generation: int = 1):
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (self._built_key, generation))

    def docs_missing(self) -> list[str]:
        """doc_ids of this collection's documents with no keyword row (never indexed, or all navigation)."""
        return [row[0] for row in self.db.execute(
            "SELECT doc_id FROM files f WHERE collection=? AND NOT EXISTS "
            "(SELECT 1 FROM keyword_chunks k WHERE k.doc_id = f.doc_id)", (self.files.collection,))]

    def total(self) -> int:
        """Keyword rows of all collections (they share one FTS5 index, so its word counts are global)."""
        return self.db.execute("SELECT count(*) FROM keyword_chunks").fetchone()[0]

    def counts(self, words: list[str], cap: int) -> dict[str, int]:
        """{word: keyword rows holding it, counted up to cap}: FTS5 tokenizes and stems each word as it
        does the index, and a count stops at cap (~0.5 ms per 10k rows)."""
        return {w: self.db.execute("SELECT count(*) FROM (SELECT 1 FROM keywords WHERE keywords MATCH ? LIMIT ?)",
                                   (f'"{w}"', cap)).fetchone()[0] for w in words}

    def search(self, match: str, limit: int, docs: list[str] | None = None) -> list[tuple[str, int, float]]:
        """(doc id, chunk index, BM25 score: higher is better) for an FTS5 MATCH expression, in the
        documents `docs` only when given."""
        only = " AND k.doc_id IN (SELECT value FROM json_each(?))" if docs else ""
        rows = self.db.execute(
            "SELECT k.doc_id, k.chunk, bm25(keywords) AS rank FROM keywords JOIN keyword_chunks k ON k.id = keywords.rowid "
            f"WHERE keywords MATCH ? AND k.collection = ?{only} ORDER BY rank LIMIT ?",
            (match, self.files.collection, *([json.dumps(list(docs))] if docs else []), limit))
        return [(doc, chunk, -rank) for doc, chunk, rank in rows]


class CachedKeywords(Keywords):
    """A Chroma server's keyword index, cached per instance: current while it holds what the server
    held at the server's last change (its generation)."""

    def built(self) -> bool:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (self._built_key,)).fetchone()
        return row is not None and row[0] == self.files.generation()

    def docs_missing(self) -> list[str]:
        live = {r.doc_id for r in self.files.records().values()}
        cached = {row[0] for row in self.db.execute(
            "SELECT DISTINCT doc_id FROM keyword_chunks WHERE collection=?", (self.files.collection,))}
        for gone in cached - live:  # removed or replaced by any instance since the last sync
            self.delete(gone)
        return sorted(live - cached)
