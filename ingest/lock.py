"""One writer per store: a lock file that the CLI, the watcher and the app all take before writing."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import StoreBusy




@contextmanager
def writer_lock(path: Path, wait: float | None = None, on_wait=None):
    """Hold the store's writer lock. wait=None waits as long as it takes; 0 fails at once.

    flock is released by the kernel when the holder dies, so a killed writer never leaves it stuck.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = None if wait is None else time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                if deadline is not None and time.monotonic() >= deadline:
                    raise StoreBusy(f"the store is busy: another Hearth process (pid {holder}) is writing to it")
                if on_wait and not told:
                    on_wait(f"waiting for another Hearth process (pid {holder}) to finish writing…")
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
