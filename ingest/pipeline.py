"""Incremental, crash-safe sync of files and folders into a Library: the planning.

    scan     every supported file under the paths (hidden, temporary and partial files left out)
    plan     stat every file; unchanged size+mtime is skipped without reading it, otherwise the
             content hash decides: same content (touch), changed, new, moved/renamed, or a copy
    move     a moved or renamed file's chunks re-pointed, nothing embedded
    delete   files gone from the folders synced (this instance's own, against a shared server)
    write    new, changed and copied files: write.py (read, embed, write under the journal)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import threading
import time
from typing import Callable, Iterable

from . import loaders
from .library import Library
from .libraries import open_library
from .manifest import REBUILD_MARK, FileRecord
from .removal import FolderDevices, held_removals
from .settings import AUTO_MODEL
from .store import store_errors
from .write import FileResult, Job, Report, Writer, megabytes, record_failure

__all__ = ["FileResult", "Ingestor", "Report", "file_sha256", "indexed_under", "is_ignored", "missing_reason",
           "rebuild"]
DELETE_GROUP = 1000  # documents forgotten per journalled group
IGNORED_PREFIXES = (".", "~$", ".~lock")
IGNORED_SUFFIXES = (".swp", ".swx", ".tmp", ".part", ".crdownload", ".partial", ".download", "~")


def is_ignored(name: str) -> bool:
    """Hidden, temporary, lock and partial-download files are never ingested."""
    return name.startswith(IGNORED_PREFIXES) or name.lower().endswith(IGNORED_SUFFIXES)


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


def indexed_under(lib: Library, path: str | os.PathLike) -> int:
    """Documents indexed at or under `path`, whether it is there or not."""
    root = os.path.abspath(os.path.expanduser(str(path)))
    return sum(_under(p, root) for p in lib.files.records())


def missing_reason(path: str, kept: int) -> str:
    """Why a path that is not there removed nothing, and how to forget its documents on purpose."""
    if not kept:
        return "no such file or folder"
    return (f"not found (not mounted? renamed?): {kept} document{'s' if kept != 1 else ''} indexed under it "
            f"{'are' if kept != 1 else 'is'} kept; `hearth remove {path}` forgets them")


class Ingestor:
    def __init__(self, library: Library, progress: Callable[[str, int, int, int, int], None] | None = None,
                 stop: threading.Event | None = None):
        """progress(path, files_done, files_total, chunks_embedded, pages_read) is called as work advances. Once
        `stop` is set (Ctrl-C, the app's Stop), the sync ends within seconds: the files done are kept,
        the report says how many are left, and the next sync does them (nothing done is redone)."""
        self.lib = library
        self.files, self.journal = library.files, library.journal
        self.stop = stop or threading.Event()
        self.writer = Writer(library, progress or (lambda *a: None), self.stop)

    # --- public API -----------------------------------------------------------------------------
    def sync(self, paths: Iterable[str | os.PathLike], force: bool = False, deleted_within=(),
             retry_failed: bool = False, allow_removal: bool = False) -> Report:
        """Make the collection hold exactly the supported files under `paths` (files or folders).

        A path that is not there removes nothing (a drive not mounted, a typo): it is reported, with
        the documents kept under it (report.missing). Only under `deleted_within` (the watcher's
        folders), while that folder itself is there, is a path gone because it was deleted.
        force=True re-reads and re-embeds every file found, changed or not (the app's "re-index");
        retry_failed=True reads again the files that failed before and are unchanged since.
        Removals that look like a drive away rather than deletion (removal.py) are held back and
        reported (report.held) unless allow_removal=True.
        A full disk raises StoreWriteError; the journal undoes the half-written group on the next run.
        """
        with store_errors(self.lib.settings):
            return self._sync(paths, force, [os.path.abspath(d) for d in deleted_within], retry_failed,
                              allow_removal)

    def _hold_removals(self, roots, records, gone: dict, report: Report, allow: bool) -> dict:
        """`gone` less what removal.py holds back (reported in report.held) unless `allow`; the
        folders synced have their device ids remembered, but not those held (still to confirm)."""
        folders = [r for r in roots if os.path.isdir(r)]
        devices = FolderDevices(self.lib.settings.home)
        held = {} if allow else held_removals(folders, list(records), list(gone), devices.load(), _under)
        report.held = held
        devices.remember([f for f in folders if f not in held])
        return {p: r for p, r in gone.items() if not any(_under(p, f) for f in held)}

    def _sync(self, paths, force: bool, within: list[str], retry_failed: bool = False,
              allow_removal: bool = False) -> Report:
        report, started = Report(), time.perf_counter()
        report.repaired = self.repair()
        found, roots, missing_args = self._scan([os.path.abspath(p) for p in paths], within)
        records = self.files.records()
        if self.files.model() is not None:
            self.lib.check_model()

        # Only this instance's own documents can be gone: against a shared server, another machine's
        # files under the same path are not on this one to be seen (catalog.py).
        gone = {p: r for p, r in records.items() if p not in found and any(_under(p, root) for root in roots)
                and self._own(r)}
        for path in self.files.problems():  # a file that failed and was deleted since is no problem now
            if path not in found and any(_under(path, root) for root in roots) and not os.path.exists(path):
                self.files.clear_problem(path)
        for arg in missing_args:
            report.missing[arg] = kept = sum(_under(p, arg) for p in records)
            report.results.append(FileResult(arg, "failed", reason=missing_reason(arg, kept)))
        jobs, moves = self._plan(found, records, gone, report, force, retry_failed)
        for old_path, new_path, stat in moves:
            self._move(records[old_path], new_path, stat, report)
            gone.pop(old_path, None)
        gone = self._hold_removals(roots, records, gone, report, allow_removal)
        self._delete_many(list(gone.values()))
        report.results += [FileResult(path, "removed", rec.chunks) for path, rec in gone.items()]
        self.writer.write(jobs, report)
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, paths: Iterable[str | os.PathLike]) -> list[FileResult]:
        """Forget the files at or under `paths` (the files themselves are untouched)."""
        with store_errors(self.lib.settings):
            return self._remove(paths)

    def _remove(self, paths) -> list[FileResult]:
        self.repair()
        roots = [os.path.abspath(p) for p in paths]
        gone = [rec for path, rec in self.files.records().items() if any(_under(path, r) for r in roots)]
        self._delete_many(gone)
        removed = [FileResult(rec.path, "removed", rec.chunks) for rec in gone]
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
    def _scan(self, args: list[str], within: list[str]):
        found: dict[str, os.stat_result] = {}
        roots, missing = [], []
        present = [w for w in within if os.path.isdir(w)]  # checked now: a folder unmounted since deletes nothing
        for arg in args:
            if os.path.isdir(arg):
                roots.append(arg)
                self._walk(arg, found)
            elif os.path.isfile(arg):
                roots.append(arg)
                found[arg] = os.stat(arg)
            elif any(_under(arg, w) for w in present):
                roots.append(arg)  # deleted from a folder that is there: whatever was indexed there is gone
            else:
                missing.append(arg)  # not there: maybe not mounted, renamed or mistyped; nothing is removed
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

    def _plan(self, found, records, gone, report, force=False, retry_failed=False):
        problems = {} if retry_failed else self.files.problems()
        limit = int(self.lib.settings.max_file_mb * 1024 * 1024)
        by_hash: dict[str, list[FileRecord]] = {}
        for rec in records.values():
            by_hash.setdefault(rec.sha256, []).append(rec)
        moved_away: set[str] = set()
        jobs, moves = [], []
        for n, (path, st) in enumerate(sorted(found.items())):
            if self.stop.is_set():  # asked to stop while hashing new files: the rest wait for the next run
                report.stopped, report.left = True, len(found) - n
                break
            rec = records.get(path)
            if not force and rec and rec.size == st.st_size and rec.mtime_ns == st.st_mtime_ns:
                report.unchanged += 1
                continue
            known = problems.get(path)
            if not force and not rec and known and known[1:] == (st.st_size, st.st_mtime_ns):
                report.results.append(FileResult(path, "skipped", reason=f"{known[0]} (unchanged since)"))
                continue
            if st.st_size > limit:
                record_failure(self.lib, report, path, st, f"too large: {megabytes(st.st_size)}, over the "
                           f"{self.lib.settings.max_file_mb:g} MB limit (HEARTH_MAX_FILE_MB)")
                continue
            self.writer.spawn_reader()  # likely new or changed: the reader imports its parsers while we hash
            try:
                sha = file_sha256(path)
            except OSError as exc:
                record_failure(self.lib, report, path, st, f"cannot read: {exc.strerror or exc}")
                continue
            if force:
                jobs.append(Job(path, st, sha, old=rec))
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
            jobs.append(Job(path, st, sha, old=rec, source=twin))
        return jobs, moves

    # --- moves and deletes: no embedding needed --------------------------------------------------
    def _move(self, rec: FileRecord, new_path: str, st, report):
        t = time.perf_counter()
        self.lib.check_writer()
        self.lib.move_chunks(rec.doc_id, rec.chunks, new_path, os.path.basename(new_path))  # Chroma first: redone next run
        with self.lib.transaction():
            self.files.delete(rec.path)
            self.files.put(FileRecord(new_path, rec.doc_id, st.st_size, st.st_mtime_ns, rec.sha256,
                                      rec.chunks, rec.pages, rec.notes, time.time(), self.files.owner, rec.language))
            self.files.clear_problem(new_path)
        report.timings["write"] += time.perf_counter() - t
        report.results.append(FileResult(new_path, "moved", rec.chunks, previous=rec.path))

    def _delete_many(self, recs: list[FileRecord]):
        """Forget documents DELETE_GROUP at a time, each group under the journal: records and texts in
        one transaction, then the group's chunks in a few large Chroma deletes (one delete per document
        made removing 10,000 files take minutes) and their keyword rows, then the entries done."""
        for i in range(0, len(recs), DELETE_GROUP):
            group = recs[i : i + DELETE_GROUP]
            with self.lib.transaction():
                for rec in group:
                    self.files.delete(rec.path)
                    self.journal.add(rec.doc_id, "delete")
                live = self.files.live_doc_ids([rec.doc_id for rec in group])  # named by another path: see delete_chunks
                if self.lib.keeps_texts:
                    for rec in group:
                        if rec.doc_id not in live:
                            self.lib.chunk_texts.delete(rec.doc_id)
            # Asked again once committed: a server's catalog applies a transaction's changes at its end,
            # so inside it the records just deleted still named their documents (their chunks were kept).
            live = self.files.live_doc_ids([rec.doc_id for rec in group])
            self.lib.check_writer()
            self.lib.delete_chunks_of([(rec.doc_id, rec.chunks) for rec in group if rec.doc_id not in live])
            with self.lib.transaction():
                for rec in group:
                    self.journal.done(rec.doc_id, "delete")

def rebuild(lib: Library, paths: Iterable[str | os.PathLike] = (), progress=None) -> Report:
    """`hearth ingest --reembed`: every document of the collection embedded again with the configured
    model (auto: the one its documents' languages call for) from the passages stored, so no file is
    read and a document whose drive is away keeps its place; then `paths` synced into it (new and
    changed files read). All of it goes into a new Chroma collection and manifest rows beside the old
    ones, switched to in one manifest transaction. Until then searches use the old collection; a crash
    at any point leaves one whole collection, and the next write removes what the other left
    (Library.clean_rebuilds). Call it holding lib.writing()."""
    target = f"{lib.name}{REBUILD_MARK}{secrets.token_hex(4)}"
    lib.files.set_swept(False)  # before its Chroma collection exists: a crash leaves it for the next writer
    build = open_library(lib.settings, lib.name, physical=target)
    build.embedder, build.lease = lib.embedder, lib.lease
    records = lib.documents()
    told = [rec.language for rec in records if rec.language]
    if told:  # HEARTH_EMBED_MODEL=auto: chosen by every document's language, not the first few
        build.choose_model(told)
    # read with the model it was built with (auto takes the collection's own), whatever is configured
    source = open_library(dataclasses.replace(lib.settings, embed_model=AUTO_MODEL), lib.name)
    try:
        with store_errors(lib.settings):
            report = Report()
            started = time.perf_counter()
            unstored = Writer(build, progress or (lambda *a: None)).rewrite(records, source, report)
        # passages not all stored (a store written by an older Hearth): read again, where the file is
        wanted = [rec.path for rec in unstored] + [os.path.abspath(p) for p in paths]
        if wanted:
            synced = Ingestor(build, progress).sync(list(dict.fromkeys(wanted)))
            report.results += synced.results
            report.unchanged, report.missing, report.held = synced.unchanged, synced.missing, synced.held
            report.timings = {k: report.timings[k] + synced.timings.get(k, 0.0) for k in report.timings}
        report.seconds = time.perf_counter() - started
        with store_errors(lib.settings):
            lib.swap_to(build)
            lib.files.set_swept(True)  # the old vectors are gone, the rebuild is the collection
    finally:
        source.close()
        build.close()
    return report
