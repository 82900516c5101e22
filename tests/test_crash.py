"""kill -9 an ingest subprocess at random moments; the next run must repair the store to exactly
what a clean ingest of the same folder gives: same documents and chunks, no duplicates, no orphans."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT, hearth_command, store_snapshot
from ingest.pipeline import Ingestor

sys.path.insert(0, str(ROOT / "bench"))
from crash import journal_size, kill_sometime, time_ingest  # noqa: E402  (the kill routine of bench/crash.py)

pytestmark = pytest.mark.slow


def _corpus(root, manuals):
    root.mkdir()
    # One manual (R-intro as well doubled the test's time: the kills are drawn from this ingest's own time).
    shutil.copy(manuals / "R-data.pdf", root / "R-data.pdf")
    rng = random.Random(7)
    words = "river stone lantern orchard copper violin harbour meadow signal pepper winter ladder".split()
    for i in range(40):
        body = "\n\n".join(" ".join(rng.choice(words) for _ in range(60)) + "." for _ in range(6))
        (root / f"note-{i:02d}.md").write_text(f"# Note {i}\n\n{body}\n")
    return root


def _ingest_process(home, corpus):
    argv, env = hearth_command(home, "ingest", corpus, "--json")
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_killed_ingests_repair_to_a_clean_ingest(tmp_path, manuals, open_library, monkeypatch):
    seed = int(os.environ.get("HEARTH_KILL_SEED", time.time()))
    rng = random.Random(seed)
    print(f"kill seed {seed}")
    corpus = _corpus(tmp_path / "corpus", manuals)
    clean_home = tmp_path / "clean-home"
    # The clean ingest to compare with, timed: kills are drawn from its start-up and writing time, so
    # they land inside a run on this machine and on one three times slower alike.
    startup, total = time_ingest(_ingest_process(clean_home, corpus), clean_home)
    writing = total - startup
    home = tmp_path / "killed-home"
    mutations = {
        2: lambda: (corpus / "note-03.md").write_text("# Note 3\n\nRewritten after a crash.\n"),
        3: lambda: os.rename(corpus / "R-data.pdf", corpus / "R-data-renamed.pdf"),
        4: lambda: ((corpus / "note-05.md").unlink(), (corpus / "note-99.md").write_text("# New\n\nAdded late.\n")),
    }
    interrupted = mid_write = 0
    for round_ in range(7):
        proc = _ingest_process(home, corpus)
        # Half the kills land at a random time, half while a write is in flight (journal not empty).
        # Each random one takes at most an eighth of the writing, so all seven rounds find work left.
        after = rng.uniform(0.5 * startup, startup + writing / 8)
        if kill_sometime(proc, home, rng, after, in_write=round_ % 2 == 1):
            interrupted += 1
            mid_write += journal_size(home) > 0
        if round_ in mutations:
            mutations[round_]()
    final = _ingest_process(home, corpus)
    _, stderr = final.communicate(timeout=600)
    assert final.returncode == 0, stderr.decode()[-2000:]

    monkeypatch.setenv("HEARTH_HOME", str(home))
    repaired = open_library()
    monkeypatch.setenv("HEARTH_HOME", str(clean_home))
    clean = open_library()
    Ingestor(clean).sync([corpus])  # the mutations since: small

    got, want = store_snapshot(repaired), store_snapshot(clean)
    print(f"clean ingest {total:.1f} s (first write at {startup:.1f} s); {interrupted} kills interrupted a run, "
          f"{mid_write} with writes in flight")
    assert interrupted >= 5 and mid_write >= 2
    assert got["journal"] == [] and got["orphans"] == [] and got["ids_unique"]
    assert got["documents"] == want["documents"]
    assert len(got["chunks"]) == len(want["chunks"]) == repaired.collection.count()
    assert got["chunks"] == want["chunks"] and got["keywords"] == want["keywords"]


def _usable(lib, want: dict, phrase: str, source: str):
    """The library holds every document whole and answers a search: old vectors or rebuilt ones."""
    from rag.retrieval import search

    got = store_snapshot(lib)
    assert got["documents"] == want["documents"] and got["journal"] == [] and got["orphans"] == []
    assert sorted(c[:4] for c in got["chunks"]) == sorted(c[:4] for c in want["chunks"])
    assert lib.collection.count() == sum(n for _, _, n in want["documents"])
    for mode in ("dense", "keyword", "hybrid"):
        assert os.path.basename(search(lib, phrase, k=3, mode=mode)[0].source) == source


def test_a_reembed_killed_at_any_point_leaves_a_usable_library(tmp_path, manuals, open_library, monkeypatch):
    """`hearth ingest --reembed` builds beside the collection and swaps in one transaction: killed
    while building, the old collection serves; the swap done but the old vectors not yet deleted,
    the new one does; the next write removes what the kill left behind."""
    from ingest.pipeline import Ingestor, rebuild

    rng = random.Random(int(os.environ.get("HEARTH_KILL_SEED", time.time())))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(manuals / "R-data.pdf", corpus / "R-data.pdf")
    for i in range(30):
        (corpus / f"note-{i:02d}.md").write_text(f"# Note {i}\n\nThe lantern number {i} hangs in the orchard.\n")
    home = tmp_path / "home"
    time_ingest(_ingest_process(home, corpus), home)
    argv, env = hearth_command(home, "ingest", "--reembed", corpus)
    # a whole rebuild timed, to draw the kills from (it embeds the stored passages, reading no file)
    startup, total = time_ingest(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL), home)
    monkeypatch.setenv("HEARTH_HOME", str(home))
    want = store_snapshot(open_library())
    phrase, source = "importing data from spreadsheets such as Excel", "R-data.pdf"

    kills = 0
    for _ in range(4):
        argv, env = hearth_command(home, "ingest", "--reembed", corpus)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if kill_sometime(proc, home, rng, rng.uniform(0.5 * startup, 0.7 * total), in_write=rng.random() < 0.5):
            kills += 1
        _usable(open_library(), want, phrase, source)
    assert kills >= 2, f"only {kills} of 4 kills landed inside a rebuild"

    # The one moment a random kill rarely hits: the swap committed, the old vectors not yet deleted.
    lib = open_library()
    with lib.writing():
        lib.files.set_swept(False)  # as rebuild() marks it before its collection exists
        build = type(lib)(lib.settings, lib.name, physical=lib.name + ".reembed-0123abcd")
        build.embedder = lib.embedder
        Ingestor(build).sync([corpus])
        old = lib.physical
        lib.files.swap_to(build.physical)
    assert old in lib.chroma_names()  # left, as by a crash at that point
    _usable(open_library(), want, phrase, source)

    with lib.writing():  # any next write cleans up; a finished rebuild leaves nothing behind
        rebuild(lib)
    names = [n for n in lib.chroma_names() if n.startswith(lib.name)]
    assert names == [lib.physical] and lib.files.rebuilds() == []
    assert [c[0] for c in lib.files.collections()] == ["default"]
    _usable(open_library(), want, phrase, source)
