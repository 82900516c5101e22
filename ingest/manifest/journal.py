"""Chroma writes in flight, announced before they start (the protocol is in __init__.py)."""

from __future__ import annotations

from . import Database


class Journal:
    def __init__(self, db: Database, files):
        self.db, self.files = db, files  # files: whose physical name the entries belong to

    def entries(self) -> list[tuple[str, str]]:
        return self.db.execute("SELECT doc_id, op FROM journal WHERE collection=?", (self.files.collection,)).fetchall()

    def add(self, doc_id: str, op: str, path: str | None = None):  # path: the server's catalog needs it (catalog.py)
        self.db.execute("INSERT OR IGNORE INTO journal VALUES (?, ?, ?)", (self.files.collection, doc_id, op))

    def done(self, doc_id: str, op: str):
        self.db.execute("DELETE FROM journal WHERE collection=? AND doc_id=? AND op=?", (self.files.collection, doc_id, op))

    def clear(self):
        self.db.execute("DELETE FROM journal WHERE collection=?", (self.files.collection,))
