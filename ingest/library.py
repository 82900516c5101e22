"""A Library is one opened collection: its records (manifest/), its vectors (Chroma) and its
embedding model, behind one interface. Every Chroma call and the chunk id format live here and in
the two implementations, which hold what differs:

    local_library.py   LocalLibrary: Chroma embedded under HEARTH_HOME, the manifest in SQLite beside
                       it, chunk texts in the manifest, one writer per store (a lock file)
    server_library.py  ServerLibrary: a Chroma server (HEARTH_CHROMA_URL) shared by several instances,
                       the manifest's files and journal in the server, texts in Chroma, a lease across
                       instances

Library is an abstract base: `libraries.open_library(settings, collection)` picks the implementation
the settings call for. Everything heavy (torch, Chroma) is opened on first use, so cheap operations
stay cheap.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from typing import TYPE_CHECKING

from .embedding import Embedder
from .errors import ModelMismatch
from .lock import writer_lock
from .manifest import FileRecord, is_rebuild_of
from . import language
from .settings import AUTO_MODEL, DEFAULT_EMBED_MODEL, MULTILINGUAL_MODEL, Settings, secure_home
from .store import MAX_BATCH, check_collection_name, mismatch_message

if TYPE_CHECKING:
    from .catalog import CatalogJournal
    from .manifest import Database
    from .manifest.files import Files
    from .manifest.journal import Journal
    from .manifest.keywords import Keywords
    from .manifest.texts import Texts


READ_RETRIES = 3  # a read meeting another process's write is tried again this often (Library._read)
READ_BACKOFF_S = 0.1  # before the first retry; three times longer before each next one
NEAREST_WIDEN_MAX = 64  # nearest() and keyword_search() look at most this many times n deep for n chunks of recorded documents
VIEW_CHECK_S = 1.0  # a long-lived reader looks for other processes' writes at most this often


def chunk_id(doc_id: str, index: int) -> str:
    """A chunk's id in Chroma: its document's id and its place in it."""
    return f"{doc_id}:{index}"


def split_id(cid: str) -> tuple[str, int]:
    doc, _, index = cid.rpartition(":")
    return doc, int(index)


def _batches(items: list, size: int = MAX_BATCH):
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Library(ABC):
    """One opened collection (see the module's docstring); open one with libraries.open_library."""

    keeps_texts = False  # chunk texts live in the manifest (local), not in Chroma (a server's store)
    # What each implementation's __init__ opens: the local SQLite file (the manifest, or a server's
    # keyword cache), the collection's file records, its journal of writes in flight, its keyword index.
    db: "Database"
    files: "Files"
    journal: "Journal | CatalogJournal"
    keywords: "Keywords"
    chunk_texts: "Texts"  # where keeps_texts: the passages' texts, kept in the manifest

    def __init__(self, settings: Settings, collection: str | None = None, physical: str | None = None):
        """`physical` opens a rebuild of the collection being written beside it (pipeline.rebuild)."""
        self.settings = settings
        self.name = check_collection_name(collection or settings.collection)
        secure_home(settings.home)  # before anything is written in it (the manifest, next)
        self.lease = None  # a shared server's writer lease, while writing
        self._embedder: Embedder | None = None
        self._chosen: str | None = None  # the model chosen for a new collection by its documents' language
        self._recorded: tuple[str, str] | None = None  # (physical name, its recorded model), once read
        self._view_due = 0.0  # when _read next looks whether other processes wrote (monotonic clock)

    # --- what differs between the two ------------------------------------------------------------
    @abstractmethod
    def _connect(self):
        """A Chroma client for this library's store (embedded, or over HTTP)."""

    @cached_property
    def client(self):
        return self._connect()

    @abstractmethod
    def _compact_store(self):
        """Give back the disk the vector store keeps after deletions (compact())."""

    @abstractmethod
    def _store_free_bytes(self) -> int:
        """Bytes _compact_store would give back, about."""

    def _texts_elsewhere(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """Texts the manifest does not hold (LocalLibrary: none, unless written before they moved)."""
        return {}

    @contextmanager
    def _writer(self, wait, on_wait):
        """One writer at a time: a lock file (and a lease, against a server)."""
        with writer_lock(self.settings.lock_path, wait=wait, on_wait=on_wait):
            yield

    def _view_changed(self) -> bool:
        """Whether this process's view of Chroma was reopened to see other processes' writes."""
        return False

    def _wrote(self):
        """Called after writing, still under the writer lock."""

    def _transient(self, exc: BaseException) -> bool:
        """A read error that another process's write in flight explains (tried again on a reopened view)."""
        return False

    def _reopen(self):
        """Drop this process's view of the store: the next call opens it afresh."""
        self.__dict__.pop("collection", None)

    # --- space -----------------------------------------------------------------------------------
    def disk_bytes(self) -> int:
        """Bytes this library's files take under HEARTH_HOME (the store and the manifest)."""
        return sum(f.stat().st_size for f in Path(self.settings.home).rglob("*") if f.is_file())

    def free_bytes(self) -> int:
        """Bytes compact() would give back, about (pages SQLite keeps free, write-ahead logs)."""
        return self.db.free_bytes() + self._store_free_bytes()

    def compact(self) -> tuple[int, int]:
        """Give back the disk that deletions and re-adds left in the manifest and the store, under
        the writer lock (call within writing()). Returns (bytes before, bytes after)."""
        before = self.disk_bytes()
        self.db.compact()
        self._compact_store()
        return before, self.disk_bytes()

    # --- the collection --------------------------------------------------------------------------
    @property
    def embed_model(self) -> str | None:
        """The model this collection's vectors are made with: the one it recorded; else the configured
        one; else (HEARTH_EMBED_MODEL=auto) the one its first documents chose, None until then."""
        if self._recorded is None or self._recorded[0] != self.files.collection:  # none yet, or rebuilt
            model = self.files.model()
            self._recorded = (self.files.collection, model[0]) if model else None
        if self._recorded is not None:
            return self._recorded[1]
        return self._chosen if self.settings.embed_model == AUTO_MODEL else self.settings.embed_model

    def choose_model(self, languages: list[str]):
        """Choose a new collection's model from its first documents' languages: MiniLM (better on
        English, 6x faster) unless most of them are in another language (docs/decisions.md)."""
        self._chosen = DEFAULT_EMBED_MODEL if language.mostly_english(languages) else MULTILINGUAL_MODEL

    def set_model(self, model: str):
        """Record `model` as this new collection's (one that holds a model already must match it)."""
        wanted = (model, Embedder.from_settings(self.settings, model).dimension)
        stored = self.files.model()
        if stored is not None and tuple(stored) != wanted:
            raise ModelMismatch(mismatch_message(self.name, stored, wanted))
        self.files.set_model(*wanted)

    @property
    def embedder(self) -> Embedder:
        name = self.embed_model or DEFAULT_EMBED_MODEL  # a query before any document: nothing to find
        if self._embedder is None or self._embedder.name != name:
            self._embedder = Embedder.from_settings(self.settings, name)
        return self._embedder

    @embedder.setter
    def embedder(self, embedder: Embedder):
        """Share a loaded model (the app's); used while it is the collection's own."""
        self._embedder = embedder

    @property
    def physical(self) -> str:
        """The name its rows and Chroma collection are stored under (see manifest/)."""
        return self.files.collection

    @property
    def folder(self):
        """Where files added through the app are stored: <library folder>/<collection>."""
        return self.settings.library_dir / self.name

    def transaction(self):
        """One atomic change of the manifest's parts (files, journal, texts)."""
        return self.db.transaction()

    @cached_property
    def collection(self):
        """The Chroma collection (created on first use, with this library's model recorded)."""
        self._view_changed()
        self.check_model()
        model = self.embed_model or DEFAULT_EMBED_MODEL
        dimension = self.embedder.dimension
        col = self.client.get_or_create_collection(
            self.physical, configuration={"hnsw": {"space": "cosine"}},
            metadata={"hearth_embed_model": model, "hearth_dimension": dimension},
            embedding_function=None,  # we always pass vectors; Chroma's default would download a model
        )
        meta = col.metadata or {}
        stored = (meta.get("hearth_embed_model"), meta.get("hearth_dimension"))
        if stored != (model, dimension):
            raise ModelMismatch(mismatch_message(self.name, stored, (model, dimension)))
        if self.files.model() is None:
            self.files.set_model(model, dimension)
        return col

    def check_model(self):
        """Refuse to mix models: a model configured by name must be the one the collection was built
        with (HEARTH_EMBED_MODEL=auto takes the collection's own)."""
        stored = self.files.model()
        if stored is None or self.settings.embed_model == AUTO_MODEL:
            return
        wanted = (self.settings.embed_model, Embedder.from_settings(self.settings).dimension)
        if tuple(stored) != wanted:
            raise ModelMismatch(mismatch_message(self.name, stored, wanted))

    def documents(self) -> list[FileRecord]:
        return list(self.files.records().values())

    # --- chunks: every Chroma call ----------------------------------------------------------------
    def count(self) -> int:
        return self._read(lambda col: col.count())

    def add_chunks(self, doc_ids: list[str], indices: list[int], vectors, metadatas: list[dict], texts: list[str]):
        """Write chunks (the manifest keeps a local store's texts: see pipeline._flush)."""
        self.collection.add(ids=[chunk_id(d, i) for d, i in zip(doc_ids, indices)], embeddings=vectors,
                            documents=None if self.keeps_texts else texts, metadatas=metadatas)

    def delete_chunks(self, doc_id: str, n: int):
        self.delete_chunks_of([(doc_id, n)])

    def delete_chunks_of(self, docs: list[tuple[str, int]]):
        """The chunks of many documents ((doc id, chunk count) each), in as few calls as Chroma takes,
        and their keyword rows."""
        for batch in _batches([chunk_id(doc_id, i) for doc_id, n in docs for i in range(n)]):
            self.collection.delete(ids=batch)
        self._delete_keywords([doc_id for doc_id, _ in docs])

    def delete_doc(self, doc_id: str):
        """Every chunk of a document, however many were written, and its keyword rows."""
        self.collection.delete(where={"doc_id": doc_id})
        self._delete_keywords([doc_id])

    def _delete_keywords(self, doc_ids: list[str]):
        with self.keywords.batch():
            for doc_id in doc_ids:
                self.keywords.delete(doc_id)

    def move_chunks(self, doc_id: str, n: int, path: str, filename: str):
        meta = {"source": path, "filename": filename}
        for batch in _batches([chunk_id(doc_id, i) for i in range(n)]):
            self.collection.update(ids=batch, metadatas=[meta] * len(batch))

    def copy_chunks(self, doc_id: str, n: int, new_doc: str, changes: dict):
        """The vectors of an identical document under a new doc id, its metadata changed by `changes`."""
        for batch in _batches([chunk_id(doc_id, i) for i in range(n)]):
            got = self.collection.get(ids=batch, include=["embeddings", "documents", "metadatas"])
            # A local store's texts are copied with the record (Texts.copy); Chroma holds texts only
            # for a server's store, or a local one written before they moved.
            texts = got["documents"] if any(doc is not None for doc in got["documents"]) else None
            self.collection.add(ids=[chunk_id(new_doc, split_id(cid)[1]) for cid in got["ids"]],
                                embeddings=got["embeddings"], documents=texts,
                                metadatas=[{**m, "doc_id": new_doc, **changes} for m in got["metadatas"]])

    def _read(self, call):
        """call(collection) on a view of the store that includes what other processes have written
        (a long-lived reader: the app, `hearth search -`, `hearth api`, MCP, beside `hearth ingest`).
        A read that meets another process's write in flight is tried again on a reopened view, up to
        READ_RETRIES times, before its error is raised (docs/decisions.md, issue 40)."""
        for attempt in range(READ_RETRIES + 1):
            if time.monotonic() >= self._view_due:  # reopening loads the whole index: not at every read
                self._view_due = time.monotonic() + VIEW_CHECK_S
                if self._view_changed():
                    self.__dict__.pop("collection", None)
            try:
                return call(self.collection)
            except Exception as exc:
                if attempt == READ_RETRIES or not self._transient(exc):
                    raise
                self._reopen()
                time.sleep(READ_BACKOFF_S * 3 ** attempt)

    def nearest(self, vector, n: int, docs: list[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the n nearest chunks of live documents (of `docs` only,
        when given: doc ids)."""
        where = {"doc_id": {"$in": list(docs)}} if docs else None

        def nearest_rows(k: int):
            got = self._read(lambda col: col.query(query_embeddings=[vector], n_results=k, where=where,
                                                   include=["metadatas", "distances"]))
            ids, metas, dists = got["ids"][0], got["metadatas"][0], got["distances"][0]
            return [(m.get("doc_id"), cid, 1.0 - d) for cid, m, d in zip(ids, metas, dists)]

        return self._of_live_documents(nearest_rows, n)

    def keyword_search(self, match: str, n: int, docs: list[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) of the n best chunks of live documents for a query of quoted words
        joined by OR (in `docs` only, when given)."""
        return self._of_live_documents(
            lambda k: [(doc, chunk_id(doc, i), score) for doc, i, score in self.keywords.search(match, k, docs)], n)

    def _of_live_documents(self, best, n: int) -> list[tuple[str, float]]:
        """The first n (chunk id, score) of best(k)'s (doc id, chunk id, score) rows whose document a
        file record names. Chunks of a document whose write was interrupted, is still being written by
        another process, or was forgotten and not yet deleted are never shown; when they fill the top
        (an ingest in flight beside a reader), look further, within reason."""
        asked = n
        while True:
            rows = best(asked)
            live = self.files.live_doc_ids({doc for doc, _, _ in rows})
            found = [(cid, score) for doc, cid, score in rows if doc in live]
            if len(found) >= n or len(rows) < asked or asked >= n * NEAREST_WIDEN_MAX:
                return found[:n]
            asked *= 4

    def docs_under(self, paths) -> list[str]:
        """The doc ids of the documents at or under `paths` (files or folders, as given or resolved)."""
        roots = [os.path.realpath(os.path.expanduser(str(p))) for p in paths]
        roots += [os.path.abspath(os.path.expanduser(str(p))) for p in paths]
        return sorted(r.doc_id for r in self.documents()
                      if any(r.path == root or r.path.startswith(root.rstrip(os.sep) + os.sep) for root in roots))

    def chunks(self, ids: list[str], vectors: bool = False) -> dict[str, tuple[str, dict, object]]:
        """{chunk id: (text, metadata, vector or None)} for those of `ids` that exist."""
        if not ids:
            return {}
        got = self._read(lambda col: col.get(ids=ids, include=["metadatas", "embeddings"] if vectors else ["metadatas"]))
        texts = self.texts(got["ids"])
        embeddings = got["embeddings"] if vectors else [None] * len(got["ids"])
        return {cid: (texts.get(cid, ""), meta, emb) for cid, meta, emb in zip(got["ids"], got["metadatas"], embeddings)}

    def texts(self, ids: list[str]) -> dict[str, str]:
        """{chunk id: text}: from the manifest, else from Chroma (a server's store, or a local store
        written before texts moved to the manifest)."""
        keys = [split_id(cid) for cid in ids]
        found = self.chunk_texts.get(keys) if self.keeps_texts else {}
        missing = [cid for cid, key in zip(ids, keys) if key not in found]
        texts = {chunk_id(*key): text for key, text in found.items()}
        if missing:
            got = self._read(lambda col: col.get(ids=missing, include=["documents"]))
            texts.update((cid, doc) for cid, doc in zip(got["ids"], got["documents"]) if doc is not None)
        return texts

    def _all_metadata(self):
        """(chunk id, metadata) of every chunk, a page at a time."""
        offset = 0
        while True:
            got = self.collection.get(include=["metadatas"], limit=MAX_BATCH, offset=offset)
            yield from zip(got["ids"], got["metadatas"])
            if len(got["ids"]) < MAX_BATCH:
                return
            offset += MAX_BATCH

    # --- keyword index ----------------------------------------------------------------------------
    def ensure_keywords(self):
        """Index the documents that the keyword index lacks: a store made before it existed (once;
        later writes keep it up to date), or, against a Chroma server, whatever other instances
        changed since this one last looked. Marked as built even where nothing came of it (a document
        that is all table of contents), so it is not redone on each search."""
        if self.keywords.built() or not self.files.has_files():
            return
        generation = self.files.generation()
        missing = self.keywords.docs_missing()
        with self.keywords.batch():
            for i in range(0, len(missing), 100):
                got = self.collection.get(where={"doc_id": {"$in": missing[i : i + 100]}}, include=["metadatas"])
                texts = self.texts(got["ids"])
                chunks: dict[str, list] = {}
                for cid, meta in zip(got["ids"], got["metadatas"]):
                    chunks.setdefault(meta["doc_id"], []).append((meta["chunk"], texts.get(cid, "")))
                for doc_id, rows in chunks.items():
                    self.keywords.add(doc_id, sorted(rows))
        # Rows of a document forgotten meanwhile are never shown (keyword_search) and go with its chunks.
        with self.db.transaction():
            self.keywords.mark_built(generation)

    # --- writing ----------------------------------------------------------------------------------
    @contextmanager
    def writing(self, wait: float | None = None, on_wait=None):
        """Be the only writer (see _writer) while the block runs; wait=None waits as long as it takes."""
        with self._writer(wait, on_wait):
            try:
                if self._view_changed() | self.files.refresh():  # another process wrote, or rebuilt it
                    self.__dict__.pop("collection", None)
                self.clean_rebuilds()
                yield
            finally:
                self._wrote()

    def check_writer(self):
        """Before each write to Chroma: this instance must still hold the shared server's lease."""
        if self.lease is not None:
            self.lease.check()

    def sweep(self) -> int:
        """Delete chunks that no file record names, and every instance's journal entries: run by a
        writer that took the lease over from one that died mid-write (nothing else writes meanwhile).
        Returns the number of chunks deleted."""
        live = {r.doc_id for r in self.documents()}
        orphans = [cid for cid, meta in self._all_metadata() if meta["doc_id"] not in live]
        for batch in _batches(orphans):
            self.check_writer()
            self.collection.delete(ids=batch)
        self.journal.clear()
        return len(orphans)

    def clean_rebuilds(self):
        """Remove what a rebuild cut short left beside the collection (its rows, its vectors), or the
        collection a finished rebuild replaced, when a crash came before it was deleted."""
        if self.files.pinned:
            return
        for physical in self.files.rebuilds():
            self.files.drop_rows(physical)
            self.keywords.drop(physical)
        if self.files.swept():
            return
        for name in self.chroma_names():
            if name != self.physical and (name == self.name or is_rebuild_of(name, self.name)):
                self.drop_chroma(name)
        for name in self.keywords.folders():
            if name != self.physical and (name == self.name or is_rebuild_of(name, self.name)):
                self.keywords.drop(name)
        self.files.set_swept(True)

    def chroma_names(self) -> list[str]:
        return [c if isinstance(c, str) else c.name for c in self.client.list_collections()]

    def drop_chroma(self, name: str):
        """Delete a Chroma collection; one that is not there is no error, anything else is."""
        from chromadb.errors import NotFoundError

        try:
            self.client.delete_collection(name)
        except NotFoundError:
            pass

    def swap_to(self, build: "Library"):
        """Make the rebuild `build` this collection (pipeline.rebuild), then drop the old vectors."""
        old = self.physical
        self.files.swap_to(build.physical)
        self.__dict__.pop("collection", None)
        self.drop_chroma(old)
        self.keywords.drop(old)

    def drop(self):
        """Delete the whole collection: its vectors and its manifest entries (not the files)."""
        self.drop_chroma(self.physical)
        physical = self.physical
        self.files.drop()
        self.keywords.drop(physical)
        self.__dict__.pop("collection", None)

    # --- checking ---------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """What the collection holds, independent of random doc ids, plus its integrity: for comparing
        a store with a clean ingest of the same files (tests/test_crash.py, bench/crash.py)."""
        metas = list(self._all_metadata())
        texts = self.texts([cid for cid, _ in metas])
        records = {r.doc_id: r for r in self.documents()}
        chunks = sorted((m["source"], m["chunk"], m.get("page"), m["sha256"], texts.get(cid, "")) for cid, m in metas)
        keywords = sorted((records[d].path if d in records else f"orphan {d}", c, t) for d, c, t in self.keywords.rows())
        return {
            "documents": sorted((r.path, r.sha256, r.chunks) for r in records.values()),
            "chunks": chunks,
            "keywords": keywords,
            "ids_unique": len({cid for cid, _ in metas}) == len(metas),
            "orphans": sorted({m["doc_id"] for _, m in metas} - set(records)),
            "journal": self.journal.entries(),
        }

    def close(self):
        self.keywords.close()
        self.db.close()
