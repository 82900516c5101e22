"""A full disk while ingesting: a clear error, and the store still opens holding all it held.

The disk "fills" through RLIMIT_FSIZE: no file of the store may grow past a limit set just above
its current size, so writes fail with EFBIG exactly as they would with ENOSPC (SIGXFSZ ignored,
as a shell would have it), inside SQLite (the manifest) or Chroma's Rust core.
"""

from __future__ import annotations

import resource
import shutil
import signal

import pytest

from conftest import run_hearth, store_snapshot
from ingest.pipeline import Ingestor
from rag.retrieval import search

pytestmark = pytest.mark.slow


def _hearth_with_file_limit(home, limit: int, *args):
    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return run_hearth(home, *args, timeout=600, preexec_fn=limited)


def _biggest(home, pattern: str) -> int:
    return max(p.stat().st_size for p in home.rglob(pattern))


@pytest.mark.parametrize("full", ["manifest", "vectors"])
def test_a_full_disk_says_so_and_loses_nothing(full, tmp_path, home, manuals, open_library):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    shutil.copy(manuals / "R-data.pdf", first)
    shutil.copy(manuals / "R-intro.pdf", second)
    lib = open_library()
    Ingestor(lib).sync([first])
    before = store_snapshot(lib)
    lib.close()

    # "manifest": the limit sits just above the manifest's size, so its first growing write fails;
    # "vectors": just above Chroma's database, so the manifest's journal is written and Chroma fails.
    limit = (_biggest(home, "manifest.sqlite3") if full == "manifest" else _biggest(home, "chroma.sqlite3")) + 8192
    run = _hearth_with_file_limit(home, limit, "ingest", first, second)
    assert run.returncode == 4, run.stdout + run.stderr
    message = " ".join(run.stderr.split())
    assert "could not write to the store" in message and "the disk is full or failing" in message
    assert "Everything stored before is intact" in message and "Traceback" not in run.stderr

    after = open_library()  # opens, answers, and holds what it held
    got = store_snapshot(after)
    assert got["documents"] == before["documents"] and got["orphans"] == [] and got["ids_unique"]
    assert {c for c in got["chunks"] if c[0].endswith("R-data.pdf")} == set(before["chunks"])
    assert "Excel" in " ".join(h.text for h in search(after, "Excel spreadsheets", k=3))

    # Space again: the next run repairs what was half-written and finishes.
    report = Ingestor(after).sync([first, second])
    assert not report.failures and [r.status for r in report.results] == ["added"]
    final = store_snapshot(after)
    assert final["journal"] == [] and final["orphans"] == [] and final["ids_unique"]
    assert len(final["chunks"]) == after.collection.count() == sum(d[2] for d in final["documents"])
