"""What a collection holds: its embedding model, its files (one record each) and the files that
could not be added; its physical name; a generation counter that moves with every change of files."""

from __future__ import annotations

import time

from . import REBUILD_MARK, Database, FileRecord, is_rebuild_of

_COLUMNS = "path, doc_id, size, mtime_ns, sha256, chunks, pages, notes, indexed_at, language"
# How a page of documents can be ordered: the name shown -> its column (Files.page).
SORTS = {"path": "path", "indexed": "indexed_at", "size": "size", "chunks": "chunks", "pages": "pages",
         "language": "language"}


class Files:
    owner: str | None = None  # whose records this instance writes: only a shared server's catalog has owners

    def __init__(self, db: Database, name: str, physical: str | None = None):
        """The records of collection `name`; `physical` opens a rebuild of it instead."""
        self.db, self.name = db, name
        self.pinned = physical is not None
        self.collection = physical or self.physical()

    # --- which physical collection ------------------------------------------------------------------
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
        with self.db.transaction():
            self.db.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?)", (self.name, physical))
            self.db.drop_rows(old)
        self.collection = physical

    def rebuilds(self) -> list[str]:
        """Physical names of this collection's rebuilds that are not the current one (left by a crash)."""
        names = {row[0] for table in ("collections", "files", "journal", "problems")
                 for row in self.db.execute(f"SELECT DISTINCT {'name' if table == 'collections' else 'collection'} "
                                            f"FROM {table}")}
        current = self.physical()
        return sorted(n for n in names if n != current and (is_rebuild_of(n, self.name) or n == self.name))

    def drop_rows(self, physical: str):
        with self.db.transaction():
            self.db.drop_rows(physical)

    def drop(self):
        self.drop_rows(self.collection)

    def generation(self) -> int:
        """Changes whenever any process adds, changes or removes a document (any collection)."""
        return self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]

    # --- whether Chroma may hold what a rebuild left (Library.clean_rebuilds) ------------------------
    def swept(self) -> bool:
        """No rebuild of this collection has begun since Chroma was last cleared of what one leaves.
        Checked by every write, so that a no-op `hearth ingest` needs not open Chroma (0.6 s of imports)."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (f"swept:{self.name}",)).fetchone()
        return bool(row and row[0])  # a library from before this mark: swept once

    def set_swept(self, swept: bool):
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"swept:{self.name}", int(swept)))

    # --- the collection's embedding model -------------------------------------------------------
    def model(self) -> tuple[str, int] | None:
        row = self.db.execute("SELECT embed_model, dimension FROM collections WHERE name=?",
                              (self.collection,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_model(self, embed_model: str, dimension: int):
        self.db.execute("INSERT OR REPLACE INTO collections VALUES (?, ?, ?, ?)",
                        (self.collection, embed_model, dimension, time.time()))

    def collections(self) -> list[tuple[str, str, int, int]]:
        """(name, model, dimension, files) for every collection (under its own name, not a rebuild's)."""
        aliases = dict(self.db.execute("SELECT physical, name FROM aliases").fetchall())
        rows = self.db.execute(
            "SELECT c.name, c.embed_model, c.dimension, "
            "(SELECT count(*) FROM files f WHERE f.collection=c.name) FROM collections c ORDER BY c.name"
        ).fetchall()
        return sorted((aliases.get(p, p), m, d, f) for p, m, d, f in rows
                      if p in aliases or (REBUILD_MARK not in p and p not in aliases.values()))

    # --- files ----------------------------------------------------------------------------------
    def records(self) -> dict[str, FileRecord]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE collection=? ORDER BY path", (self.collection,))
        return {row[0]: FileRecord(*row[:-1], language=row[-1]) for row in rows}

    def page(self, search: str = "", sort: str = "path", descending: bool = False, offset: int = 0,
             limit: int = 50) -> tuple[list[FileRecord], int]:
        """One page of the records whose path holds `search` (any case), ordered by `sort` (one of
        SORTS), and how many match: what a list of 100,000 documents shows without reading them all."""
        order = f"{SORTS[sort]} {'DESC' if descending else 'ASC'}, path"
        where, args = "collection=?", [self.collection]
        if search:
            where += r" AND path LIKE ? ESCAPE '\'"
            args.append("%" + search.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%")
        total = self.db.execute(f"SELECT count(*) FROM files WHERE {where}", args).fetchone()[0]
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                               (*args, limit, offset))
        return [FileRecord(*row[:-1], language=row[-1]) for row in rows], total

    def totals(self) -> tuple[int, int]:
        """(documents, passages) as recorded: what a status line shows without opening Chroma (whose
        first open reads the whole vector index: 5.6 s at 1M passages)."""
        files, chunks = self.db.execute("SELECT count(*), coalesce(sum(chunks), 0) FROM files WHERE collection=?",
                                        (self.collection,)).fetchone()
        return files, chunks

    def get(self, path: str) -> FileRecord | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE collection=? AND path=?", (self.collection, path)).fetchone()
        return FileRecord(*row[:-1], language=row[-1]) if row else None

    def has_files(self) -> bool:
        return self.db.execute("SELECT 1 FROM files WHERE collection=? LIMIT 1", (self.collection,)).fetchone() is not None

    def live_doc_ids(self, doc_ids) -> set[str]:
        doc_ids = list(set(doc_ids))
        if not doc_ids:
            return set()
        marks = ",".join("?" * len(doc_ids))
        # "+collection": with more than a few ids SQLite chose the (collection, sha256) index and read every
        # file of the collection (187 ms a search at 100k files) instead of looking each id up (0.15 ms).
        rows = self.db.execute(f"SELECT doc_id FROM files WHERE +collection=? AND doc_id IN ({marks})",
                               (self.collection, *doc_ids))
        return {r[0] for r in rows}

    def put(self, rec: FileRecord):
        self.db.execute(f"INSERT OR REPLACE INTO files (collection, {_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (self.collection, rec.path, rec.doc_id, rec.size, rec.mtime_ns, rec.sha256, rec.chunks,
                         rec.pages, rec.notes, rec.indexed_at, rec.language))

    def delete(self, path: str):
        self.db.execute("DELETE FROM files WHERE collection=? AND path=?", (self.collection, path))

    def touch(self, rec: FileRecord, size: int, mtime_ns: int):
        """The file was touched, not changed: only its size and mtime are new."""
        self.db.execute("UPDATE files SET size=?, mtime_ns=? WHERE collection=? AND path=?",
                        (size, mtime_ns, self.collection, rec.path))

    # --- problems: files that could not be ingested, kept so they are reported, not retried blindly
    def problems(self) -> dict[str, tuple[str, int, int]]:
        rows = self.db.execute("SELECT path, reason, size, mtime_ns FROM problems WHERE collection=? ORDER BY path",
                               (self.collection,))
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def put_problem(self, path: str, reason: str, size: int | None, mtime_ns: int | None):
        self.db.execute("INSERT OR REPLACE INTO problems VALUES (?, ?, ?, ?, ?, ?)",
                        (self.collection, path, reason, size, mtime_ns, time.time()))

    def clear_problem(self, path: str):
        self.db.execute("DELETE FROM problems WHERE collection=? AND path=?", (self.collection, path))
