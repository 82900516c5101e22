"""ServerLibrary: a Chroma server (HEARTH_CHROMA_URL) shared by several Hearth instances. The
manifest's files and journal live in the server (catalog.py), the keyword index is this instance's
cache of the server's chunks, texts stay in Chroma (other instances read them there), and a writer
holds the server's lease (lease.py) besides this machine's lock file."""

from __future__ import annotations

from contextlib import contextmanager

from .catalog import Catalog, CatalogFiles, CatalogJournal, instance_id
from .lease import Lease
from .library import Library
from .lock import writer_lock
from .manifest import Database
from .manifest.keywords import CachedKeywords
from .settings import Settings
from .store import chroma_settings, is_unreachable, server_address, store_errors, unreachable_message
from .errors import StoreUnreachable


class ServerLibrary(Library):
    def __init__(self, settings: Settings, collection: str | None = None, physical: str | None = None):
        super().__init__(settings, collection, physical)
        self.db = Database(settings.manifest_path)  # the keyword cache
        self.catalog = Catalog(self.client, self.db)
        self.catalog.fence = self.check_writer  # every catalog write, fenced by the lease while writing
        self.catalog.lease_number = lambda: self.lease.number if self.lease is not None else 0
        self.instance = instance_id(settings.home)
        self.files = CatalogFiles(self.catalog, self.name, self.instance, physical)
        self.journal = CatalogJournal(self.files)
        self.keywords = CachedKeywords(self.db, self.files, settings.keywords_path)

    def _connect(self):
        import chromadb

        host, port, https = server_address(self.settings.chroma_url)
        token = {"Authorization": f"Bearer {self.settings.chroma_token}"} if self.settings.chroma_token else None
        try:
            return chromadb.HttpClient(host=host, port=port, ssl=https, headers=token, settings=chroma_settings())
        except Exception as exc:
            if is_unreachable(exc):
                raise StoreUnreachable(unreachable_message(self.settings, exc)) from exc
            raise

    def transaction(self):
        return self.catalog.transaction()

    def _compact_store(self):
        """Nothing here: the server's store is its operator's (`chroma vacuum` on that machine)."""

    def _store_free_bytes(self) -> int:
        return 0

    def sweep(self) -> int:
        """Taking over from a writer that died: its files in flight are first written again under this
        writer's number, so its records that land late lose to them (catalog.py), then the sweep."""
        self.files.outrank(self.journal.adding())
        return super().sweep()

    @contextmanager
    def _writer(self, wait, on_wait):
        with writer_lock(self.settings.lock_path, wait=wait, on_wait=on_wait):
            lease = Lease(self.catalog.collection, self.instance, self.settings.chroma_lease_s)
            with store_errors(self.settings):  # the server down: StoreUnreachable, as for any call
                self.lease = lease.acquire(wait, on_wait)
            try:
                yield
            finally:
                self.lease.release()
                self.lease = None
