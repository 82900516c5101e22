"""Folder watch with real filesystem events (inotify via watchdog) in a temp folder, a real store
and the real embedding model; the kill test runs the real `hearth watch` command."""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import threading
import time

import pytest

from conftest import hearth_command, store_snapshot, wait_until
from ingest.pipeline import Ingestor
from ingest.watch import Watcher
from make_files import corrupt_pdf, text_pdf
from rag.retrieval import search

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "watched"
    path.mkdir()
    return path


@pytest.fixture
def watch(open_library, folder, embedder):
    """Start a Watcher on the folder in a thread (as the app does); stopped after the test."""
    embedder.embed(["load the model before the clock starts"])
    running = []

    def _start():
        watcher = Watcher(open_library(), [folder])
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        assert watcher.ready.wait(120), "the first reconcile did not finish"
        running.append((watcher, thread))
        return watcher

    yield _start
    for watcher, thread in running:
        watcher.stop()
        thread.join(60)
        assert not thread.is_alive()


def found(lib, query: str, source) -> bool:
    return any(h.source == str(source) for h in search(lib, query, 3))


def paths(lib) -> list[str]:
    return sorted(r.path for r in lib.documents())


def test_a_copied_pdf_becomes_searchable(watch, open_library, folder, tmp_path):
    """Each copied PDF is found by a search soon after; the delays are printed (bench figures, not
    asserted: this machine is shared)."""
    watch()
    reader = open_library()
    delays = []
    for i, (animal, fact) in enumerate([("otters", "hold hands while they sleep"), ("wombats", "leave cube-shaped droppings"),
                                        ("octopuses", "have three hearts"), ("flamingos", "are pink from their food"),
                                        ("axolotls", "regrow lost limbs")]):
        source = text_pdf(tmp_path / f"{animal}.pdf", [f"Field notes {i}. The {animal} {fact}."], title=animal)
        copied = time.monotonic()
        shutil.copy(source, folder)
        wait_until(lambda: found(reader, f"Which animal {fact}?", folder / f"{animal}.pdf"), timeout=120)
        delays.append(time.monotonic() - copied)
    print(f"\nchange to searchable: median {statistics.median(delays):.2f} s, worst {max(delays):.2f} s "
          f"({', '.join(f'{d:.2f}' for d in delays)})")


def test_an_edit_replaces_the_old_text(watch, open_library, folder):
    note = folder / "note.md"
    note.write_text("# Note\n\nThe code word for the safe is albatross.\n")
    watcher = watch()
    lib = open_library()
    note.write_text("# Note\n\nThe code word for the safe is pelican.\n")
    wait_until(lambda: any(r.status == "updated" for r in watcher.results))
    texts = list(lib.texts(lib.collection.get(where={"source": str(note)}, include=[])["ids"]).values())
    assert len(texts) == 1 and "pelican" in texts[0] and "albatross" not in texts[0]


def test_renames_and_folder_moves_keep_their_vectors(watch, open_library, folder, embedder):
    (folder / "papers").mkdir()
    for name in ("a", "b", "c"):
        (folder / "papers" / f"{name}.txt").write_text(f"Paper {name}: " + "a sentence about soil. " * 40)
    (folder / "lone.md").write_text("# Lone\n\nA single note about compost heaps.\n")
    watcher = watch()
    lib = open_library()
    chunks_before = lib.collection.count()
    calls = embedder.calls
    os.rename(folder / "lone.md", folder / "renamed.md")
    os.rename(folder / "papers", folder / "articles")
    wait_until(lambda: paths(lib) == sorted([str(folder / "renamed.md")] +
                                            [str(folder / "articles" / f"{n}.txt") for n in "abc"]))
    assert embedder.calls == calls, "a move must not re-embed"
    assert lib.collection.count() == chunks_before
    assert sum(r.status == "moved" for r in watcher.results) == 4
    assert found(lib, "compost heaps", folder / "renamed.md")


def test_deleting_a_file_or_a_folder_removes_it(watch, open_library, folder):
    (folder / "keep.txt").write_text("Keep this note about bicycles.")
    (folder / "gone.txt").write_text("Delete this note about kayaks.")
    (folder / "old").mkdir()
    for n in range(3):
        (folder / "old" / f"{n}.txt").write_text(f"Old note {n} about typewriters.")
    watch()
    lib = open_library()
    assert len(paths(lib)) == 5
    os.remove(folder / "gone.txt")
    shutil.rmtree(folder / "old")
    wait_until(lambda: paths(lib) == [str(folder / "keep.txt")])
    assert lib.collection.count() == 1 and not found(lib, "kayaks", folder / "gone.txt")


def test_200_files_dropped_at_once_are_each_ingested_once(watch, open_library, folder, tmp_path, embedder):
    staging = tmp_path / "staging"
    staging.mkdir()
    for n in range(200):
        (staging / f"note-{n:03}.txt").write_text(f"Note {n}: the number {n} is written as {n:,} here.")
    watcher = watch()
    lib = open_library()
    calls = embedder.calls
    started = time.monotonic()
    shutil.copytree(staging, folder / "burst")
    wait_until(lambda: len(paths(lib)) == 200 and watcher.idle(), timeout=120)
    took = time.monotonic() - started
    added = [r.path for r in watcher.results if r.status == "added"]
    assert len(added) == 200 and len(set(added)) == 200  # each file once
    assert not [r for r in watcher.results if r.status != "added"]
    assert embedder.calls - calls == lib.collection.count() == 200  # each chunk embedded once
    print(f"\n200 files: all searchable {took:.1f} s after the copy began, in {watcher.batches - 1} batches")


def test_ignored_names_growing_files_and_bad_files(watch, open_library, folder):
    watcher = watch()
    lib = open_library()
    for name in (".hidden.md", "~$report.docx", "draft.tmp", "film.part", "setup.crdownload", ".note.md.swp"):
        (folder / name).write_bytes(b"ignore me")
    corrupt_pdf(folder / "broken.pdf")
    growing = folder / "growing.txt"
    with open(growing, "w") as fh:  # a slow copy: written in pieces for ~2.5 s
        for n in range(8):
            fh.write(f"Part {n} of a long transfer about lighthouses. ")
            fh.flush()
            time.sleep(0.3)
    wait_until(lambda: str(growing) in paths(lib) and str(folder / "broken.pdf") in lib.files.problems())
    wait_until(watcher.idle)
    text = list(lib.texts(lib.collection.get(where={"source": str(growing)}, include=[])["ids"]).values())
    assert "Part 7" in " ".join(text)  # ingested once complete ...
    assert [r.status for r in watcher.results if r.path == str(growing)] == ["added"]  # ... and only then
    assert paths(lib) == [str(growing)]  # nothing ignored was ingested
    assert "corrupt or unreadable PDF" in lib.files.problems()[str(folder / "broken.pdf")][0]
    (folder / "after.txt").write_text("Written after the bad file: about harbours.")  # still watching
    wait_until(lambda: found(lib, "harbours", folder / "after.txt"))


def _hearth(home, *args, **kw):
    argv, env = hearth_command(home, *args)
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _wait_for_line(proc, text: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no {text!r} from hearth watch: {''.join(lines)[-2000:]}")


def test_a_killed_watcher_restarted_converges_beside_a_manual_ingest(home, open_library, folder, tmp_path, manuals):
    shutil.copy(manuals / "R-data.pdf", folder)
    watcher = _hearth(home, "watch", folder)
    _wait_for_line(watcher, "watching")
    for n in range(60):  # a burst, and a kill -9 in the middle of it
        (folder / f"n{n:02}.md").write_text(f"# Note {n}\n\n" + f"Line {n} about river barges. " * (20 + n))
    time.sleep(2.0)
    os.kill(watcher.pid, signal.SIGKILL)
    watcher.wait()
    partly = len(open_library().documents())
    (folder / "n00.md").unlink()  # changes made while nothing watched
    os.rename(folder / "n01.md", folder / "renamed.md")
    restarted = _hearth(home, "watch", folder)
    manual = _hearth(home, "ingest", folder)  # a second writer at the same time: it waits its turn
    assert manual.wait(300) == 0, manual.stdout.read()
    _wait_for_line(restarted, "watching")
    lib = open_library()
    wait_until(lambda: len(lib.documents()) == 60, timeout=120)
    restarted.send_signal(signal.SIGINT)  # Ctrl-C: stops cleanly
    assert restarted.wait(60) == 0
    clean = open_library("clean-copy")
    Ingestor(clean).sync([folder])
    got, want = store_snapshot(open_library()), store_snapshot(clean)
    assert got["documents"] == want["documents"] and got["chunks"] == want["chunks"] and got["keywords"] == want["keywords"]
    assert got["ids_unique"] and not got["orphans"] and not got["journal"]
    print(f"\nkilled with {partly}/61 documents in; after the restart: {len(got['documents'])}, identical to a clean ingest")


def test_symlinks_pointing_outside_are_not_followed(watch, folder, tmp_path, open_library):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The safe combination is 4-8-15.")
    (outside / "more").mkdir()
    (outside / "more" / "diary.md").write_text("# Diary\n\nPrivate thoughts about the neighbours.")
    os.symlink(outside / "secret.txt", folder / "link-to-secret.txt")  # there before the watch starts
    watcher = watch()
    os.symlink(outside / "more", folder / "link-to-folder")  # and made while it watches
    (folder / "real.txt").write_text("The lawn is mowed on Saturdays.")
    lib = open_library()
    wait_until(lambda: [os.path.basename(r.path) for r in lib.documents()] == ["real.txt"])
    wait_until(watcher.idle)
    Ingestor(lib).sync([folder])  # a manual sync of the folder does not follow them either
    assert [os.path.basename(r.path) for r in lib.documents()] == ["real.txt"]
    assert not any("combination" in h.text or "neighbours" in h.text for h in search(lib, "safe combination diary", k=5))
