"""Hearth against a real Chroma server (`chroma run`, from the chromadb package): HEARTH_CHROMA_URL.

Two instances (two HEARTH_HOMEs, as on two machines) share one library through the server: what one
ingests, changes or deletes, the other lists and finds, keyword search included. A server restart in
the middle of a session gives a clear message, and the same session works once it is back.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from chroma_server import ChromaServer
from conftest import ROOT, hearth_command, run_hearth, store_snapshot, wait_until
from ingest.pipeline import Ingestor
from ingest.errors import StoreUnreachable
from ingest.watch import Watcher
from rag.retrieval import search

sys.path.insert(0, str(ROOT / "bench"))
from crash import time_ingest  # noqa: E402  (bench/crash.py's timing of a clean ingest)

pytestmark = pytest.mark.slow


@pytest.fixture
def chroma(home, tmp_path, monkeypatch):
    server = ChromaServer(tmp_path / "chroma-server").start()
    monkeypatch.setenv("HEARTH_CHROMA_URL", server.url)
    yield server
    server.stop()


def _notes(root: Path, n: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    topics = ["lantern repair", "orchard pruning", "violin tuning", "harbour tides", "copper roofing", "winter pepper"]
    for i in range(n):
        (root / f"note-{i}.md").write_text(f"# {topics[i % len(topics)].title()}\n\nNotes on {topics[i % len(topics)]}: "
                                           f"step {i} of the household guide, kept by the family for years.\n")
    return root


def _ingest(home, folder) -> Counter:
    got = run_hearth(home, "ingest", folder, "--json")
    assert got.returncode == 0, got.stderr
    report = json.loads(got.stdout)
    return Counter(f["status"] for f in report["files"]) + Counter(unchanged=report["unchanged"])


def _docs(home, **env) -> dict:
    got = run_hearth(home, "docs", "--json", **env)
    assert got.returncode == 0, got.stderr
    return {Path(d["path"]).name: d for d in json.loads(got.stdout)["documents"]}


def _found(home, query, mode="hybrid") -> list[str]:
    got = run_hearth(home, "search", query, "--mode", mode, "--json", "-k", "3")
    assert got.returncode == 0, got.stderr
    return [Path(h["source"]).name for h in json.loads(got.stdout)["hits"]]


def test_two_instances_share_one_library_through_the_server(chroma, tmp_path):
    folder = _notes(tmp_path / "notes")
    (folder / "R-data.pdf").write_bytes((ROOT / "data" / "R-data.pdf").read_bytes())  # a real PDF
    writer, reader = tmp_path / "machine-a", tmp_path / "machine-b"

    assert _ingest(writer, folder) == Counter(added=7)
    assert _ingest(writer, folder) == Counter(unchanged=7)

    # The other instance has never ingested anything: it sees the same documents, and its keyword
    # index is built from the server's chunks on its first search.
    assert set(_docs(reader)) == {f"note-{i}.md" for i in range(6)} | {"R-data.pdf"}
    assert _docs(reader)["R-data.pdf"]["pages"] == 41
    assert _found(reader, "violin tuning", mode="keyword")[0] == "note-2.md"
    assert _found(reader, "import data from a spreadsheet")[0] == "R-data.pdf"

    # Re-sync: one changed, one deleted, one added, one renamed; the reader follows.
    (folder / "note-2.md").write_text("# Cello\n\nThe cello is tuned in fifths: C G D A.\n")
    (folder / "note-3.md").unlink()
    (folder / "note-9.md").write_text("# Beekeeping\n\nInspect the hive every nine days in spring.\n")
    (folder / "note-4.md").rename(folder / "roof.md")
    assert _ingest(writer, folder) == Counter(updated=1, removed=1, added=1, moved=1, unchanged=4)
    names = set(_docs(reader))
    assert {"note-9.md", "roof.md"} <= names and not {"note-3.md", "note-4.md"} & names
    assert _found(reader, "violin", mode="keyword") == []  # the old text left the reader's keyword index too
    assert _found(reader, "hive inspection", mode="keyword")[0] == "note-9.md"
    assert "note-3.md" not in _found(reader, "harbour tides")

    # Delete from the reader: the writer sees it gone.
    removed = run_hearth(reader, "remove", folder / "R-data.pdf", "--json")
    assert removed.returncode == 0, removed.stderr
    assert "R-data.pdf" not in _docs(writer)
    assert "R-data.pdf" not in _found(writer, "import data from a spreadsheet")
    listing = run_hearth(reader, "collections", "--json")
    assert json.loads(listing.stdout) == [{"name": "default", "embed_model": "all-MiniLM-L6-v2", "dimension": 384,
                                           "documents": 6}]
    # Nothing of the library is kept on either machine but the keyword cache and the writer lock.
    for home in (writer, reader):
        assert not (home / "chroma").exists() and not (home / "manifest.sqlite3").exists()


@pytest.mark.xdist_group("model-server")  # see tests/test_answer_e2e.py
def test_ask_answers_from_the_server_store(chroma, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "boiler.md").write_text("# Boiler\n\nThe boiler's service code is 7731. It is serviced every October.\n")
    home = tmp_path / "home"
    assert _ingest(home, folder) == Counter(added=1)
    started = run_hearth(home, "llm", "start", "--engine", "llamacpp", timeout=900)
    assert started.returncode == 0, started.stderr
    try:
        got = run_hearth(home, "ask", "What is the boiler's service code?", "--json", timeout=600)
    finally:
        run_hearth(home, "llm", "stop")
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout)
    assert "7731" in answer["answer"] and not answer["error"]
    assert Path(answer["sources"][0]["source"]).name == "boiler.md"


def test_a_server_restart_mid_session_is_survived(chroma, tmp_path, open_library, monkeypatch):
    folder = _notes(tmp_path / "notes")
    lib = open_library()  # one long-lived session, as the app or a watch holds
    Ingestor(lib).sync([folder])
    assert search(lib, "orchard pruning", k=1)[0].source.endswith("note-1.md")

    chroma.stop()
    with pytest.raises(StoreUnreachable, match=f"Chroma server at {chroma.url} is not answering.*Nothing was lost"):
        Ingestor(lib).sync([folder])
    cli = run_hearth(tmp_path / "other", "search", "orchard")
    assert cli.returncode == 5 and "is not answering (could not connect): is it running?" in " ".join(cli.stderr.split())
    assert "Traceback" not in cli.stderr

    chroma.start()  # same folder, same port: the session carries on without reopening anything
    assert search(lib, "orchard pruning", k=1)[0].source.endswith("note-1.md")
    (folder / "note-7.md").write_text("# Kiln\n\nFire the kiln slowly to 900 degrees.\n")
    report = Ingestor(lib).sync([folder])
    assert report.count("added") == 1 and report.unchanged == 6


def test_watch_retries_through_a_server_restart(chroma, tmp_path, open_library):
    folder = _notes(tmp_path / "notes", n=2)
    lib = open_library()
    lines: list[str] = []
    watcher = Watcher(lib, [folder], on_change=lines.append)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(lib.documents()) == 2, 60)
        chroma.stop()
        (folder / "note-5.md").write_text("# Loom\n\nWarp the loom before the weft.\n")
        wait_until(lambda: any("is not answering" in line for line in lines), 60)
        assert any("retrying in" in line for line in lines)
        chroma.start()
        wait_until(lambda: any(Path(r.path).name == "note-5.md" and r.status == "added" for r in watcher.results), 90)
    finally:
        watcher.stop()
        thread.join(timeout=60)
    assert sorted(Path(r.path).name for r in lib.documents()) == ["note-0.md", "note-1.md", "note-5.md"]


def test_killed_ingests_into_the_server_repair_to_a_clean_ingest(chroma, tmp_path, manuals, open_library, monkeypatch):
    """The catalog's two-call transactions (catalog.py) under kill -9: the next run repairs."""
    rng = random.Random(int(os.environ.get("HEARTH_KILL_SEED", time.time())))
    corpus = _notes(tmp_path / "corpus", n=30)
    (corpus / "R-data.pdf").write_bytes((manuals / "R-data.pdf").read_bytes())
    # A clean local ingest, timed first: kills drawn from its times land inside a run on a fast
    # machine and a slow one (the server's runs write more slowly still).
    clean_home = tmp_path / "clean"
    startup, total = time_ingest(_spawn(clean_home, "ingest", corpus, HEARTH_CHROMA_URL="", stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL), clean_home)
    home = tmp_path / "killed"
    kills = 0
    for round_ in range(5):
        argv, env = hearth_command(home, "ingest", corpus)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5 * startup, startup + (total - startup) / 5))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
        if round_ == 2:
            (corpus / "note-3.md").write_text("# Rewritten\n\nAfter a crash.\n")
            (corpus / "note-4.md").rename(corpus / "moved.md")
    final = run_hearth(home, "ingest", corpus)
    assert final.returncode == 0, final.stderr
    assert kills >= 2, f"only {kills} of 5 kills landed inside a run"

    monkeypatch.setenv("HEARTH_HOME", str(home))  # the killed runs' instance: its journal must be empty
    repaired = open_library()
    monkeypatch.setenv("HEARTH_CHROMA_URL", "")
    monkeypatch.setenv("HEARTH_HOME", str(clean_home))
    clean = open_library()
    Ingestor(clean).sync([corpus])  # the changes made since its timed run
    search(repaired, "kiln", mode="keyword")  # brings this instance's keyword cache up to date
    got, want = store_snapshot(repaired), store_snapshot(clean)
    assert got["journal"] == [] and got["orphans"] == [] and got["ids_unique"]
    assert got["documents"] == want["documents"] and got["chunks"] == want["chunks"]
    assert got["keywords"] == want["keywords"]


def test_a_token_reaches_the_server_through_a_checking_proxy(chroma, tmp_path, monkeypatch):
    """HEARTH_CHROMA_TOKEN is sent as a bearer token (a team puts a proxy that checks one in front of
    Chroma); a missing or wrong token is a clear refusal, not a traceback."""
    from token_proxy import TokenProxy

    folder = _notes(tmp_path / "notes", n=2)
    home = tmp_path / "home"
    with TokenProxy(chroma.port, "s3cret") as proxy:
        monkeypatch.setenv("HEARTH_CHROMA_URL", proxy.url)
        added = run_hearth(home, "ingest", folder, HEARTH_CHROMA_TOKEN="s3cret")
        assert added.returncode == 0, added.stderr
        assert set(_docs(home, HEARTH_CHROMA_TOKEN="s3cret")) == {"note-0.md", "note-1.md"}
        for token in ("", "wrong"):
            refused = run_hearth(home, "docs", HEARTH_CHROMA_TOKEN=token)
            assert refused.returncode == 5 and "Traceback" not in refused.stderr
            assert f"the Chroma server at {proxy.url} refused Hearth (HTTP 401): check HEARTH_CHROMA_TOKEN" in " ".join(refused.stderr.split())


def _plain(markdown: str) -> str:
    return markdown.replace("\\", "").replace("\u2060", "")


def test_the_app_on_a_chroma_server_says_when_it_is_down_and_recovers(chroma, tmp_path, open_library):
    from streamlit.testing.v1 import AppTest

    Ingestor(open_library()).sync([_notes(tmp_path / "notes", n=2)])
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert any("2 documents" in c.value for c in at.sidebar.caption)  # the store status, from the server
    at.chat_input[0].set_value("How are orchards pruned?").run()
    assert at.main.expander and "note-1.md" in _plain(at.main.expander[0].label)

    chroma.stop()
    at.chat_input[0].set_value("How are violins tuned?").run()
    assert not at.exception
    assert any(f"the Chroma server at {chroma.url} is not answering" in _plain(e.value) for e in at.error), [e.value for e in at.error]
    assert "Try again" in [b.label for b in at.button]
    chroma.start()
    next(b for b in at.button if b.label == "Try again").click().run()
    assert not at.exception and not at.error
    from ingest.settings import load_settings
    from rag.chats import Chats

    assert len(Chats(load_settings()).answers(at.session_state.open_chat["default"])) == 1  # the chat so far is kept


def _catalog(chroma):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host="127.0.0.1", port=chroma.port, settings=ChromaSettings(anonymized_telemetry=False))
    return client.get_collection("hearth-catalog")


def _check_clean(home, corpus, tmp_path, open_library, monkeypatch):
    """The server's library, seen from `home`, is exactly a clean local ingest of `corpus`."""
    monkeypatch.setenv("HEARTH_HOME", str(home))
    shared = open_library()
    search(shared, "lantern", mode="keyword")  # brings this instance's keyword cache up to date
    monkeypatch.setenv("HEARTH_CHROMA_URL", "")
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / f"clean-{home.name}"))
    clean = open_library()
    Ingestor(clean).sync([corpus])
    got, want = store_snapshot(shared), store_snapshot(clean)
    assert got["orphans"] == [] and got["ids_unique"] and got["journal"] == []
    assert got["documents"] == want["documents"] and got["chunks"] == want["chunks"]
    assert got["keywords"] == want["keywords"]


def test_one_writer_at_a_time_across_instances_and_a_killed_holder_is_taken_over(chroma, tmp_path, manuals,
                                                                                   open_library, monkeypatch):
    """Two machines ingest the same folder at once: the server's lease lets one write at a time, so
    no chunk is orphaned. The holder killed -9 mid-write: the other waits for the lease to expire,
    takes it over, sweeps what the dead writer left, and finishes."""
    corpus = _notes(tmp_path / "corpus", n=30)
    a, b = tmp_path / "machine-a", tmp_path / "machine-b"
    both = [_spawn(home, "ingest", corpus, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for home in (a, b)]
    for proc in both:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    assert (a / "instance-id").read_text() != (b / "instance-id").read_text()  # random, one per home
    _check_clean(a, corpus, tmp_path, open_library, monkeypatch)
    monkeypatch.setenv("HEARTH_CHROMA_URL", chroma.url)

    (corpus / "R-intro.pdf").write_bytes((manuals / "R-intro.pdf").read_bytes())  # work for a kill mid-write
    holder = _spawn(a, "ingest", corpus, HEARTH_CHROMA_LEASE_S="6", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    catalog = _catalog(chroma)
    wait_until(lambda: len(catalog.get(where={"kind": "journal"})["ids"]) > 0, 120)  # A is writing
    waiter = _spawn(b, "ingest", corpus, HEARTH_CHROMA_LEASE_S="6", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    text=True)
    time.sleep(1.5)
    assert holder.poll() is None and waiter.poll() is None  # B waits for A's lease
    holder.kill()
    holder.wait()
    assert catalog.get(where={"kind": "journal"})["ids"]  # A died mid-write, leaving its journal
    _, stderr = waiter.communicate(timeout=600)
    assert waiter.returncode == 0, stderr[-2000:]
    assert "waiting for another Hearth instance" in stderr
    assert catalog.get(where={"kind": "journal"})["ids"] == []  # swept, A's entries too
    _check_clean(b, corpus, tmp_path, open_library, monkeypatch)


def _spawn(home, *args, stdout=None, stderr=None, text=False, **env) -> subprocess.Popen:
    argv, environ = hearth_command(home, *args, **env)
    return subprocess.Popen(argv, env=environ, stdout=stdout, stderr=stderr, text=text)


def test_a_sync_leaves_other_instances_documents_alone(chroma, tmp_path):
    """The same path on two machines holds different files: a sync removes only what the syncing
    instance itself added and no longer finds."""
    folder = _notes(tmp_path / "shared-path", n=3)
    a, b = tmp_path / "machine-a", tmp_path / "machine-b"
    assert _ingest(a, folder) == Counter(added=3)
    (folder / "note-2.md").unlink()  # not on machine B
    (folder / "b-only.md").write_text("# Kiln\n\nFire the kiln slowly to 900 degrees.\n")
    assert _ingest(b, folder) == Counter(added=1, unchanged=2)
    assert set(_docs(a)) == {"note-0.md", "note-1.md", "note-2.md", "b-only.md"}  # A's note-2 kept
    assert _ingest(a, folder) == Counter(removed=1, unchanged=3)  # A's own file gone: A removes it
    assert set(_docs(b)) == {"note-0.md", "note-1.md", "b-only.md"}


class _StallFileRecords:
    """A's catalog collection: the write of its file records stops after the lease's fence passed, as a
    process paused there would (its lease renewals stop too), until let go."""

    def __init__(self, lib):
        self.lib, self.collection = lib, lib.catalog.collection
        self.reached, self.go = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.collection, name)

    def upsert(self, ids, **kwargs):
        if any(i.startswith("file:") for i in ids) and not self.reached.is_set():
            self.lib.lease._done.set()  # paused: no more renewals either
            self.reached.set()
            assert self.go.wait(120)
        return self.collection.upsert(ids=ids, **kwargs)


def test_a_writer_stalled_between_its_fence_and_its_write_cannot_undo_the_next_holder(chroma, tmp_path, open_library,
                                                                                         monkeypatch):
    """A passes its lease's fence and stalls before its catalog write; its lease runs out and B takes
    over, then rewrites one of A's files. A's write lands after all that: it must not replace B's
    record, nor name passages B's takeover swept (a document recorded with no passages is lost)."""
    from ingest.errors import LeaseLost
    from ingest.library import chunk_id

    folder = tmp_path / "notes"
    folder.mkdir()
    same, new = folder / "same.md", folder / "new.md"
    same.write_text("# Lamp\n\nThe lamp burns lantern oil from the blue tin.\n")
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "machine-a"))
    a = open_library(chroma_lease_s=3)
    with a.writing():
        Ingestor(a).sync([folder])

    same.write_text("# Lamp\n\nThe lamp burns whale tallow from the red jar.\n")  # A's version, stalled
    new.write_text("# Kiln\n\nFire the kiln slowly to nine hundred degrees.\n")
    a.catalog.collection = stall = _StallFileRecords(a)
    outcome = []

    def a_writes():
        try:
            with a.writing():
                Ingestor(a).sync([folder])
            outcome.append("wrote")
        except LeaseLost:
            outcome.append("lost")

    writer = threading.Thread(target=a_writes)
    writer.start()
    assert stall.reached.wait(120)  # A's fence passed; its write not sent
    time.sleep(3.5)  # A's lease runs out

    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "machine-b"))
    b = open_library(chroma_lease_s=3)
    same.write_text("# Lamp\n\nThe lamp burns beeswax candles from the cellar.\n")  # B's version
    try:
        with b.writing():
            Ingestor(b).sync([same])  # B takes over (sweeping A's writes in flight) and rewrites same.md
            assert b.lease.number > a.lease.number
    finally:
        stall.go.set()  # A's stale write lands now
    writer.join(120)
    assert outcome == ["lost"]  # and A learns, at its next fence, that it lost the lease

    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "machine-c"))
    c = open_library()
    state = c.snapshot()
    assert [(Path(p).name, n) for p, _, n in state["documents"]] == [("same.md", 1)]  # B's record, and no new.md
    assert state["orphans"] == [] and {Path(source).name for source, *_ in state["chunks"]} == {"same.md"}
    assert [Path(h.source).name for h in search(c, "beeswax candles cellar", mode="keyword")] == ["same.md"]
    assert search(c, "whale tallow red jar", mode="keyword") == []
    for doc in c.documents():  # every recorded document has its passages
        assert len(c.chunks([chunk_id(doc.doc_id, i) for i in range(doc.chunks)])) == doc.chunks

    with b.writing():
        Ingestor(b).sync([folder])  # the next sync reads new.md again: nothing of it was lost
    assert [Path(h.source).name for h in search(c, "kiln nine hundred degrees", mode="keyword")] == ["new.md"]
