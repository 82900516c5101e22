"""Incremental, crash-safe sync of files and folders into a Library.

    plan     stat every file; unchanged size+mtime is skipped without reading it, otherwise the
             content hash decides: same content (touch), changed, new, moved/renamed, or a copy
    parse    load + chunk, in a child process with time and memory limits (reader.py), driven by a
             worker thread that runs ahead of the embedder; a PDF's chunks come page by page
    embed    in groups of GROUP_CHUNKS chunks, so small files share batches and big ones start early
    write    Chroma, under the manifest's journal (see manifest/ for the protocol)
"""

from __future__ import annotations

import hashlib
import os
import queue
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable

from . import loaders, reader
from .chunking import Chunk, Chunker, ChunkSpec, check_sizes
from .library import Library
from .manifest import REBUILD_MARK, FileRecord
from .store import store_errors

GROUP_CHUNKS = 256  # chunks embedded and written at a time; small files share a group
LOOKAHEAD = 4  # files read ahead of the embedder
QUEUED_PARTS = 16  # parts (a PDF's 32 pages, or a small file) waiting for the embedder, at most
IGNORED_PREFIXES = (".", "~$", ".~lock")
IGNORED_SUFFIXES = (".swp", ".swx", ".tmp", ".part", ".crdownload", ".partial", ".download", "~")


def is_ignored(name: str) -> bool:
    """Hidden, temporary, lock and partial-download files are never ingested."""
    return name.startswith(IGNORED_PREFIXES) or name.lower().endswith(IGNORED_SUFFIXES)


@dataclass
class FileResult:
    path: str
    status: str  # added | updated | moved | copied | removed | failed | skipped
    chunks: int = 0
    reason: str = ""  # why it failed, or notes worth telling
    previous: str = ""  # the old path of a moved file


@dataclass
class Report:
    results: list[FileResult] = field(default_factory=list)
    unchanged: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("parse", "chunk", "embed", "write"), 0.0))
    repaired: int = 0  # journal entries left by an interrupted run, cleaned up first

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failures(self) -> list[FileResult]:
        return [r for r in self.results if r.status in ("failed", "skipped")]

    @property
    def chunks_added(self) -> int:
        return sum(r.chunks for r in self.results if r.status in ("added", "updated", "copied"))

    @property
    def processed(self) -> int:
        return self.unchanged + sum(1 for r in self.results if r.status not in ("failed", "skipped"))

    def exit_code(self, strict: bool = False) -> int:
        if self.failures and (strict or self.processed == 0):
            return 1
        return 0


@dataclass
class _Job:
    path: str
    stat: os.stat_result
    sha256: str
    old: FileRecord | None = None  # the record this file replaces (same path, other content)
    source: FileRecord | None = None  # an identical live document whose vectors can be copied


@dataclass
class _Parsed:
    job: _Job
    chunks: list[Chunk] = field(default_factory=list)
    pages: int | None = None
    notes: str = ""
    error: str = ""
    doc_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    journaled: bool = False  # its "add" journal entry is written: chunks may be in the store


def _megabytes(size: int) -> str:
    mb = size / 2**20
    return f"{mb:,.0f} MB" if mb >= 100 else f"{mb:.3g} MB"


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _unchanged(rec: FileRecord, found: dict) -> bool:
    st = found.get(rec.path)
    if st is None:
        try:
            st = os.stat(rec.path)
        except OSError:
            return False
    return (st.st_size, st.st_mtime_ns) == (rec.size, rec.mtime_ns)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Ingestor:
    def __init__(self, library: Library, progress: Callable[[str, int, int, int], None] | None = None):
        """progress(path, files_done, files_total, chunks_embedded) is called as work advances."""
        self.lib = library
        self.files, self.journal = library.files, library.journal
        self.progress = progress or (lambda *a: None)
        self.embedded = 0  # chunks embedded by this Ingestor

    # --- public API -----------------------------------------------------------------------------
    def sync(self, paths: Iterable[str | os.PathLike], force: bool = False) -> Report:
        """Make the collection hold exactly the supported files under `paths` (files or folders).

        force=True re-reads and re-embeds every file found, changed or not (the app's "re-index").
        A full disk raises StoreWriteError; the journal undoes the half-written group on the next run.
        """
        with store_errors(self.lib.settings):
            return self._sync(paths, force)

    def _sync(self, paths, force: bool) -> Report:
        report, started = Report(), time.perf_counter()
        report.repaired = self.repair()
        found, roots, missing_args = self._scan([os.path.abspath(p) for p in paths])
        records = self.files.records()
        if self.files.model() is not None:
            self.lib.check_model()

        # Only this instance's own documents can be gone: against a shared server, another machine's
        # files under the same path are not on this one to be seen (catalog.py).
        gone = {p: r for p, r in records.items() if p not in found and any(_under(p, root) for root in roots)
                and self._own(r)}
        for arg in missing_args:
            if not any(_under(p, arg) for p in records):
                report.results.append(FileResult(arg, "failed", reason="no such file or folder"))
        jobs, moves = self._plan(found, records, gone, report, force)
        for old_path, new_path, stat in moves:
            self._move(records[old_path], new_path, stat, report)
            gone.pop(old_path, None)
        for path, rec in gone.items():
            self._delete(rec)
            report.results.append(FileResult(path, "removed", rec.chunks))
        self._ingest(jobs, report)
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, paths: Iterable[str | os.PathLike]) -> list[FileResult]:
        """Forget the files at or under `paths` (the files themselves are untouched)."""
        with store_errors(self.lib.settings):
            return self._remove(paths)

    def _remove(self, paths) -> list[FileResult]:
        self.repair()
        roots = [os.path.abspath(p) for p in paths]
        removed = []
        for path, rec in self.files.records().items():
            if any(_under(path, r) for r in roots):
                self._delete(rec)
                removed.append(FileResult(path, "removed", rec.chunks))
        for path in self.files.problems():
            if any(_under(path, r) for r in roots):
                self.files.clear_problem(path)
        return removed

    def _own(self, rec: FileRecord) -> bool:
        return rec.owner is None or rec.owner == self.files.owner

    def repair(self) -> int:
        """Undo whatever an interrupted run left half-done. Returns the number of entries repaired.
        Having taken a shared server's lease from a writer that died, sweep what it left too."""
        if self.lib.lease is not None and self.lib.lease.took_over:
            self.lib.lease.took_over = False
            swept = self.lib.sweep()
            if swept:
                return swept
        entries = self.journal.entries()
        if not entries:
            return 0
        # A journalled doc that a file record names is live whatever the entry says: with a Chroma
        # server's catalog the record and the entry change in two calls (catalog.py), and a crash
        # between them must not cost a live document its chunks.
        live = self.files.live_doc_ids([doc for doc, _ in entries])
        for doc_id, op in entries:
            self.lib.check_writer()
            if doc_id not in live:
                self.lib.delete_doc(doc_id)
            self.journal.done(doc_id, op)
        return len(entries)

    # --- plan -----------------------------------------------------------------------------------
    def _scan(self, args: list[str]):
        found: dict[str, os.stat_result] = {}
        roots, missing = [], []
        for arg in args:
            if os.path.isdir(arg):
                roots.append(arg)
                self._walk(arg, found)
            elif os.path.isfile(arg):
                roots.append(arg)
                found[arg] = os.stat(arg)
            else:
                roots.append(arg)  # whatever was indexed there is gone
                missing.append(arg)
        return found, roots, missing

    def _walk(self, folder: str, found: dict):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if is_ignored(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    self._walk(entry.path, found)
                elif entry.is_file(follow_symlinks=False) and loaders.is_supported(entry.name):
                    found[entry.path] = entry.stat(follow_symlinks=False)
            except OSError:
                continue

    def _plan(self, found, records, gone, report, force=False):
        problems = self.files.problems()
        limit = int(self.lib.settings.max_file_mb * 1024 * 1024)
        by_hash: dict[str, list[FileRecord]] = {}
        for rec in records.values():
            by_hash.setdefault(rec.sha256, []).append(rec)
        moved_away: set[str] = set()
        jobs, moves = [], []
        for path, st in sorted(found.items()):
            rec = records.get(path)
            if not force and rec and rec.size == st.st_size and rec.mtime_ns == st.st_mtime_ns:
                report.unchanged += 1
                continue
            known = problems.get(path)
            if not force and not rec and known and known[1:] == (st.st_size, st.st_mtime_ns):
                report.results.append(FileResult(path, "skipped", reason=f"{known[0]} (unchanged since)"))
                continue
            if st.st_size > limit:
                self._fail(report, path, st, f"too large: {_megabytes(st.st_size)}, over the "
                           f"{self.lib.settings.max_file_mb:g} MB limit (HEARTH_MAX_FILE_MB)")
                continue
            self._reader.spawn()  # likely new or changed: the reader imports its parsers while we hash
            try:
                sha = file_sha256(path)
            except OSError as exc:
                self._fail(report, path, st, f"cannot read: {exc.strerror or exc}")
                continue
            if force:
                jobs.append(_Job(path, st, sha, old=rec))
                continue
            if rec and rec.sha256 == sha:  # touched, not changed
                self.files.touch(rec, st.st_size, st.st_mtime_ns)
                report.unchanged += 1
                continue
            same = [r for r in by_hash.get(sha, ()) if r.path not in moved_away]
            # Moved or renamed: identical content whose old path is gone (this sync's folders or any other).
            origin = next((r for r in same if r.path in gone or (self._own(r) and r.path not in found
                                                                  and not os.path.exists(r.path))), None)
            if not rec and origin is not None:
                moved_away.add(origin.path)
                moves.append((origin.path, path, st))
                continue
            # A copy of a document that is still there unchanged (in this sync's folders or elsewhere, as
            # when one file is added on its own): its vectors are copied, not recomputed.
            twin = next((r for r in same if _unchanged(r, found)), None)
            jobs.append(_Job(path, st, sha, old=rec, source=twin))
        return jobs, moves

    def _fail(self, report, path, st, reason):
        report.results.append(FileResult(path, "failed", reason=reason))
        self.files.put_problem(path, reason, st.st_size if st else None, st.st_mtime_ns if st else None)

    # --- moves and deletes: no embedding needed --------------------------------------------------
    def _move(self, rec: FileRecord, new_path: str, st, report):
        t = time.perf_counter()
        self.lib.check_writer()
        self.lib.move_chunks(rec.doc_id, rec.chunks, new_path, os.path.basename(new_path))  # Chroma first: redone next run
        with self.lib.transaction():
            self.files.delete(rec.path)
            self.files.put(FileRecord(new_path, rec.doc_id, st.st_size, st.st_mtime_ns, rec.sha256,
                                      rec.chunks, rec.pages, rec.notes, time.time(), self.files.owner))
            self.files.clear_problem(new_path)
        report.timings["write"] += time.perf_counter() - t
        report.results.append(FileResult(new_path, "moved", rec.chunks, previous=rec.path))

    def _delete(self, rec: FileRecord):
        with self.lib.transaction():
            self.files.delete(rec.path)
            self.lib.keywords.delete(rec.doc_id)
            if self.lib.keeps_texts and not self.files.live_doc_ids([rec.doc_id]):  # see _delete_chunks
                self.lib.chunk_texts.delete(rec.doc_id)
            self.journal.add(rec.doc_id, "delete")
        self._delete_chunks(rec.doc_id, rec.chunks)

    def _delete_chunks(self, doc_id: str, n: int):
        if not self.files.live_doc_ids([doc_id]):  # named by another path: a move a crash cut short
            self.lib.check_writer()
            self.lib.delete_chunks(doc_id, n)
        self.journal.done(doc_id, "delete")

    # --- new and changed files ------------------------------------------------------------------
    def _ingest(self, jobs: list[_Job], report: Report):
        """Files are read (and chunked) by a worker thread driving the reader process; their chunks
        reach this thread part by part, so a long PDF is embedded while it is still being read and
        small files share batches. Each batch of GROUP_CHUNKS is embedded and written under the
        journal; a file's record is written once all its chunks are (see _flush)."""
        if not jobs:
            return
        self.lib.collection  # open (and check) the store and the chunk sizes before any work
        self.chunk_spec
        events: queue.Queue = queue.Queue(QUEUED_PARTS)  # the reader waits while the embedder catches up
        queued = threading.Semaphore(LOOKAHEAD)  # files read ahead of the embedder
        stop = threading.Event()
        worker = threading.Thread(target=self._read_files, args=(jobs, events, queued, stop, report.timings),
                                  name="hearth-read", daemon=True)
        worker.start()
        waiting: list[tuple[_Parsed, Chunk]] = []  # chunks to embed, in order
        finished: list[_Parsed] = []  # files read whole, waiting for their record
        state = {"done": 0, "total": len(jobs)}
        try:
            for _ in range(len(jobs)):
                while True:
                    kind, parsed, chunks = events.get()
                    if kind == "crash":
                        raise chunks
                    if kind != "chunks":
                        break
                    parsed.chunks += chunks
                    waiting += [(parsed, c) for c in chunks]
                    if len(waiting) >= GROUP_CHUNKS:
                        self._flush(waiting, finished, report, state)
                queued.release()
                if kind == "error":
                    self._fail(report, parsed.job.path, parsed.job.stat, parsed.error)
                    self._forget(parsed, waiting)
                    state["done"] += 1
                    self.progress(parsed.job.path, state["done"], state["total"], self.embedded)
                    continue
                finished.append(parsed)
                if len(waiting) >= GROUP_CHUNKS or len(finished) >= GROUP_CHUNKS:
                    self._flush(waiting, finished, report, state)
            self._flush(waiting, finished, report, state)
        finally:
            stop.set()
            queued.release()  # a worker waiting for room sees `stop`
            worker.join()

    def _read_files(self, jobs, events: queue.Queue, queued: threading.Semaphore, stop: threading.Event, timings):
        try:
            for job in jobs:
                queued.acquire()
                if stop.is_set():
                    return
                parsed = _Parsed(job)
                if job.source is None:  # else its vectors are copied from the identical document
                    parsed.error = self._read(parsed, lambda e: _put(events, e, stop), timings)
                _put(events, ("error" if parsed.error else "read", parsed, None), stop)
        except _Stopped:
            return
        except BaseException as exc:  # a bug, not a bad file: raised again in the ingesting thread
            _put(events, ("crash", None, exc), stop)

    def _read(self, parsed: _Parsed, put, timings) -> str:
        """Read one file, passing its chunks on as they come; the reason it failed, or ''."""
        t = time.perf_counter()
        spec, got, s = self.chunk_spec, [0], self.lib.settings

        def on_chunks(chunks):
            got[0] += len(chunks)
            put(("chunks", parsed, chunks))

        try:
            loaded = self._reader.load(parsed.job.path, spec, on_chunks, s.max_file_chars, s.max_file_chunks)
        except loaders.LoadError as exc:
            return str(exc)
        finally:
            timings["parse"] += time.perf_counter() - t
        if spec is None:  # a model without a tokenizer.json: chunked here, with the loaded model
            t = time.perf_counter()
            on_chunks(self._local_chunker.chunk(loaded.sections))
            timings["chunk"] += time.perf_counter() - t
        parsed.pages, parsed.notes = loaded.pages, "; ".join(loaded.notes)
        return "" if got[0] else "no text found in the file"

    def _forget(self, parsed: _Parsed, waiting: list):
        """A file that failed part-way: its chunks not yet embedded are dropped; any already written
        are deleted (its journal entry, if it has one, would also have them deleted after a crash)."""
        waiting[:] = [(p, c) for p, c in waiting if p is not parsed]
        if parsed.journaled:
            self.lib.delete_doc(parsed.doc_id)
            self.journal.done(parsed.doc_id, "add")

    @property
    def _reader(self) -> reader.Reader:
        return reader.shared(self.lib.settings.parse_timeout, self.lib.settings.parse_memory_mb)

    @cached_property
    def _local_chunker(self) -> Chunker:
        """For a model whose tokenizer needs the model itself: made once, as before chunking moved out."""
        s = self.lib.settings
        return Chunker(s.chunk_size, s.chunk_overlap, self.lib.embedder.tokenize)

    @cached_property
    def chunk_spec(self) -> ChunkSpec | None:
        """How the reader process chunks each file; None when the model's tokenizer needs the model."""
        s, embedder = self.lib.settings, self.lib.embedder
        limit = embedder.max_tokens - 2  # room for [CLS] and [SEP]
        if s.chunk_size > limit:
            raise ValueError(f"chunk_size {s.chunk_size} is more than {embedder.name} reads ({limit})")
        if embedder.tokenizer_file is None:
            check_sizes(s.chunk_size, s.chunk_overlap)
            return None
        return ChunkSpec(s.chunk_size, s.chunk_overlap, embedder.tokenizer_file)

    def _flush(self, waiting: list, finished: list, report: Report, state: dict):
        """Embed and write the waiting chunks, then the records of the files read whole, following
        the journal protocol: a doc's journal entry is written before its first chunk."""
        new = {id(p): p for p, _ in waiting} | {id(p): p for p in finished}
        new = [p for p in new.values() if not p.journaled]
        if new:
            with self.lib.transaction():
                for p in new:
                    self.journal.add(p.doc_id, "add")
                    p.journaled = True
        self.lib.check_writer()
        for i in range(0, len(waiting), GROUP_CHUNKS):
            batch = waiting[i : i + GROUP_CHUNKS]
            t = time.perf_counter()
            vectors = self.lib.embedder.embed([c.text for _, c in batch])
            report.timings["embed"] += time.perf_counter() - t
            self.embedded += len(batch)
            self.progress(batch[-1][0].job.path, state["done"], state["total"], self.embedded)
            t = time.perf_counter()
            self.lib.add_chunks([p.doc_id for p, _ in batch], [c.index for _, c in batch], vectors,
                                [_chunk_metadata(p, c) for p, c in batch], [c.text for _, c in batch])
            report.timings["write"] += time.perf_counter() - t
        waiting.clear()
        if not finished:
            return
        t = time.perf_counter()
        self.lib.check_writer()
        lib = self.lib
        for p in finished:
            if p.job.source is not None:  # an identical document's vectors, copied
                lib.copy_chunks(p.job.source.doc_id, p.job.source.chunks, p.doc_id,
                                {"source": p.job.path, "filename": os.path.basename(p.job.path)})
        with lib.transaction():
            for p in finished:
                job = p.job
                n = len(p.chunks) if job.source is None else job.source.chunks
                pages = p.pages if job.source is None else job.source.pages
                self.files.put(FileRecord(job.path, p.doc_id, job.stat.st_size, job.stat.st_mtime_ns, job.sha256, n,
                                          pages, p.notes or None, time.time(), self.files.owner))
                self.journal.done(p.doc_id, "add")
                self.files.clear_problem(job.path)
                if job.source is None:
                    texts = [(c.index, c.text) for c in p.chunks]
                    lib.keywords.add(p.doc_id, texts)
                    if lib.keeps_texts:
                        lib.chunk_texts.add(p.doc_id, texts)
                else:
                    lib.keywords.copy(job.source.doc_id, p.doc_id)
                    if lib.keeps_texts:
                        lib.chunk_texts.copy(job.source.doc_id, p.doc_id)
                if job.old is not None:
                    self.journal.add(job.old.doc_id, "delete")
                    lib.keywords.delete(job.old.doc_id)
                    if lib.keeps_texts:
                        lib.chunk_texts.delete(job.old.doc_id)
        for p in finished:
            if p.job.old is not None:
                self._delete_chunks(p.job.old.doc_id, p.job.old.chunks)
        report.timings["write"] += time.perf_counter() - t
        for p in finished:
            status = "copied" if p.job.source else ("updated" if p.job.old else "added")
            n = len(p.chunks) if p.job.source is None else p.job.source.chunks
            report.results.append(FileResult(p.job.path, status, n, reason=p.notes))
            state["done"] += 1
            self.progress(p.job.path, state["done"], state["total"], self.embedded)
        finished.clear()

class _Stopped(Exception):
    """The ingest ended (an error in the embedding thread) while the reader waited to hand over."""


def _put(events: queue.Queue, event, stop: threading.Event):
    while True:
        try:
            return events.put(event, timeout=0.2)
        except queue.Full:
            if stop.is_set():
                raise _Stopped from None


def _chunk_metadata(p: _Parsed, c: Chunk) -> dict:
    meta = {
        "doc_id": p.doc_id,
        "source": p.job.path,
        "filename": os.path.basename(p.job.path),
        "sha256": p.job.sha256,
        "chunk": c.index,
        "start": c.start,
        "end": c.end,
    }
    if c.page is not None:
        meta["page"] = c.page
    if c.heading:
        meta["section"] = c.heading[:500]
    return meta


def rebuild(lib: Library, paths: Iterable[str | os.PathLike] = (), progress=None) -> Report:
    """`hearth ingest --reembed`: every document of the collection (and `paths`) embedded again with
    the configured model, into a new Chroma collection and manifest rows beside the old ones, then
    switched to in one manifest transaction. Until then searches use the old collection; a crash at
    any point leaves one whole collection, and the next write removes what the other left
    (Library.clean_rebuilds). Call it holding lib.writing()."""
    target = f"{lib.name}{REBUILD_MARK}{secrets.token_hex(4)}"
    build = Library(lib.settings, lib.name, physical=target)
    build.embedder, build.lease = lib.embedder, lib.lease
    try:
        wanted = [rec.path for rec in lib.documents()] + [os.path.abspath(p) for p in paths]
        report = Ingestor(build, progress).sync(list(dict.fromkeys(wanted)))
        with store_errors(lib.settings):
            lib.swap_to(build)
    finally:
        build.close()
    return report
