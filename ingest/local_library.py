"""LocalLibrary: Chroma embedded under HEARTH_HOME (PersistentClient), the manifest in SQLite beside
it, chunk texts in the manifest, and one writer per store (a lock file that the CLI, the watcher
and the app all take)."""

from __future__ import annotations


from .library import Library
from .manifest import Database
from .manifest.files import Files
from .manifest.journal import Journal
from .manifest.keywords import Keywords
from .manifest.texts import Texts
from .settings import Settings, tighten
from .store import chroma_settings, drop_stale_view, force_reopen, saw_generation


# chromadb's CLI entry point, with only the vacuum command (`chroma update` alone reaches the network).
_VACUUM = ("import sys, chromadb_rust_bindings; "
           "chromadb_rust_bindings.cli(['chroma', 'vacuum', '--path', sys.argv[1], '--force'])")


class LocalLibrary(Library):
    keeps_texts = True

    def __init__(self, settings: Settings, collection: str | None = None, physical: str | None = None):
        super().__init__(settings, collection, physical)
        self.db = Database(settings.manifest_path)
        self.files = Files(self.db, self.name, physical)
        self.journal = Journal(self.db, self.files)
        self.keywords = Keywords(self.db, self.files, settings.keywords_path)
        self.chunk_texts = Texts(self.db)

    def _connect(self):
        import chromadb

        self.settings.chroma_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(self.settings.chroma_path), settings=chroma_settings())
        tighten(self.settings.chroma_path)  # chromadb's files follow the umask; the home is 0700 meanwhile
        return client

    def _view_changed(self) -> bool:
        if drop_stale_view(self.settings.chroma_path, self.files.generation()):
            self.__dict__.pop("client", None)  # the next client reopens the store from disk
            return True
        return False

    def _transient(self, exc: BaseException) -> bool:
        # Chroma's Rust core reading segment files another process is rewriting: "Error executing plan"
        from chromadb.errors import InternalError

        return isinstance(exc, InternalError)

    def _reopen(self):
        force_reopen(self.settings.chroma_path)
        self.__dict__.pop("client", None)
        self.__dict__.pop("collection", None)

    def _compact_store(self):
        """Chroma's own vacuum (`chroma vacuum`: its log pruned, its SQLite file vacuumed), run in a
        child process on the store this process lets go of first."""
        import subprocess
        import sys

        self._reopen()
        path = str(self.settings.chroma_path)
        subprocess.run([sys.executable, "-c", _VACUUM, path], check=True, capture_output=True, text=True,
                       timeout=3600)
        tighten(self.settings.chroma_path)

    def _store_free_bytes(self) -> int:
        import sqlite3

        from .manifest import sqlite_free_bytes

        path = self.settings.chroma_path / "chroma.sqlite3"
        if not path.is_file():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return sqlite_free_bytes(db)
        finally:
            db.close()

    def _wrote(self):
        saw_generation(self.settings.chroma_path, self.files.generation())
        tighten(self.settings.chroma_path)  # segment files chromadb made during the write (a few files)
