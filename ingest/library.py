"""A Library is one opened collection: its settings, manifest, embedder and Chroma collection.

Everything heavy (torch, Chroma) is opened on first use, so cheap operations stay cheap.
The CLI and the app both work through this object.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property

from .embedding import Embedder
from .lease import Lease
from .lock import writer_lock
from .catalog import ServerManifest, instance_id
from .manifest import FileRecord, Manifest, is_rebuild_of
from .settings import Settings
from .store import MAX_BATCH, ModelMismatch, Store, store_errors, check_collection_name, drop_stale_view, mismatch_message, saw_generation


class Library:
    def __init__(self, settings: Settings, collection: str | None = None, physical: str | None = None):
        """`physical` opens a rebuild of the collection being written beside it (pipeline.rebuild)."""
        self.settings = settings
        self.name = check_collection_name(collection or settings.collection)
        if settings.chroma_url:  # the manifest lives in the server, shared by every instance
            self.manifest = ServerManifest(self.store.client, settings.manifest_path, self.name,
                                           instance_id(settings.home), physical)
        else:
            self.manifest = Manifest(settings.manifest_path, self.name, physical)
        self.lease: Lease | None = None  # held while writing to a shared Chroma server
    @property
    def physical(self) -> str:
        """The name its rows and Chroma collection are stored under (see manifest.py)."""
        return self.manifest.collection

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return Embedder(s.embed_model, s.embed_batch_size, s.embed_precision)

    @cached_property
    def store(self) -> Store:
        return Store(self.settings)

    @cached_property
    def collection(self):
        """The Chroma collection (created on first use, with this library's model recorded)."""
        self._refresh()
        self.check_model()
        col = self.store.collection(self.physical, self.settings.embed_model, self.embedder.dimension)
        if self.manifest.model() is None:
            self.manifest.set_model(self.settings.embed_model, self.embedder.dimension)
        return col

    def check_model(self):
        """Refuse to mix models: the configured one must be the one the collection was built with."""
        stored = self.manifest.model()
        wanted = (self.settings.embed_model, self.embedder.dimension)
        if stored is not None and tuple(stored) != wanted:
            raise ModelMismatch(mismatch_message(self.name, stored, wanted))

    @property
    def folder(self):
        """Where files added through the app are stored: <library folder>/<collection>."""
        return self.settings.library_dir / self.name

    def ensure_keywords(self):
        """Index the documents that the keyword index lacks: a store made before it existed (once;
        later writes keep it up to date), or, against a Chroma server, whatever other instances
        changed since this one last looked. Marked as built even where nothing came of it (a document
        that is all table of contents), so it is not redone on each search."""
        if self.manifest.keywords_built() or not self.manifest.has_files():
            return
        with self.manifest.transaction():
            generation = self.manifest.generation()
            missing = self.manifest.docs_without_keywords()
            for i in range(0, len(missing), 100):
                got = self.collection.get(where={"doc_id": {"$in": missing[i : i + 100]}}, include=["metadatas"])
                texts = self.texts(got["ids"])
                chunks: dict[str, list] = {}
                for cid, meta in zip(got["ids"], got["metadatas"]):
                    chunks.setdefault(meta["doc_id"], []).append((meta["chunk"], texts.get(cid, "")))
                for doc_id, rows in chunks.items():
                    self.manifest.add_keywords(doc_id, sorted(rows))
            self.manifest.mark_keywords_built(generation)

    @property
    def keeps_texts(self) -> bool:
        """Chunk texts live in the manifest (a local store), not in Chroma (a Chroma server's store,
        whose other instances read them there)."""
        return not self.settings.chroma_url

    def texts(self, ids: list[str]) -> dict[str, str]:
        """{chunk id: text}: from the manifest, else from Chroma (a server's store, or a local store
        written before texts moved to the manifest)."""
        found = self.manifest.texts(ids) if self.keeps_texts else {}
        missing = [cid for cid in ids if cid not in found]
        if missing:
            got = self.collection.get(ids=missing, include=["documents"])
            found.update((cid, doc) for cid, doc in zip(got["ids"], got["documents"]) if doc is not None)
        return found

    def documents(self) -> list[FileRecord]:
        return list(self.manifest.files().values())

    def snapshot(self) -> dict:
        """What the collection holds, independent of random doc ids, plus its integrity: for comparing
        a store with a clean ingest of the same files (tests/test_crash.py, bench/crash.py)."""
        got = self.collection.get(include=["metadatas"])
        texts = self.texts(got["ids"])
        records = {r.doc_id: r for r in self.documents()}
        chunks = sorted((m["source"], m["chunk"], m.get("page"), m["sha256"], texts.get(cid))
                        for cid, m in zip(got["ids"], got["metadatas"]))
        keywords = sorted((records[d].path if d in records else f"orphan {d}", c, t) for d, c, t in self.manifest.keyword_rows())
        return {
            "documents": sorted((r.path, r.sha256, r.chunks) for r in records.values()),
            "chunks": chunks,
            "keywords": keywords,
            "ids_unique": len(set(got["ids"])) == len(got["ids"]),
            "orphans": sorted({m["doc_id"] for m in got["metadatas"]} - set(records)),
            "journal": self.manifest.journal(),
        }

    @contextmanager
    def writing(self, wait: float | None = None, on_wait=None):
        """Hold the store's writer lock (one writer at a time, across processes) and, against a
        Chroma server, its lease (one writer at a time across instances: lease.py)."""
        with writer_lock(self.settings.lock_path, wait=wait, on_wait=on_wait):
            if self.settings.chroma_url:
                lease = Lease(self.manifest.catalog, self.manifest.instance, self.settings.chroma_lease_s)
                with store_errors(self.settings):  # the server down: StoreUnreachable, as for any call
                    self.lease = lease.acquire(wait, on_wait)
            try:
                if self._refresh() | self.manifest.refresh():  # another process wrote, or rebuilt it
                    self.__dict__.pop("collection", None)
                self.clean_rebuilds()
                yield
            finally:
                if not self.settings.chroma_url:
                    saw_generation(self.settings.chroma_path, self.manifest.generation())
                if self.lease is not None:
                    self.lease.release()
                    self.lease = None

    def check_writer(self):
        """Before each write to Chroma: this instance must still hold the shared server's lease."""
        if self.lease is not None:
            self.lease.check()

    def sweep(self) -> int:
        """Delete chunks that no file record names, and every instance's journal entries: run by a
        writer that took the lease over from one that died mid-write (nothing else writes meanwhile).
        Returns the number of chunks deleted."""
        live = {r.doc_id for r in self.documents()}
        orphans: list[str] = []
        offset = 0
        while True:
            got = self.collection.get(include=["metadatas"], limit=MAX_BATCH, offset=offset)
            orphans += [cid for cid, m in zip(got["ids"], got["metadatas"]) if m["doc_id"] not in live]
            if len(got["ids"]) < MAX_BATCH:
                break
            offset += MAX_BATCH
        for i in range(0, len(orphans), MAX_BATCH):
            self.check_writer()
            self.collection.delete(ids=orphans[i : i + MAX_BATCH])
        self.manifest.clear_journals()
        return len(orphans)

    def _refresh(self) -> bool:
        if self.settings.chroma_url:  # a server's answers are always current
            return False
        if drop_stale_view(self.settings.chroma_path, self.manifest.generation()):
            self.__dict__.pop("store", None)
            return True
        return False

    def drop(self):
        """Delete the whole collection: its vectors and its manifest entries (not the files)."""
        self.store.drop(self.physical)
        self.manifest.drop_collection()
        self.__dict__.pop("collection", None)

    def clean_rebuilds(self):
        """Remove what a rebuild cut short left beside the collection (its rows, its vectors), or the
        collection a finished rebuild replaced, when a crash came before it was deleted."""
        if self.manifest.pinned:
            return
        for physical in self.manifest.rebuilds():
            self.manifest.drop_rows(physical)
        for name in self.store.names():
            if name != self.physical and (name == self.name or is_rebuild_of(name, self.name)):
                self.store.drop(name)

    def close(self):
        self.manifest.close()
