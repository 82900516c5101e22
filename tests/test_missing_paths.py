"""A path that is not there (a drive not mounted, a renamed folder, a typo) removes nothing: `hearth
ingest` and `hearth watch` of it say how many documents are kept and how to forget them, and a watched
folder that goes away pauses its watch and resumes when it is back. Real files, store, model, CLI."""

from __future__ import annotations

import json
import os
import threading

import pytest

from conftest import run_hearth, wait_until
from ingest.watch import Watcher

pytestmark = pytest.mark.slow


def _notes(folder):
    folder.mkdir()
    (folder / "pumps.md").write_text("# Pumps\n\nBleed the pump before the first start of the season.\n")
    (folder / "valves.txt").write_text("Close the valve a quarter turn past finger tight.\n")
    return folder


def _indexed(home) -> list[str]:
    run = run_hearth(home, "docs", "--json")
    assert run.returncode == 0, run.stderr
    return sorted(d["path"] for d in json.loads(run.stdout)["documents"])


def test_ingest_of_a_folder_that_is_gone_keeps_its_documents(tmp_path):
    home, manuals = tmp_path / "home", _notes(tmp_path / "manuals")
    assert run_hearth(home, "ingest", manuals).returncode == 0
    before = _indexed(home)
    assert len(before) == 2
    os.rename(manuals, tmp_path / "manuals-unmounted")  # as if the drive were not mounted

    run = run_hearth(home, "ingest", manuals)
    said = " ".join(run.stdout.split())
    assert _indexed(home) == before, said  # nothing removed
    assert run.returncode == 1, said  # nothing could be done: a script notices
    told = " ".join(run.stderr.split())
    assert "nothing was removed; 2 document(s) indexed under it are kept" in told, told
    assert f"`hearth remove {manuals}` forgets them" in told
    typo = run_hearth(home, "ingest", tmp_path / "manauls" / "x")  # a path that never held anything
    assert typo.returncode == 1 and "no such file or folder" in typo.stdout

    watch = run_hearth(home, "watch", manuals)  # refused at once, with the same count
    assert watch.returncode == 2 and "2 documents indexed under it are kept" in " ".join(watch.stderr.split())
    assert _indexed(home) == before

    gone = run_hearth(home, "remove", manuals)  # forgetting them is the user's choice
    assert gone.returncode == 0 and "2 document(s) removed" in gone.stdout
    assert _indexed(home) == []


def test_a_watched_folder_renamed_away_and_back_pauses_and_resumes(open_library, tmp_path, embedder):
    embedder.embed(["load the model first"])
    watched, other = _notes(tmp_path / "watched"), tmp_path / "other"
    other.mkdir()
    lines: list[str] = []
    watcher = Watcher(open_library(), [watched, other], on_change=lines.append)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert watcher.ready.wait(120)
        lib = open_library()
        kept = sorted(str(watched / n) for n in ("pumps.md", "valves.txt"))
        assert sorted(r.path for r in lib.documents()) == kept

        away = tmp_path / "watched-away"
        os.rename(watched, away)
        (away / "pumps.md").write_text("# Pumps\n\nPrime the pump with two litres of water first.\n")  # edited while away
        # A change in the other folder, synced after the events of the one that went away: a barrier.
        (other / "hoses.md").write_text("# Hoses\n\nCoil the hose loosely before winter.\n")
        wait_until(lambda: str(other / "hoses.md") in {r.path for r in lib.documents()}, timeout=120)
        assert sorted(r.path for r in lib.documents() if r.path.startswith(str(watched))) == kept  # nothing deleted
        wait_until(lambda: watcher.paused == [str(watched)])
        assert any(line.startswith(f"paused {watched}") and "2 documents" in line for line in lines), lines

        os.rename(away, watched)  # back: the edit made while it was away is picked up
        wait_until(lambda: watcher.paused == [], timeout=120)
        wait_until(lambda: any("Prime the pump" in t for t in lib.texts(
            lib.collection.get(where={"source": str(watched / "pumps.md")}, include=[])["ids"]).values()), timeout=120)
        assert any(line.startswith(f"resumed {watched}") for line in lines), lines
        (watched / "filters.txt").write_text("Rinse the filter every fortnight.\n")  # followed live again
        wait_until(lambda: str(watched / "filters.txt") in {r.path for r in lib.documents()}, timeout=120)
        assert not [r for r in watcher.results if r.status == "removed"]
    finally:
        watcher.stop()
        thread.join(60)
    assert not thread.is_alive()
