"""The manifest: what each collection holds, and the journal that makes ingestion crash-safe.

SQLite (one file under HEARTH_HOME), so every change is one atomic, durable transaction.

Crash safety works like a write-ahead intent log. Chroma and the manifest cannot change in one
transaction, so every Chroma write is announced in `journal` first:
  1. journal (doc, 'add')                          -- committed before any chunk is written
  2. chunks written to Chroma under ids "doc:i"
  3. one transaction: the file's row points at the new doc, the 'add' entry goes,
     and the replaced doc (if any) is journalled as (old, 'delete')
  4. the old doc's chunks deleted from Chroma, then its journal entry
A `kill -9` anywhere leaves journal entries; `repair()` (run before every write) deletes the chunks
of every journalled doc that no file row points at. Readers only trust docs that a file row names.

A collection's rows and its Chroma collection are stored under a physical name: its own name, or,
once `hearth ingest --reembed` has rebuilt it, the name of that rebuild ("work.reembed-1a2b3c4d"),
which `aliases` maps it to. A rebuild is written beside the collection under its own physical name
and switched to in one transaction (swap_to), so a crash at any point leaves one whole collection.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS aliases (name TEXT PRIMARY KEY, physical TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY, embed_model TEXT NOT NULL, dimension INTEGER NOT NULL, created_at REAL);
CREATE TABLE IF NOT EXISTS files (
    collection TEXT NOT NULL, path TEXT NOT NULL, doc_id TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL, pages INTEGER, notes TEXT, indexed_at REAL NOT NULL,
    PRIMARY KEY (collection, path));
CREATE INDEX IF NOT EXISTS files_by_hash ON files (collection, sha256);
CREATE UNIQUE INDEX IF NOT EXISTS files_by_doc ON files (doc_id);
CREATE TABLE IF NOT EXISTS journal (
    collection TEXT NOT NULL, doc_id TEXT NOT NULL, op TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id, op));
CREATE TABLE IF NOT EXISTS problems (
    collection TEXT NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL,
    size INTEGER, mtime_ns INTEGER, at REAL NOT NULL,
    PRIMARY KEY (collection, path));
-- The keyword (BM25) index: SQLite FTS5 with Porter stemming, written in the same transactions as
-- the files rows, so it always holds exactly the live documents' chunks (nothing rebuilt per query).
CREATE TABLE IF NOT EXISTS keyword_chunks (
    id INTEGER PRIMARY KEY, collection TEXT NOT NULL, doc_id TEXT NOT NULL, chunk INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS keyword_chunks_by_doc ON keyword_chunks (doc_id);
CREATE INDEX IF NOT EXISTS keyword_chunks_by_collection ON keyword_chunks (collection);
CREATE VIRTUAL TABLE IF NOT EXISTS keywords USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2');
-- Chunk texts of a local store (Chroma keeps their vectors and metadata only: deleting a document
-- from Chroma took 3.5x as long with its texts there, for its trigram full-text index), written in the
-- same transaction as the document's files row. A Chroma server keeps its texts itself.
CREATE TABLE IF NOT EXISTS chunk_texts (
    doc_id TEXT NOT NULL, chunk INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (doc_id, chunk)) WITHOUT ROWID;
-- A counter bumped by every change to the files table, whoever makes it: a long-lived process (the
-- app) compares it with what its Chroma view has seen (see store.drop_stale_view).
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
CREATE TRIGGER IF NOT EXISTS files_added AFTER INSERT ON files
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'generation'; END;
CREATE TRIGGER IF NOT EXISTS files_changed AFTER UPDATE ON files
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'generation'; END;
CREATE TRIGGER IF NOT EXISTS files_removed AFTER DELETE ON files
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'generation'; END;
"""


_LEADER = re.compile(r"(?:\.\s?){5,}")
REBUILD_MARK = ".reembed-"


def is_rebuild_of(physical: str, name: str) -> bool:
    """`physical` is (or was) a rebuild of collection `name`."""
    return re.fullmatch(re.escape(name + REBUILD_MARK) + "[0-9a-f]{8}", physical) is not None


def is_navigation(text: str) -> bool:
    """A table of contents or index page ("2.9 What mailing lists exist? . . . . . 8"): it repeats every
    heading, so BM25 ranked it above the sections themselves (R FAQ: keyword hit@1 0.42 with it, 0.82
    without; bench/devset.py). Dense search still sees it."""
    return len(_LEADER.findall(text)) >= 2


@dataclass
class FileRecord:
    path: str
    doc_id: str
    size: int
    mtime_ns: int
    sha256: str
    chunks: int
    pages: int | None = None
    notes: str | None = None
    indexed_at: float = 0.0
    owner: str | None = None  # the instance that wrote it, against a shared Chroma server (catalog.py)


_FILE_COLUMNS = "path, doc_id, size, mtime_ns, sha256, chunks, pages, notes, indexed_at"


class Manifest:
    owner: str | None = None  # whose records this instance writes: only a shared server's catalog has owners

    def __init__(self, path: Path, collection: str, physical: str | None = None):
        """The manifest of collection `collection`; `physical` opens a rebuild of it instead."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.name = collection
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=60, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.pinned = physical is not None
        self.collection = physical or self.physical()

    def physical(self) -> str:
        """The name this collection's rows and Chroma collection are stored under now."""
        row = self.db.execute("SELECT physical FROM aliases WHERE name=?", (self.name,)).fetchone()
        return row[0] if row else self.name

    def refresh(self) -> bool:
        """Follow a rebuild that another process switched to; True if the physical name changed."""
        if self.pinned or self.physical() == self.collection:
            return False
        self.collection = self.physical()
        return True

    def swap_to(self, physical: str):
        """Make the rebuild `physical` this collection, and forget what it replaces, in one transaction."""
        old = self.collection
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?)", (self.name, physical))
            self._drop_rows(old)
        self.collection = physical

    def rebuilds(self) -> list[str]:
        """Physical names of this collection's rebuilds that are not the current one (left by a crash)."""
        names = {row[0] for table in ("collections", "files", "journal", "problems")
                 for row in self.db.execute(f"SELECT DISTINCT {'name' if table == 'collections' else 'collection'} "
                                            f"FROM {table}")}
        current = self.physical()
        return sorted(n for n in names if n != current and (is_rebuild_of(n, self.name) or n == self.name))

    def drop_rows(self, physical: str):
        with self.transaction():
            self._drop_rows(physical)

    def close(self):
        self.db.close()

    def transaction(self):
        return _Transaction(self.db)

    def generation(self) -> int:
        """Changes whenever any process adds, changes or removes a document (any collection)."""
        return self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]

    # --- the collection's embedding model -------------------------------------------------------
    def model(self) -> tuple[str, int] | None:
        row = self.db.execute(
            "SELECT embed_model, dimension FROM collections WHERE name=?", (self.collection,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def set_model(self, embed_model: str, dimension: int):
        self.db.execute(
            "INSERT OR REPLACE INTO collections VALUES (?, ?, ?, ?)",
            (self.collection, embed_model, dimension, time.time()),
        )

    def collections(self) -> list[tuple[str, str, int, int]]:
        """(name, model, dimension, files) for every collection (under its own name, not a rebuild's)."""
        aliases = dict(self.db.execute("SELECT physical, name FROM aliases").fetchall())
        rows = self.db.execute(
            "SELECT c.name, c.embed_model, c.dimension, "
            "(SELECT count(*) FROM files f WHERE f.collection=c.name) FROM collections c ORDER BY c.name"
        ).fetchall()
        named = [(aliases.get(p, p), m, d, f) for p, m, d, f in rows
                 if p in aliases or (REBUILD_MARK not in p and p not in aliases.values())]
        return sorted(named)

    def drop_collection(self):
        self.drop_rows(self.collection)

    def _drop_rows(self, physical: str):
        """Every row of one physical collection (call inside a transaction)."""
        self.db.execute("DELETE FROM keywords WHERE rowid IN (SELECT id FROM keyword_chunks WHERE collection=?)",
                        (physical,))
        self.db.execute("DELETE FROM keyword_chunks WHERE collection=?", (physical,))
        self.db.execute("DELETE FROM chunk_texts WHERE doc_id IN (SELECT doc_id FROM files WHERE collection=?)",
                        (physical,))
        for table in ("files", "journal", "problems"):
            self.db.execute(f"DELETE FROM {table} WHERE collection=?", (physical,))
        self.db.execute("DELETE FROM collections WHERE name=?", (physical,))
        self.db.execute("DELETE FROM meta WHERE key=?", (f"keywords built:{physical}",))

    # --- files ----------------------------------------------------------------------------------
    def files(self) -> dict[str, FileRecord]:
        rows = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE collection=? ORDER BY path", (self.collection,)
        )
        return {row[0]: FileRecord(*row) for row in rows}

    def has_files(self) -> bool:
        return self.db.execute("SELECT 1 FROM files WHERE collection=? LIMIT 1", (self.collection,)).fetchone() is not None

    def live_doc_ids(self, doc_ids) -> set[str]:
        doc_ids = list(set(doc_ids))
        if not doc_ids:
            return set()
        marks = ",".join("?" * len(doc_ids))
        rows = self.db.execute(
            f"SELECT doc_id FROM files WHERE collection=? AND doc_id IN ({marks})", (self.collection, *doc_ids)
        )
        return {r[0] for r in rows}

    def put_file(self, rec: FileRecord):
        self.db.execute(
            f"INSERT OR REPLACE INTO files (collection, {_FILE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (self.collection, rec.path, rec.doc_id, rec.size, rec.mtime_ns, rec.sha256, rec.chunks,
             rec.pages, rec.notes, rec.indexed_at),
        )

    def delete_file(self, path: str):
        self.db.execute("DELETE FROM files WHERE collection=? AND path=?", (self.collection, path))

    def touch_file(self, rec: FileRecord, size: int, mtime_ns: int):
        """The file was touched, not changed: only its size and mtime are new."""
        self.db.execute(
            "UPDATE files SET size=?, mtime_ns=? WHERE collection=? AND path=?",
            (size, mtime_ns, self.collection, rec.path),
        )

    # --- chunk texts (call inside the transaction that writes the document's files row) -----------
    def add_texts(self, doc_id: str, chunks):
        """chunks: (index, text) pairs of one document."""
        self.db.executemany("INSERT OR REPLACE INTO chunk_texts VALUES (?, ?, ?)",
                            [(doc_id, index, text) for index, text in chunks])

    def copy_texts(self, from_doc: str, to_doc: str):
        self.db.execute("INSERT OR REPLACE INTO chunk_texts SELECT ?, chunk, text FROM chunk_texts WHERE doc_id=?",
                        (to_doc, from_doc))

    def delete_texts(self, doc_id: str):
        self.db.execute("DELETE FROM chunk_texts WHERE doc_id=?", (doc_id,))

    def texts(self, ids: list[str]) -> dict[str, str]:
        """{chunk id "doc:i": text} for those of `ids` whose text is here."""
        found = {}
        pairs = [cid.rsplit(":", 1) for cid in ids]
        for i in range(0, len(pairs), 400):
            batch = pairs[i : i + 400]
            marks = ",".join("(?, ?)" for _ in batch)
            rows = self.db.execute(f"SELECT doc_id, chunk, text FROM chunk_texts WHERE (doc_id, chunk) IN (VALUES {marks})",
                                   [v for doc, chunk in batch for v in (doc, int(chunk))])
            found.update((f"{doc}:{chunk}", text) for doc, chunk, text in rows)
        return found

    # --- keyword index (call inside the transaction that writes the document's files row) ---------
    def add_keywords(self, doc_id: str, chunks):
        """chunks: (index, text) pairs of one document. Tables of contents and indexes are left out."""
        for index, text in chunks:
            if is_navigation(text):
                continue
            row = self.db.execute("INSERT INTO keyword_chunks (collection, doc_id, chunk) VALUES (?, ?, ?)",
                                  (self.collection, doc_id, index)).lastrowid
            self.db.execute("INSERT INTO keywords (rowid, text) VALUES (?, ?)", (row, text))

    def copy_keywords(self, from_doc: str, to_doc: str):
        rows = self.db.execute("SELECT k.chunk, w.text FROM keyword_chunks k JOIN keywords w ON w.rowid = k.id "
                               "WHERE k.doc_id=? ORDER BY k.chunk", (from_doc,)).fetchall()
        self.add_keywords(to_doc, rows)

    def delete_keywords(self, doc_id: str):
        self.db.execute("DELETE FROM keywords WHERE rowid IN (SELECT id FROM keyword_chunks WHERE doc_id=?)", (doc_id,))
        self.db.execute("DELETE FROM keyword_chunks WHERE doc_id=?", (doc_id,))

    def keyword_rows(self) -> list[tuple[str, int, str]]:
        """(doc_id, chunk, text) of every keyword row: for integrity checks."""
        return self.db.execute("SELECT k.doc_id, k.chunk, w.text FROM keyword_chunks k JOIN keywords w ON w.rowid = k.id "
                               "WHERE k.collection=?", (self.collection,)).fetchall()

    @property
    def _built_key(self) -> str:
        return f"keywords built:{self.collection}"

    def keywords_built(self) -> bool:
        """The keyword index was built for this collection (ingests keep it current from then on)."""
        return self.db.execute("SELECT 1 FROM meta WHERE key=?", (self._built_key,)).fetchone() is not None

    def mark_keywords_built(self, generation: int = 1):
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (self._built_key, generation))

    def docs_without_keywords(self) -> list[str]:
        """doc_ids of this collection's documents with no keyword row (never indexed, or all navigation)."""
        return [row[0] for row in self.db.execute(
            "SELECT doc_id FROM files f WHERE collection=? AND NOT EXISTS "
            "(SELECT 1 FROM keyword_chunks k WHERE k.doc_id = f.doc_id)", (self.collection,))]

    def keyword_total(self) -> int:
        """Keyword rows of all collections (they share one FTS5 index, so its word counts are global)."""
        return self.db.execute("SELECT count(*) FROM keyword_chunks").fetchone()[0]

    def keyword_counts(self, words: list[str], cap: int) -> dict[str, int]:
        """{word: keyword rows holding it, counted up to cap}: FTS5 tokenizes and stems each word as it
        does the index, and a count stops at cap (~0.5 ms per 10k rows)."""
        return {w: self.db.execute("SELECT count(*) FROM (SELECT 1 FROM keywords WHERE keywords MATCH ? LIMIT ?)",
                                   (f'"{w}"', cap)).fetchone()[0] for w in words}

    def keyword_search(self, match: str, limit: int) -> list[tuple[str, float]]:
        """(chunk id, BM25 score: higher is better) for an FTS5 MATCH expression."""
        rows = self.db.execute(
            "SELECT k.doc_id, k.chunk, bm25(keywords) AS rank FROM keywords JOIN keyword_chunks k ON k.id = keywords.rowid "
            "WHERE keywords MATCH ? AND k.collection = ? ORDER BY rank LIMIT ?", (match, self.collection, limit))
        return [(f"{doc}:{chunk}", -rank) for doc, chunk, rank in rows]

    # --- journal --------------------------------------------------------------------------------
    def journal(self) -> list[tuple[str, str]]:
        return self.db.execute(
            "SELECT doc_id, op FROM journal WHERE collection=?", (self.collection,)
        ).fetchall()

    def journal_add(self, doc_id: str, op: str):
        self.db.execute("INSERT OR IGNORE INTO journal VALUES (?, ?, ?)", (self.collection, doc_id, op))

    def journal_done(self, doc_id: str, op: str):
        self.db.execute(
            "DELETE FROM journal WHERE collection=? AND doc_id=? AND op=?", (self.collection, doc_id, op)
        )

    def clear_journals(self):
        self.db.execute("DELETE FROM journal WHERE collection=?", (self.collection,))

    # --- problems: files that could not be ingested, kept so they are reported, not retried blindly
    def problems(self) -> dict[str, tuple[str, int, int]]:
        rows = self.db.execute(
            "SELECT path, reason, size, mtime_ns FROM problems WHERE collection=? ORDER BY path",
            (self.collection,),
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def put_problem(self, path: str, reason: str, size: int | None, mtime_ns: int | None):
        self.db.execute(
            "INSERT OR REPLACE INTO problems VALUES (?, ?, ?, ?, ?, ?)",
            (self.collection, path, reason, size, mtime_ns, time.time()),
        )

    def clear_problem(self, path: str):
        self.db.execute("DELETE FROM problems WHERE collection=? AND path=?", (self.collection, path))


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
