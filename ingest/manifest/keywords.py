"""The keyword (BM25) index: SQLite FTS5 with Porter stemming, written in the same transactions as
the files rows, so it always holds exactly the live documents' chunks (nothing rebuilt per query).
Against a Chroma server it is this instance's cache of the server's chunks (CachedKeywords).

Chinese and Japanese put no spaces between words, so FTS5's unicode61 tokenizer read a whole
sentence as one word and no question matched it. Every run of Han, Kana or Hangul is indexed, and
searched, as its overlapping pairs of characters (cjk_bigrams: Lucene's CJK analyzer's way); other
text is left as it was. On Debian's reference manual (bench/keywords_cjk.py) keyword hit@1/hit@5
went from 0/0 to 0.73/1.0 in Japanese and from 0.26/0.30 to 0.83/1.0 in Chinese. FTS5's trigram
tokenizer did less well (hit@5 0.95 and 0.91, and only with the query cut into 3-character pieces):
it cannot match a two-character word, most words of these languages, and SQLite before 3.45 cannot
make it fold accents."""

from __future__ import annotations

import contextlib
import json

from ..chunking import is_listing
from ..language import cjk_bigrams
from . import Database

# What the rows' text is: 2 since CJK runs are written as bigrams; rows of a manifest without the
# key were written unsplit, and are indexed again (_upgrade).
FORMAT = 2
_FORMAT_KEY = "keywords format"


OVERFETCH = 4  # best rows of the shared index read per row wanted of one collection


class Keywords:
    def __init__(self, db: Database, files):
        self.db, self.files = db, files  # files: whose physical name the rows belong to
        self._current = False  # the rows are known to be of FORMAT

    @property
    def _built_key(self) -> str:
        return f"keywords built:{self.files.collection}"

    def add(self, doc_id: str, chunks):
        """chunks: (index, text) pairs of one document. Tables of contents and indexes are left out:
        they repeat every heading, so BM25 ranked them above the sections themselves (R FAQ: keyword
        hit@1 0.42 with them, 0.82 without; bench/devset.py)."""
        self._upgrade(rebuild=False)
        self._insert(doc_id, [(index, cjk_bigrams(text)) for index, text in chunks if not is_listing(text)])

    def _insert(self, doc_id: str, rows):
        for index, text in rows:
            row = self.db.execute("INSERT INTO keyword_chunks (collection, doc_id, chunk) VALUES (?, ?, ?)",
                                  (self.files.collection, doc_id, index)).lastrowid
            self.db.execute("INSERT INTO keywords (rowid, text) VALUES (?, ?)", (row, text))

    def copy(self, from_doc: str, to_doc: str):
        rows = self.db.execute("SELECT k.chunk, w.text FROM keyword_chunks k JOIN keywords w ON w.rowid = k.id "
                               "WHERE k.doc_id=? ORDER BY k.chunk", (from_doc,)).fetchall()
        self._insert(to_doc, rows)  # as written (listings already left out)

    def _upgrade(self, rebuild: bool = True):
        """Make the rows FORMAT's. Rows from before it (CJK text unsplit) are dropped, in every
        collection (they share the FTS5 index), with the marks that they were built, so that
        Library.ensure_keywords indexes each collection again from its stored chunk texts on its next
        search. rebuild=False (a write): only an empty index is marked; rows from before wait for that."""
        if self._current:
            return
        in_transaction = self.db.db.in_transaction
        with contextlib.nullcontext() if in_transaction else self.db.transaction():
            row = self.db.execute("SELECT value FROM meta WHERE key=?", (_FORMAT_KEY,)).fetchone()
            if row is None or row[0] != FORMAT:
                if self.db.execute("SELECT 1 FROM keyword_chunks LIMIT 1").fetchone() is not None:
                    if not rebuild:
                        return
                    self.db.execute("DELETE FROM keywords")
                    self.db.execute("DELETE FROM keyword_chunks")
                    self.db.execute("DELETE FROM meta WHERE key LIKE 'keywords built:%'")
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_FORMAT_KEY, FORMAT))
        self._current = not in_transaction  # a caller's transaction may yet roll back

    def delete(self, doc_id: str):
        self.db.execute("DELETE FROM keywords WHERE rowid IN (SELECT id FROM keyword_chunks WHERE doc_id=?)", (doc_id,))
        self.db.execute("DELETE FROM keyword_chunks WHERE doc_id=?", (doc_id,))

    def rows(self) -> list[tuple[str, int, str]]:
        """(doc_id, chunk, text) of every keyword row: for integrity checks."""
        return self.db.execute("SELECT k.doc_id, k.chunk, w.text FROM keyword_chunks k JOIN keywords w ON w.rowid = k.id "
                               "WHERE k.collection=?", (self.files.collection,)).fetchall()

    def built(self) -> bool:
        """The index was built for this collection (ingests keep it current from then on)."""
        self._upgrade()
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
                                   (f'"{cjk_bigrams(w)}"', cap)).fetchone()[0] for w in words}

    def search(self, match: str, limit: int, docs: list[str] | None = None) -> list[tuple[str, int, float]]:
        """(doc id, chunk index, BM25 score: higher is better) for an FTS5 MATCH expression, in the
        documents `docs` only when given. CJK text in it is split as the index's (a quoted run: the
        phrase of its pairs)."""
        match = cjk_bigrams(match)
        if not docs:
            # The best rows of the whole index first, then their collection: joining every matching
            # row before sorting took twice as long (at 1M passages, 422 against 333 ms for 400k rows).
            # The index is shared by every collection: should too few of the best be this one's, the
            # joined query below gives the right answer.
            wanted = limit * OVERFETCH
            rows = self.db.execute(
                "SELECT k.doc_id, k.chunk, r.rank FROM (SELECT rowid, rank FROM keywords WHERE keywords MATCH ? "
                "ORDER BY rank LIMIT ?) AS r JOIN keyword_chunks k ON k.id = r.rowid WHERE k.collection = ? "
                "ORDER BY r.rank", (match, wanted, self.files.collection)).fetchall()
            if len(rows) >= limit or not self._more_than(match, len(rows), wanted):
                return [(doc, chunk, -rank) for doc, chunk, rank in rows[:limit]]
        only = " AND k.doc_id IN (SELECT value FROM json_each(?))" if docs else ""
        rows = self.db.execute(
            "SELECT k.doc_id, k.chunk, bm25(keywords) AS rank FROM keywords JOIN keyword_chunks k ON k.id = keywords.rowid "
            f"WHERE keywords MATCH ? AND k.collection = ?{only} ORDER BY rank LIMIT ?",
            (match, self.files.collection, *([json.dumps(list(docs))] if docs else []), limit))
        return [(doc, chunk, -rank) for doc, chunk, rank in rows]


    def _more_than(self, match: str, found: int, wanted: int) -> bool:
        """Whether the index holds rows of other collections among the best `wanted` (so that the
        `found` of this one may not be all of it)."""
        if found >= wanted:
            return True
        return self.db.execute("SELECT count(*) FROM (SELECT 1 FROM keywords WHERE keywords MATCH ? LIMIT ?)",
                               (match, wanted)).fetchone()[0] > found


class CachedKeywords(Keywords):
    """A Chroma server's keyword index, cached per instance: current while it holds what the server
    held at the server's last change (its generation)."""

    def built(self) -> bool:
        self._upgrade()
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (self._built_key,)).fetchone()
        return row is not None and row[0] == self.files.generation()

    def docs_missing(self) -> list[str]:
        live = {r.doc_id for r in self.files.records().values()}
        cached = {row[0] for row in self.db.execute(
            "SELECT DISTINCT doc_id FROM keyword_chunks WHERE collection=?", (self.files.collection,))}
        for gone in cached - live:  # removed or replaced by any instance since the last sync
            self.delete(gone)
        return sorted(live - cached)
