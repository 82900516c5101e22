"""A sync running in the background (Hearth.start_sync): the app's "Add a folder" and "Retry failed
files", and any front end that must stay usable while thousands of files are read.

The job opens a Hearth of its own on its thread (the caller's may be closed meanwhile: a Streamlit page
run ends), shares the caller's loaded embedding model, and exposes what a progress line needs: files
done of those to do, passages embedded, rates and time left, the file being read, whether it waits for
another writer. `stop` ends it within seconds keeping every file done; the same sync again goes on
where it stopped. Readers need no lock, so searches and answers go on meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from ingest.errors import HearthError, StoreBusy
from ingest.settings import Settings

WAIT_S = 1  # a job waiting for another writer looks again this often, so that a stop is seen


class Rates(NamedTuple):
    files: float  # a second
    passages: float
    pages: float  # of PDFs and scans
    left_s: float | None  # seconds left at the files' rate; None until a file was done


class SyncJob:
    def __init__(self, settings: Settings, collection: str, embedder, paths: list[str], what: str,
                 retry_failed: bool = False, allow_removal: bool = False):
        self.settings, self.collection, self.embedder = settings, collection, embedder
        self.paths, self.what, self.retry_failed = paths, what, retry_failed
        self.allow_removal = allow_removal  # removals a sync would hold back, confirmed by the user
        self.stop = threading.Event()
        self.started, self.ended = time.time(), None
        self.done = self.total = self.chunks = 0  # files done of those to read and embed; passages embedded
        self.pages = 0  # pages of PDFs and scans read
        self.current = ""  # the file being read or embedded
        self.first: tuple[float, int, int, int] | None = None  # (time, done, chunks, pages) at the first progress
        self.waiting = ""  # another writer holds the store
        self.report = None  # the sync's Report, once it ended
        self.error: str | None = None  # why it ended without a report
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"hearth-ingest-{collection}")
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ended (True), or `timeout` seconds passed (False)."""
        self.thread.join(timeout)
        return not self.running

    def _progress(self, path: str, done: int, total: int, chunks: int, pages: int):
        if self.first is None:
            self.first = (time.monotonic(), done, chunks, pages)
        self.current, self.done, self.total, self.chunks, self.pages, self.waiting = path, done, total, chunks, pages, ""

    def _wait(self, _message: str):
        self.waiting = "waiting for another writer (an upload, the folder watcher or a `hearth` command) to finish…"

    def _run(self):
        from .api import Hearth

        try:
            with Hearth(self.settings, self.collection, embedder=self.embedder) as lib:
                while self.report is None:
                    self.waiting = ""
                    try:
                        self.report = lib.sync(self.paths, progress=self._progress, wait=WAIT_S, stop=self.stop,
                                               retry_failed=self.retry_failed, on_wait=self._wait,
                                               allow_removal=self.allow_removal)
                    except StoreBusy:
                        if self.stop.is_set():
                            self.error = "stopped before it began (another writer held the store); nothing was changed"
                            return
        except (HearthError, ValueError) as exc:  # StoreBusy is waited out above
            self.error = str(exc)
        except Exception as exc:  # a bug: said to the user and logged, not lost with the thread
            logging.getLogger("hearth").exception("background sync of %s failed", self.what)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = time.time()

    def rates(self) -> "Rates | None":
        """The rates since the first progress; None until something was done after it. The time left
        is known once a file was done after it (one long scan: pages/s, and no time left)."""
        if self.first is None:
            return None
        since, done, chunks, pages = self.first
        took = time.monotonic() - since
        if took < 1 or (self.done <= done and self.pages <= pages):
            return None
        files = (self.done - done) / took
        return Rates(files, (self.chunks - chunks) / took, (self.pages - pages) / took,
                     (self.total - self.done) / files if files else None)
