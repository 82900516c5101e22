"""Keep a collection in sync with folders, live: watchdog events in, Ingestor.sync out.

    start    the observer first, then a full reconcile (Ingestor.sync of the folders), so changes
             made while nothing watched, and during the reconcile, are both picked up
    events   each path an event names (both ends of a move) is marked dirty; hidden, temporary,
             lock and partial-download names are ignored (pipeline.is_ignored, on every component)
    batches  a path is synced once it has been quiet for DEBOUNCE seconds and, if a file, not
             modified for SETTLE seconds (a copy still in progress waits); all due paths go to one
             Ingestor.sync under the writer lock, so a rename is seen whole and moves its vectors
             instead of re-embedding, and a burst of files shares embedding batches

    paused   a watched folder that goes away (unmounted, renamed; a mount point that is no longer
             one) is paused: its documents are kept and nothing under it is synced until it is back;
             then it is watched afresh and reconciled whole (changes made meanwhile are picked up)

Sync is idempotent (unchanged files are skipped by size and mtime), so a path named by several
events, or a watcher restarted after being killed, converges to the folder's state.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from typing import Callable

from . import loaders
from .library import Library
from .pipeline import FileResult, Ingestor, _under, indexed_under, is_ignored, missing_reason
from .store import store_errors

DEBOUNCE = 0.4  # seconds without an event on a path before it is synced
SETTLE = 1.0  # a file modified more recently than this is still being written
TICK = 0.1
RETRY = 5.0  # after an error, a batch's paths are tried again this much later
IGNORED_EVENTS = {"opened", "closed_no_write", "attrib"}


def describe(r: FileResult) -> str:
    """One line per change, as `hearth watch` prints it."""
    if r.status == "moved":
        return f"moved {r.previous} → {r.path}"
    if r.status in ("failed", "skipped"):
        return f"not ingested {r.path}: {r.reason}"
    return f"{r.status} {r.path} ({r.chunks} chunks)"


class Watcher:
    def __init__(self, library: Library, folders, on_change: Callable[[str], None] | None = None,
                 debounce: float = DEBOUNCE, settle: float = SETTLE):
        self.lib = library
        self.roots = [os.path.abspath(f) for f in folders]
        for root in self.roots:
            if os.path.isfile(root):
                raise ValueError(f"not a folder: {root}")
            if not os.path.isdir(root):  # removes nothing: say what is kept and how to forget it
                raise ValueError(f"{root}: {missing_reason(root, indexed_under(library, root))}")
        self.on_change = on_change or (lambda line: None)
        self.debounce, self.settle = debounce, settle
        self.results: list[FileResult] = []  # every change made, in order (the app and tests read it)
        self.batches = 0
        self.ready = threading.Event()  # set once the first reconcile is done
        self._stop = threading.Event()
        self._pending: dict[str, float] = {}  # path -> monotonic time it may be synced after
        self._moved_to: dict[str, str] = {}  # old path -> new path, so both ends are synced together
        self._guard = threading.Lock()
        self._busy = False
        self._paused: set[str] = set()
        self._mounted = {root: os.path.ismount(root) for root in self.roots}  # a mount point must stay one
        self._observer = None
        self._watches: dict = {}  # root -> its watchdog watch

    # --- running ----------------------------------------------------------------------------------
    def run(self):
        """Reconcile, then follow the folders until stop(). Blocks; the app runs it in a thread."""
        from watchdog.observers import Observer

        self._observer = observer = Observer()
        observer.start()
        try:
            for root in self.roots:  # before the reconcile: nothing that changes during it is missed
                if not self._schedule(root):
                    self._pause(root)
            self._sync([r for r in self.roots if r not in self._paused])
            self.ready.set()
            self.on_change(f"watching {', '.join(self.roots)} ({self._count()} in '{self.lib.name}')")
            while not self._stop.wait(TICK):
                self._check_roots()
                due = self._due()
                if due:
                    self._sync(due)
        finally:
            observer.stop()
            observer.join()

    def stop(self):
        """Stop after the batch in progress (a half-written batch is never left: see pipeline.py)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def idle(self) -> bool:
        with self._guard:
            return self.ready.is_set() and not self._pending and not self._busy

    @property
    def paused(self) -> list[str]:
        """The watched folders that are gone for now (unmounted, renamed): their documents are kept,
        and each is watched again, and reconciled, once it is back."""
        return sorted(self._paused)

    # --- folders that go away -----------------------------------------------------------------------
    def _present(self, root: str) -> bool:
        return os.path.isdir(root) and (not self._mounted[root] or os.path.ismount(root))

    def _check_roots(self):
        """A stat or two per folder per tick: pause the ones that went away, resume the ones back."""
        for root in self.roots:
            here = self._present(root)
            if not here and root not in self._paused:
                self._pause(root)
            elif here and root in self._paused:
                self._resume(root)

    def _schedule(self, root: str) -> bool:
        try:
            self._watches[root] = self._observer.schedule(_Handler(self), root, recursive=True)
            return True
        except OSError:
            if self._present(root):  # there, but not watchable (the inotify limit): say so, as before
                raise
            return False  # gone again already

    def _pause(self, root: str):
        with self._guard:  # its pending paths are dropped: the resume reconciles the whole folder
            self._paused.add(root)
            for path in [p for p in self._pending if _under(p, root)]:
                del self._pending[path]
                self._moved_to.pop(path, None)
        try:
            kept = f"its {indexed_under(self.lib, root)} documents are kept"
        except Exception:  # a Chroma server away: the pause matters more than the count
            kept = "its documents are kept"
        self.on_change(f"paused {root}: the folder is gone (not mounted? renamed?); {kept}, and watching "
                       "resumes when it is back")

    def _resume(self, root: str):
        old = self._watches.pop(root, None)
        if old is not None:  # its inotify watch followed the folder away, or died with the unmount
            try:
                self._observer.unschedule(old)
            except Exception:
                pass
        if not self._schedule(root):
            return  # gone again: try on a later tick
        with self._guard:
            self._paused.discard(root)
        self.on_change(f"resumed {root}: the folder is back")
        self._sync([root])

    # --- events -----------------------------------------------------------------------------------
    def mark(self, path: str, moved_to: str | None = None):
        """An event named `path` (for a move: its old path, and `moved_to`)."""
        with self._guard:
            for p in (path, moved_to):
                if p is not None and not self._ignored(p):
                    self._pending[p] = time.monotonic() + self.debounce
            if moved_to is not None:
                self._moved_to[path] = moved_to

    def _ignored(self, path: str) -> bool:
        root = next((r for r in self.roots if _under(path, r)), None)
        if root is None or root in self._paused:  # a folder moved away still sends events, under its old path
            return True
        rel = os.path.relpath(path, root)
        return rel != "." and any(is_ignored(part) for part in rel.split(os.sep))

    def _due(self) -> list[str]:
        now, wall = time.monotonic(), time.time()
        due, vanished = [], []
        with self._guard:
            for path, after in self._pending.items():
                if now < after:
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    vanished.append(path)
                    continue
                if stat.S_ISREG(st.st_mode) and wall - st.st_mtime < self.settle:
                    continue  # still being written: look again on a later tick
                due.append(path)
            for path in vanished:
                new = self._moved_to.get(path)
                if new in self._pending and new not in due:
                    continue  # moved: wait for the new path, or the move would be a delete and an add
                due.append(path)
            for path in due:
                del self._pending[path]
                self._moved_to.pop(path, None)
            self._busy = bool(due)
        return due

    def _count(self) -> str:
        try:  # a Chroma server can go down between the reconcile and this line: the watch goes on
            return f"{len(self.lib.documents())} documents"
        except Exception:
            return "its documents"

    # --- syncing ----------------------------------------------------------------------------------
    def _relevant(self, paths: list[str]) -> list[str]:
        """Folders, supported files, and vanished paths that held documents; nothing else."""
        known = list(self.lib.files.records())
        problems = self.lib.files.problems()
        keep = []
        for path in paths:
            if os.path.isdir(path) and not os.path.islink(path):
                keep.append(path)
            elif os.path.isfile(path):
                if loaders.is_supported(path) and not os.path.islink(path):
                    keep.append(path)
            elif any(_under(k, path) for k in known):
                keep.append(path)
            else:
                for p in problems:  # a file that had failed is gone: forget its failure too
                    if _under(p, path):
                        self.lib.files.clear_problem(p)
        return keep

    def _sync(self, paths: list[str]):
        paths = [p for p in paths if not any(_under(p, r) for r in self._paused)]  # e.g. a retry, paused since
        try:
            with store_errors(self.lib.settings):
                paths = self._relevant(paths)
            if paths:
                with self.lib.writing(on_wait=self.on_change):
                    report = Ingestor(self.lib).sync(paths, deleted_within=self.roots)
                self.batches += 1
                for r in report.results:
                    self.results.append(r)
                    self.on_change(describe(r))
                for folder, hold in report.held.items():  # a drive away, maybe: the user decides (removal.py)
                    self.on_change(f"{hold.message(folder)}; `hearth ingest {folder} --allow-removal` removes them")
        except Exception as exc:  # a store error must not end the watch: say it, try again later
            self.on_change(f"error ({type(exc).__name__}: {exc}); retrying in {RETRY:.0f} s")
            with self._guard:
                for path in paths:
                    self._pending.setdefault(path, time.monotonic() + RETRY)
        finally:
            with self._guard:
                self._busy = False


class _Handler:
    """watchdog's handler protocol (dispatch), kept to the one method it needs."""

    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def dispatch(self, event):
        if event.event_type in IGNORED_EVENTS or (event.is_directory and event.event_type == "modified"):
            return
        moved_to = os.fsdecode(event.dest_path) if event.event_type == "moved" else None
        self.watcher.mark(os.fsdecode(event.src_path), moved_to)
