"""Bulk ingest a person can live with: stopped (Ctrl-C, the app's Stop) or killed part-way, the next
run goes on where it stopped and redoes nothing; failed files are listed and retried on request."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading

import pytest

from conftest import hearth_command, run_hearth, wait_until
from make_files import text_pdf
from ingest.libraries import open_library
from ingest.pipeline import Ingestor
from ingest.settings import load_settings

WORDS = ("kettle harbour ledger violin orchard lantern pepper meadow copper signal winter ladder river stone "
         "garden invoice receipt boiler pension mortgage").split()


def notes(folder, n: int, seed: int = 7):
    """n small Markdown notes of one to three passages, and a few mails, as a real folder holds."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        paras = ["".join(f"{rng.choice(WORDS)} " for _ in range(rng.randint(40, 120))) for _ in range(rng.randint(1, 3))]
        if i % 10 == 9:
            (folder / f"mail-{i:04d}.eml").write_text(f"From: a@example.org\nTo: b@example.org\nSubject: note {i}\n"
                                                      "Content-Type: text/plain; charset=utf-8\n\n" + "\n\n".join(paras))
        else:
            (folder / f"note-{i:04d}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(paras))
    return folder


def consistent(home) -> tuple[int, int]:
    """(documents, chunks), after checking that Chroma holds exactly the recorded documents' chunks,
    once each, and that no half-written group is left."""
    lib = open_library(load_settings(home=home))
    try:
        records = lib.documents()
        assert lib.count() == sum(r.chunks for r in records)
        assert not lib.journal.entries()
        return len(records), lib.count()
    finally:
        lib.close()


def test_progress_counts_a_long_pdfs_pages_as_they_are_read(tmp_path, open_library):
    """A scan takes seconds a page: the progress line's pages/s moves while the file is still read."""
    pdf = text_pdf(tmp_path / "long.pdf", [f"Page {i} tells of harvest number {i} in the valley." for i in range(70)])
    seen = []
    report = Ingestor(open_library(), lambda path, done, total, chunks, pages: seen.append((done, pages))).sync([pdf])
    assert report.count("added") == 1
    assert (0, 32) in seen and (0, 64) in seen  # parts of 32 pages, before the file was done
    assert seen[-1] == (1, 70)


def test_a_stopped_sync_keeps_what_it_did_and_the_next_one_does_only_the_rest(tmp_path, open_library):
    folder = notes(tmp_path / "notes", 200)  # ~400 passages: files are recorded a group (256) at a time
    lib = open_library()
    stop = threading.Event()

    def progress(path, done, total, chunks, pages):
        if done:
            stop.set()  # as Ctrl-C or the app's Stop would, from another thread

    first = Ingestor(lib, progress, stop).sync([folder])
    assert first.stopped and first.left > 0
    kept = first.count("added")
    assert 0 < kept and kept + first.left == 200
    assert lib.count() == sum(r.chunks for r in lib.documents()) and len(lib.documents()) == kept
    assert not lib.journal.entries()

    embedded = lib.embedder.calls
    second = Ingestor(lib).sync([folder])
    assert not second.stopped and second.unchanged == kept and second.count("added") == 200 - kept
    assert lib.embedder.calls - embedded == second.chunks_added  # nothing done before was embedded again
    assert lib.count() == sum(r.chunks for r in lib.documents()) and len(lib.documents()) == 200


def test_ctrl_c_stops_hearth_ingest_and_the_same_command_goes_on(tmp_path, home):
    folder = notes(tmp_path / "notes", 400)
    argv, env = hearth_command(home, "ingest", folder)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = home / "manifest.sqlite3"

    def some_done():
        if not manifest.exists():
            return False
        out = run_hearth(home, "docs", "--json")
        return out.returncode == 0 and len(json.loads(out.stdout)["documents"]) >= 20

    wait_until(some_done, timeout=240)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
    stdout, stderr = proc.communicate(timeout=60)  # a bound for a busy machine, not a measure of speed
    assert proc.returncode == 130, stderr
    assert "stopped" in stdout and "left to do" in stdout and "Traceback" not in stderr
    done, _ = consistent(home)
    assert 20 <= done < 400

    again = run_hearth(home, "ingest", folder, "--json")
    report = json.loads(again.stdout)
    assert again.returncode == 0 and not report["stopped"]
    assert report["unchanged"] == done  # resumed where it stopped
    assert sum(f["status"] == "added" for f in report["files"]) == 400 - done
    assert consistent(home)[0] == 400


def test_a_killed_ingest_is_repaired_and_resumed(tmp_path, home):
    folder = notes(tmp_path / "notes", 300, seed=9)
    argv, env = hearth_command(home, "ingest", folder)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = home / "manifest.sqlite3"
    wait_until(lambda: manifest.exists() and len(json.loads(run_hearth(home, "docs", "--json").stdout)["documents"]) >= 10,
               timeout=240)
    proc.kill()  # no chance to clean up: a power cut, an OOM kill
    proc.wait(timeout=30)
    again = json.loads(run_hearth(home, "ingest", folder, "--json").stdout)
    kept = again["unchanged"]
    assert kept >= 10
    assert sum(f["status"] == "added" for f in again["files"]) == 300 - kept
    assert consistent(home)[0] == 300


def test_failed_files_are_listed_and_retried_on_request(tmp_path, home):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "short.md").write_text("# Short\n\nA short note about the boiler.\n")
    (folder / "long.md").write_text("# Long\n\n" + "The pension letter arrived in March. " * 40)
    first = run_hearth(home, "ingest", folder, "--json", HEARTH_MAX_FILE_CHARS="200")
    files = {os.path.basename(f["path"]): f for f in json.loads(first.stdout)["files"]}
    assert files["short.md"]["status"] == "added"
    assert files["long.md"]["status"] == "failed" and "HEARTH_MAX_FILE_CHARS" in files["long.md"]["reason"]
    listed = json.loads(run_hearth(home, "docs", "--json").stdout)
    assert [os.path.basename(p["path"]) for p in listed["problems"]] == ["long.md"]

    again = json.loads(run_hearth(home, "ingest", folder, "--json").stdout)  # unchanged: not read again
    assert [(os.path.basename(f["path"]), f["status"]) for f in again["files"]] == [("long.md", "skipped")]

    retried = run_hearth(home, "ingest", "--retry-failed", "--json")  # no paths: every failed file
    report = json.loads(retried.stdout)
    assert retried.returncode == 0, retried.stderr
    assert [(os.path.basename(f["path"]), f["status"]) for f in report["files"]] == [("long.md", "added")]
    assert not json.loads(run_hearth(home, "docs", "--json").stdout)["problems"]
    nothing = run_hearth(home, "ingest", "--retry-failed")
    assert nothing.returncode == 0 and "no failed files" in nothing.stdout
    assert run_hearth(home, "ingest").returncode == 2  # neither paths nor --retry-failed


@pytest.mark.parametrize("sort", ["path", "size", "indexed"])
def test_documents_come_a_page_at_a_time_searched_and_sorted(tmp_path, home, sort):
    from rag.api import Hearth

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(30):
        (folder / f"{'receipt' if i % 3 == 0 else 'note'}_{i:02d}.md").write_text(f"# {i}\n\n" + "word " * (10 + i))
    with Hearth(load_settings()) as lib:
        lib.sync([folder])
        page, total = lib.documents_page(sort=sort, limit=7)
        assert total == 30 and len(page) == 7
        everything = [r for offset in range(0, 30, 7) for r in lib.documents_page(sort=sort, offset=offset, limit=7)[0]]
        assert len({r.path for r in everything}) == 30
        key = {"path": lambda r: r.path, "size": lambda r: r.size, "indexed": lambda r: r.indexed_at}[sort]
        assert [key(r) for r in everything] == sorted(key(r) for r in everything)
        down = lib.documents_page(sort=sort, descending=True, limit=30)[0]
        assert [key(r) for r in down] == sorted((key(r) for r in everything), reverse=True)
        found, matching = lib.documents_page(search="RECEIPT_", limit=50)
        assert matching == 10 and all("receipt_" in r.path for r in found)
        assert lib.documents_page(search="100%")[1] == 0  # LIKE's wildcards are searched as text
        with pytest.raises(ValueError):
            lib.documents_page(sort="path; DROP TABLE files")


def test_a_background_sync_from_the_api_shows_progress_stops_and_resumes(home, tmp_path, embedder):
    """Hearth.start_sync, the app's "Add a folder", without Streamlit: progress and rates while it runs,
    a stop within seconds keeping the files done, and the same sync again doing only the rest."""
    from rag.api import Hearth

    N = 1000  # about 40 s of work here: a stop lands well before the end

    folder = notes(tmp_path / "notes", N)
    with Hearth(load_settings(), embedder=embedder) as hearth:
        job = hearth.start_sync([folder], "my notes")
        wait_until(lambda: job.done >= 20 or not job.running, 300)
        assert job.running
        assert job.total == N and job.chunks > 0 and job.current.startswith(str(folder))
        wait_until(lambda: (rates := job.rates()) and rates.passages > 0 and rates.files > 0 or not job.running,
                   120)  # passages come in groups
        rates = job.rates()
        assert rates.files > 0 and rates.passages > 0 and rates.left_s > 0 and rates.pages == 0  # notes: no pages
        job.stop.set()
        assert job.wait(120) and job.error is None
        first = job.report
        assert first.stopped and 0 < first.left < N
        done = hearth.totals()[0]
        assert done == N - first.left

        again = hearth.start_sync([folder])
        assert again.wait(600) and again.error is None and not again.report.stopped
        assert again.report.count("added") == N - done and hearth.totals()[0] == N
        assert again.what == str(folder)  # named by its paths when not told
