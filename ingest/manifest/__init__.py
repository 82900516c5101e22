"""The manifest: what each collection holds, and the journal that makes ingestion crash-safe.

SQLite (one file under HEARTH_HOME), so every change is one atomic, durable transaction. One module
per concern, over one connection (Database):

    files     collections and their models, the files (path, hash, size, mtime, doc id, chunks),
              the files that failed and why, and the physical name (see below)       files.py
    journal   Chroma writes in flight                                              journal.py
    keywords  the keyword (BM25) index: tantivy, a folder per collection beside it keywords.py
    texts     chunk texts of a local store (Chroma keeps vectors and metadata)       texts.py

A Chroma server's library keeps files and journal in the server instead (ingest/catalog.py); the
keyword index stays here as that instance's cache.

Crash safety works like a write-ahead intent log. Chroma and the manifest cannot change in one
transaction, so every Chroma write is announced in `journal` first:
  1. journal (doc, 'add')                          -- committed before any chunk is written
  2. chunks written to Chroma under ids "doc:i", then its keyword rows (committed)
  3. one transaction: the file's row points at the new doc, the 'add' entry goes,
     and the replaced doc (if any) is journalled as (old, 'delete')
  4. the old doc's chunks and keyword rows deleted, then its journal entry
A `kill -9` anywhere leaves journal entries; repair (run before every write) deletes the chunks
and keyword rows of every journalled doc that no file row points at. Readers only trust docs that a file row names.

A collection's rows and its Chroma collection are stored under a physical name: its own name, or,
once `hearth ingest --reembed` has rebuilt it, the name of that rebuild ("work.reembed-1a2b3c4d"),
which `aliases` maps it to. A rebuild is written beside the collection under its own physical name
and switched to in one transaction (Files.swap_to), so a crash at any point leaves one whole collection.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS aliases (name TEXT PRIMARY KEY, physical TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY, embed_model TEXT NOT NULL, dimension INTEGER NOT NULL, created_at REAL);
CREATE TABLE IF NOT EXISTS files (
    collection TEXT NOT NULL, path TEXT NOT NULL, doc_id TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL, pages INTEGER, notes TEXT, indexed_at REAL NOT NULL, language TEXT,
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

REBUILD_MARK = ".reembed-"


def is_rebuild_of(physical: str, name: str) -> bool:
    """`physical` is (or was) a rebuild of collection `name`."""
    return re.fullmatch(re.escape(name + REBUILD_MARK) + "[0-9a-f]{8}", physical) is not None


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
    language: str | None = None  # ISO 639 code of its text (ingest/language.py); None: not told or older


def sqlite_free_bytes(db: sqlite3.Connection) -> int:
    """The pages a SQLite file holds free for reuse, in bytes (VACUUM gives them back)."""
    return db.execute("PRAGMA freelist_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class Database:
    """The manifest's SQLite file: one connection shared by its parts, one transaction at a time."""

    def __init__(self, path: Path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Made 0600 before SQLite opens it: its -wal and -shm files take the database file's mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self.db_path = str(path)
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=60, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        if "language" not in {row[1] for row in self.db.execute("PRAGMA table_info(files)")}:
            self.db.execute("ALTER TABLE files ADD COLUMN language TEXT")  # a manifest from before languages

    def execute(self, sql: str, params=()):
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows):
        return self.db.executemany(sql, rows)

    def transaction(self):
        return _Transaction(self.db)

    def drop_rows(self, physical: str):
        """Every row of one physical collection, in every part (call inside a transaction; its keyword
        index folder goes after it: Keywords.drop)."""
        self.db.execute("DELETE FROM chunk_texts WHERE doc_id IN (SELECT doc_id FROM files WHERE collection=?)",
                        (physical,))
        for table in ("files", "journal", "problems"):
            self.db.execute(f"DELETE FROM {table} WHERE collection=?", (physical,))
        self.db.execute("DELETE FROM collections WHERE name=?", (physical,))
        self.db.execute("DELETE FROM meta WHERE key=?", (f"keywords built:{physical}",))

    def free_bytes(self) -> int:
        """Bytes compact() would give back, about: SQLite's free pages and its write-ahead log."""
        return sqlite_free_bytes(self.db) + _size(Path(self.db_path + "-wal"))

    def compact(self):
        """Give back the space deletions left: VACUUM (SQLite keeps freed pages for reuse), and the
        write-ahead log that VACUUM wrote emptied. Outside a transaction, under the writer lock."""
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self):
        self.db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
