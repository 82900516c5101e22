"""Writing new and changed files: read, embed, write to Chroma under the journal.

    read     load + chunk, in a child process with time and memory limits (reader.py), driven by a
             worker thread that runs ahead of the embedder; a PDF's chunks come page by page, through
             a bounded queue
    embed    in groups of GROUP_CHUNKS chunks, so small files share batches and big ones start early
    write    Chroma, under the manifest's journal (see manifest/ for the protocol); a file's record,
             keyword rows and texts once all its chunks are written. A new scan is searchable as it
             is read: every SCAN_RECORD_S its pages so far are written and recorded as a partial
             document (Writer._record_partial), which a later sync finds changed and reads again whole.

Planning what to write (scan, hash, moves, copies, deletes) is pipeline.py's.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from types import SimpleNamespace
from typing import Callable

from . import language, loaders, reader
from .chunking import Chunk, Chunker, ChunkSpec, check_sizes, is_listing
from .library import Library, chunk_id
from .manifest import FileRecord

GROUP_CHUNKS = 256  # chunks embedded and written at a time; small files share a group
LOOKAHEAD = 4  # files read ahead of the embedder
# A new collection left to choose its model (HEARTH_EMBED_MODEL=auto) chooses by the languages of its
# first this many documents: Debian's German reference begins with two chapters left in English.
FIRST_DOCUMENTS = 10
QUEUED_PARTS = 16  # parts (a PDF's 32 pages, or a small file) waiting for the embedder, at most
STOP_CHECK_CHUNKS = 64  # passages embedded between two looks at the stop flag
STORED_BATCH = 1000  # stored passages fetched at a time by rewrite()
STOP_WAIT_S = 1.0  # asked to stop, how long the file being read is waited for before it is cut short
SCAN_RECORD_S = 10.0  # a new scan's pages read so far are made searchable this often (OCR: seconds a page)
PARTIAL = "being read"  # a partial record's note: the pages read so far of a file still being read


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
    missing: dict[str, int] = field(default_factory=dict)  # path given that is not there -> documents kept under it
    stopped: bool = False  # asked to stop (Ctrl-C, the app's Stop): the files left are done by the next run
    left: int = 0  # files that were to be read and embedded and were not, having stopped
    held: dict = field(default_factory=dict)  # folder -> removal.HeldRemoval: removals kept until confirmed

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
class Job:
    path: str
    stat: os.stat_result
    sha256: str
    old: FileRecord | None = None  # the record this file replaces (same path, other content)
    source: FileRecord | None = None  # an identical live document whose vectors can be copied


@dataclass
class _Parsed:
    job: Job
    chunks: list[Chunk] = field(default_factory=list)
    pages: int | None = None
    notes: str = ""
    error: str = ""
    doc_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    journaled: bool = False  # its "add" journal entry is written: chunks may be in the store
    recorded: int = 0  # of its chunks, those a partial record names (searchable while it is read)
    sample: str = ""  # its first text, until its language is told from it
    language: str = ""

    @property
    def new_scan(self) -> bool:
        """A new file (not an update, not a copy) with OCR'd pages: recorded part by part as it is read."""
        return self.job.old is None and self.job.source is None and any(c.ocr for c in self.chunks)

    def unrecorded(self) -> list[tuple[int, str]]:
        """(index, text) of the chunks no partial record names yet: what is still to be indexed."""
        return [(c.index, c.text) for c in self.chunks[self.recorded:]]

    def learn_language(self, chunks: list[Chunk], done: bool = False):
        """Its language, from its first language.SAMPLE_CHARS characters (or all, once read)."""
        if self.language or (not chunks and not done):
            return
        self.sample += " ".join(c.text for c in chunks)[: language.SAMPLE_CHARS]
        if done or len(self.sample) >= language.SAMPLE_CHARS:
            self.language, self.sample = language.detect(self.sample) or "", ""


def megabytes(size: int) -> str:
    mb = size / 2**20
    return f"{mb:,.0f} MB" if mb >= 100 else f"{mb:.3g} MB"


def record_failure(lib: Library, report: Report, path: str, st, reason: str):
    """A file that could not be added: in the report, and kept in the manifest so it is listed and
    not re-read while it is unchanged."""
    report.results.append(FileResult(path, "failed", reason=reason))
    lib.files.put_problem(path, reason, st.st_size if st else None, st.st_mtime_ns if st else None)


def delete_chunks(lib: Library, doc_id: str, n: int):
    """Step 4 of the journal protocol: a replaced or removed document's chunks, then its entry."""
    if not lib.files.live_doc_ids([doc_id]):  # named by another path: a move a crash cut short
        lib.check_writer()
        lib.delete_chunks(doc_id, n)
    lib.journal.done(doc_id, "delete")


class Writer:
    def __init__(self, library: Library, progress: Callable[[str, int, int, int, int], None],
                 stop: threading.Event | None = None):
        """progress(path, files_done, files_total, chunks_embedded, pages_read) is called as work advances
        (also as each part of a long PDF arrives: a scan's pages take seconds each); once `stop` is set,
        the files whose passages are all written are recorded and the rest left."""
        self.lib = library
        self.files, self.journal = library.files, library.journal
        self.progress = progress
        self.stop = stop or threading.Event()
        self.embedded = 0  # chunks embedded by this Writer
        self.pages = 0  # pages of paged documents (PDFs, scans) read by this Writer, counted as they arrive
        self._flushed = time.monotonic()  # when passages were last written

    def _progress(self, path: str, state: dict):
        self.progress(path, state["done"], state["total"], self.embedded, self.pages)

    def spawn_reader(self):
        """Start the reader process now (it imports its parsers while the caller hashes files)."""
        self._reader.spawn()

    def write(self, jobs: list[Job], report: Report):
        """Files are read (and chunked) by a worker thread driving the reader process; their chunks
        reach this thread part by part, so a long PDF is embedded while it is still being read and
        small files share batches. Each batch of GROUP_CHUNKS is embedded and written under the
        journal; a file's record is written once all its chunks are (see _flush)."""
        if not jobs:
            return
        # A new collection left to choose its model (HEARTH_EMBED_MODEL=auto) is opened at its first
        # write, once the first documents' language is known (see _flush); its passages are sized in
        # MiniLM's tokens whichever model wins, so nothing read before the choice is cut again.
        chosen = self.lib.embed_model is not None
        if chosen:
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
            if chosen and any(job.source is None for job in jobs):  # copies need no model
                self.lib.embedder.model  # loaded (or its backend read) while the reader starts, not after
            for _ in range(len(jobs)):
                if self.stop.is_set():
                    raise _Stopped
                while True:
                    kind, parsed, chunks = _get(events, self.stop)
                    if kind == "crash":
                        raise chunks
                    if kind != "chunks":
                        break
                    parsed.chunks += chunks
                    waiting += [(parsed, c) for c in chunks]
                    if pages := len({c.page for c in chunks if c.page is not None}):  # a part holds whole pages
                        self.pages += pages
                        self._progress(parsed.job.path, state)
                    if len(waiting) >= GROUP_CHUNKS or (time.monotonic() - self._flushed >= SCAN_RECORD_S
                                                        and parsed.new_scan):
                        self._flush(waiting, finished, report, state)
                queued.release()
                if kind == "error":
                    record_failure(self.lib, report, parsed.job.path, parsed.job.stat, parsed.error)
                    self._forget(parsed, waiting)
                    state["done"] += 1
                    self._progress(parsed.job.path, state)
                    continue
                finished.append(parsed)
                if len(waiting) >= GROUP_CHUNKS or len(finished) >= GROUP_CHUNKS:
                    self._flush(waiting, finished, report, state)
            self._flush(waiting, finished, report, state, last=True)
        except _Stopped:
            # Files recorded so far stay; those read but not recorded lose what was written of them (at
            # most a group's passages), so the next run finds them new and does them whole.
            for parsed in ({id(p): p for p, _ in waiting} | {id(p): p for p in finished}).values():
                self._forget(parsed, waiting)
            report.stopped, report.left = True, report.left + state["total"] - state["done"]
        finally:
            stop.set()
            queued.release()  # a worker waiting for room sees `stop`
            worker.join(STOP_WAIT_S if report.stopped else None)
            if worker.is_alive():  # reading a long file: asked to stop, it is not waited for
                self._reader.interrupt()
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
            parsed.learn_language(chunks)
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
        parsed.learn_language([], done=True)
        return "" if got[0] else "no text found in the file"

    def _record_partial(self, reading: list[_Parsed]):
        """New scans still being read, their passages so far written: searchable now (keyword rows,
        then a record naming them, as a whole file's). The record's time and hash are no file's, so
        a sync finds it changed and reads the file again whole should this one be cut short."""
        lib = self.lib
        with lib.keywords.batch():
            for p in reading:
                lib.keywords.add(p.doc_id, p.unrecorded(), more=p.recorded > 0)
        with lib.transaction():
            for p in reading:
                pages = len({c.page for c in p.chunks})
                self.files.put(FileRecord(p.job.path, p.doc_id, p.job.stat.st_size, -1, "", len(p.chunks), None,
                                          f"{PARTIAL}: {pages} page(s) so far", time.time(), self.files.owner, None))
                if lib.keeps_texts:
                    lib.chunk_texts.add(p.doc_id, p.unrecorded())
        for p in reading:
            p.recorded = len(p.chunks)

    def _forget(self, parsed: _Parsed, waiting: list):
        """A file that failed part-way: its chunks not yet embedded are dropped; any already written
        are deleted (its journal entry, if it has one, would also have them deleted after a crash),
        and its partial record first, so that nothing is shown of it meanwhile."""
        waiting[:] = [(p, c) for p, c in waiting if p is not parsed]
        if parsed.recorded:
            with self.lib.transaction():
                self.files.delete(parsed.job.path)
                if self.lib.keeps_texts:
                    self.lib.chunk_texts.delete(parsed.doc_id)
            parsed.recorded = 0
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

    def _embed(self, texts: list[str]):
        """The texts' vectors, a slice at a time so that a stop is seen within seconds even on a slow
        model (multilingual-e5 embeds ~8 passages a second on 2 cores)."""
        import numpy as np

        parts = []
        for i in range(0, len(texts), STOP_CHECK_CHUNKS):
            if self.stop.is_set():
                raise _Stopped
            parts.append(self.lib.embedder.embed(texts[i : i + STOP_CHECK_CHUNKS]))
        return np.concatenate(parts)

    def rewrite(self, records: list[FileRecord], source: Library, report: Report) -> list[FileRecord]:
        """Documents written again from the passages `source` stores (their texts and metadata),
        embedded with this writer's library's model and under its journal: `hearth ingest --reembed`
        (pipeline.rebuild) reads no file, so a document whose drive is away survives it. Returns the
        records whose passages are not all stored (read again from their file, if it is there)."""
        state = {"done": 0, "total": len(records)}
        waiting: list[tuple[_Parsed, Chunk]] = []
        finished: list[_Parsed] = []
        unstored = []
        for rec in records:
            ids = [chunk_id(rec.doc_id, i) for i in range(rec.chunks)]
            stored = {}
            for i in range(0, len(ids), STORED_BATCH):
                stored.update(source.chunks(ids[i : i + STORED_BATCH]))
            if len(stored) != len(ids):
                unstored.append(rec)
                continue
            chunks = [Chunk(text, i, meta.get("page"), meta.get("section"), meta.get("start", 0), meta.get("end", 0),
                            bool(meta.get("ocr"))) for i, (text, meta, _) in enumerate(stored[cid] for cid in ids)]
            stat = SimpleNamespace(st_size=rec.size, st_mtime_ns=rec.mtime_ns)  # as recorded: unchanged for a sync
            parsed = _Parsed(Job(rec.path, stat, rec.sha256), chunks, rec.pages, rec.notes or "",
                             language=rec.language or "")
            waiting += [(parsed, c) for c in chunks]
            finished.append(parsed)
            if len(waiting) >= GROUP_CHUNKS or len(finished) >= GROUP_CHUNKS:
                self._flush(waiting, finished, report, state)
        self._flush(waiting, finished, report, state, last=True)
        return unstored

    def _flush(self, waiting: list, finished: list, report: Report, state: dict, last: bool = False):
        """Embed and write the waiting chunks, then the records of the files read whole, following
        the journal protocol: a doc's journal entry is written before its first chunk."""
        new = {id(p): p for p, _ in waiting} | {id(p): p for p in finished}
        if self.lib.embed_model is None:
            told = [p.language for p in new.values() if p.language]
            if not last and len(told) < FIRST_DOCUMENTS:
                return  # read on (their passages wait, not embedded) until enough languages are known
            self.lib.choose_model(told)
        new = [p for p in new.values() if not p.journaled]
        if new:
            with self.lib.transaction():
                for p in new:
                    self.journal.add(p.doc_id, "add", p.job.path)
                    p.journaled = True
        self.lib.check_writer()
        self._flushed = time.monotonic()
        whole = {id(p) for p in finished}  # by identity: _Parsed compares by value
        reading = [p for p in {id(p): p for p, _ in waiting}.values() if id(p) not in whole and p.new_scan]
        for i in range(0, len(waiting), GROUP_CHUNKS):
            batch = waiting[i : i + GROUP_CHUNKS]
            t = time.perf_counter()
            vectors = self._embed([c.text for _, c in batch])
            report.timings["embed"] += time.perf_counter() - t
            self.embedded += len(batch)
            self._progress(batch[-1][0].job.path, state)
            t = time.perf_counter()
            self.lib.add_chunks([p.doc_id for p, _ in batch], [c.index for _, c in batch], vectors,
                                [_chunk_metadata(p, c) for p, c in batch], [c.text for _, c in batch])
            report.timings["write"] += time.perf_counter() - t
        waiting.clear()
        if reading:
            self._record_partial(reading)
        if not finished:
            return
        t = time.perf_counter()
        self.lib.check_writer()
        lib = self.lib
        with lib.keywords.batch():  # step 2 of the journal protocol, as the chunks: before the records name them
            for p in finished:
                if p.job.source is not None:  # an identical document's vectors, copied
                    lib.copy_chunks(p.job.source.doc_id, p.job.source.chunks, p.doc_id,
                                    {"source": p.job.path, "filename": os.path.basename(p.job.path)})
                    lib.keywords.copy(p.job.source.doc_id, p.doc_id)
                else:  # those a partial record named are indexed already
                    lib.keywords.add(p.doc_id, p.unrecorded(), more=p.recorded > 0)
        with lib.transaction():
            for p in finished:
                job = p.job
                n = len(p.chunks) if job.source is None else job.source.chunks
                pages = p.pages if job.source is None else job.source.pages
                told = p.language if job.source is None else job.source.language
                self.files.put(FileRecord(job.path, p.doc_id, job.stat.st_size, job.stat.st_mtime_ns, job.sha256, n,
                                          pages, p.notes or None, time.time(), self.files.owner, told or None))
                self.journal.done(p.doc_id, "add")
                self.files.clear_problem(job.path)
                if lib.keeps_texts and job.source is None:
                    lib.chunk_texts.add(p.doc_id, p.unrecorded())
                elif lib.keeps_texts:
                    lib.chunk_texts.copy(job.source.doc_id, p.doc_id)
                if job.old is not None:
                    self.journal.add(job.old.doc_id, "delete")  # its keyword rows go with its chunks: delete_chunks
                    if lib.keeps_texts:
                        lib.chunk_texts.delete(job.old.doc_id)
        for p in finished:
            if p.job.old is not None:
                delete_chunks(self.lib, p.job.old.doc_id, p.job.old.chunks)
        report.timings["write"] += time.perf_counter() - t
        for p in finished:
            status = "copied" if p.job.source else ("updated" if p.job.old else "added")
            n = len(p.chunks) if p.job.source is None else p.job.source.chunks
            report.results.append(FileResult(p.job.path, status, n, reason=p.notes))
            state["done"] += 1
            self._progress(p.job.path, state)
        finished.clear()

class _Stopped(Exception):
    """The ingest ended (asked to stop, or an error in the embedding thread) while a thread waited."""


def _get(events: queue.Queue, stop: threading.Event):
    while True:
        try:
            return events.get(timeout=0.2)
        except queue.Empty:
            if stop.is_set():
                raise _Stopped from None


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
    if c.ocr:
        meta["ocr"] = True
    if is_listing(c.text):
        meta["listing"] = True  # a table of contents or index: ranked after prose
    return meta
