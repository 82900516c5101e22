"""Incremental sync against a real Chroma store and the real embedding model."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pytest

from conftest import store_snapshot
from ingest.pipeline import Ingestor
from ingest.errors import ModelMismatch
from make_files import text_pdf
from rag.retrieval import search


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    write(root / "garden.md", "# Garden\n\nTomatoes need six hours of sun and deep watering twice a week.\n")
    write(root / "bikes/repair.txt", "To fix a flat tyre, remove the wheel, find the puncture and patch the tube.\n")
    text_pdf(root / "tax.pdf", ["The tax return is due on the thirty-first of July.", "Keep receipts for six years."])
    return root


@pytest.fixture
def library(either_library):
    """Every test here runs against the embedded library and a Chroma server's (conftest)."""
    return either_library


def test_ingest_then_search_gives_file_page_and_section(folder, ingest, library):
    report = ingest(folder)
    assert report.count("added") == 3 and not report.failures
    hits = search(library, "how long must I keep receipts?", k=3)
    assert hits[0].source == str(folder / "tax.pdf") and hits[0].page == 2
    assert "receipts" in hits[0].text and hits[0].section == "Part 2"
    hits = search(library, "puncture in my bicycle tyre", k=1)
    assert hits[0].source.endswith("repair.txt") and hits[0].page is None


def test_unchanged_files_are_skipped_without_reading(folder, ingest, library, monkeypatch):
    ingest(folder)
    import ingest.pipeline as pipeline

    def no_reading(*_):
        raise AssertionError("an unchanged file was read")

    monkeypatch.setattr(pipeline, "file_sha256", no_reading)
    monkeypatch.setattr(pipeline.loaders, "load", no_reading)
    report = ingest(folder)
    assert report.unchanged == 3 and report.results == []


def test_touched_but_identical_file_is_not_reembedded(folder, ingest, library):
    ingest(folder)
    calls = library.embedder.calls
    os.utime(folder / "garden.md", ns=(time.time_ns(), time.time_ns() + 10**9))
    report = ingest(folder)
    assert report.unchanged == 3 and library.embedder.calls == calls


def test_changed_file_replaces_its_old_chunks(folder, ingest, library):
    ingest(folder)
    write(folder / "garden.md", "# Garden\n\nCucumbers climb trellises and want warm nights.\n")
    report = ingest(folder)
    assert report.count("updated") == 1
    texts = [h.text for h in search(library, "garden vegetables", k=10)]
    assert any("Cucumbers" in t for t in texts) and not any("Tomatoes" in t for t in texts)
    snap = store_snapshot(library)
    assert snap["orphans"] == [] and snap["journal"] == [] and snap["ids_unique"]


def test_deleted_files_and_folders_are_removed(folder, ingest, library):
    ingest(folder)
    (folder / "tax.pdf").unlink()
    shutil.rmtree(folder / "bikes")
    report = Ingestor(library).sync([folder], allow_removal=True)  # 2 of 3: confirmed (test_removal.py)
    assert sorted(os.path.basename(r.path) for r in report.results if r.status == "removed") == ["repair.txt", "tax.pdf"]
    assert [os.path.basename(d.path) for d in library.documents()] == ["garden.md"]
    assert {h.source for h in search(library, "tax receipts tyre", k=10)} == {str(folder / "garden.md")}


def test_renamed_and_moved_files_keep_their_vectors(folder, ingest, library):
    ingest(folder)
    calls = library.embedder.calls
    (folder / "archive").mkdir()
    os.rename(folder / "tax.pdf", folder / "archive" / "tax-2025.pdf")
    os.rename(folder / "bikes", folder / "cycling")
    report = ingest(folder)
    assert report.count("moved") == 2 and library.embedder.calls == calls
    hit = search(library, "keep receipts", k=1)[0]
    assert hit.source == str(folder / "archive" / "tax-2025.pdf") and hit.page == 2
    assert sorted(d.path for d in library.documents()) == sorted(
        [str(folder / "archive/tax-2025.pdf"), str(folder / "cycling/repair.txt"), str(folder / "garden.md")])


def test_file_moved_out_of_the_synced_folder_is_found_by_content(folder, tmp_path, ingest, library):
    ingest(folder)
    calls = library.embedder.calls
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.rename(folder / "garden.md", other / "garden.md")
    report = ingest(other)
    assert [r.status for r in report.results] == ["moved"] and library.embedder.calls == calls


def test_copy_reuses_vectors(folder, ingest, library):
    ingest(folder)
    calls = library.embedder.calls
    shutil.copy(folder / "tax.pdf", folder / "tax-copy.pdf")
    report = ingest(folder)
    assert [r.status for r in report.results] == ["copied"] and library.embedder.calls == calls
    assert {h.source for h in search(library, "keep receipts", k=2)} == {str(folder / "tax.pdf"), str(folder / "tax-copy.pdf")}
    # A copy added on its own (the original not in this sync, as an upload or `hearth ingest FILE`).
    elsewhere = folder.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(folder / "tax.pdf", elsewhere / "tax-again.pdf")
    calls = library.embedder.calls  # the search above embedded its query
    report = ingest(elsewhere / "tax-again.pdf")
    assert [r.status for r in report.results] == ["copied"] and library.embedder.calls == calls


def test_remove_forgets_documents_but_keeps_files(folder, library, ingest):
    ingest(folder)
    removed = Ingestor(library).remove([folder / "bikes"])
    assert [os.path.basename(r.path) for r in removed] == ["repair.txt"]
    assert (folder / "bikes/repair.txt").exists()
    assert len(library.documents()) == 2 and store_snapshot(library)["orphans"] == []


def test_collections_are_separate(folder, open_library, ingest):
    work, home = open_library("work"), open_library("home-notes")
    ingest(folder / "tax.pdf", lib=work)
    ingest(folder / "garden.md", lib=home)
    assert [os.path.basename(d.path) for d in work.documents()] == ["tax.pdf"]
    assert {os.path.basename(h.source) for h in search(home, "tax", k=5)} == {"garden.md"}


def test_other_embedding_model_is_refused_not_mixed(folder, ingest, library, open_library, tmp_path, embedder):
    ingest(folder)
    # The same weights under another name and folder stand in for "another model".
    other_dir = tmp_path / "other-model"
    shutil.copytree(embedder.path, other_dir)
    other = open_library(library.name, embed_model=str(other_dir))
    with pytest.raises(ModelMismatch, match="all-MiniLM-L6-v2"):
        Ingestor(other).sync([folder])
    assert len(library.documents()) == 3  # nothing lost
    other.drop()  # what `hearth ingest --reembed` does first
    report = Ingestor(other).sync([folder])
    assert report.count("added") == 3 and other.files.model()[0] == str(other_dir)


def test_size_limit_and_hidden_files(folder, ingest, library, open_library):
    write(folder / ".hidden.md", "secret")
    write(folder / "~$lock.docx", "x")
    write(folder / "draft.txt.part", "partial download")
    report = ingest(folder)
    assert report.count("added") == 3  # hidden, lock and partial files are never ingested
    small = open_library("tiny", max_file_mb=0.0001)
    report = Ingestor(small).sync([folder])
    assert [os.path.basename(r.path) for r in report.failures] == ["tax.pdf"]
    assert "over the 0.0001 MB limit" in report.failures[0].reason
    assert report.count("added") == 2 and report.exit_code() == 0


def test_the_reader_process_chunks_as_the_parent_would(embedder):
    """Chunking moved into the file reader process (off the embedder's GIL) cuts the same chunks."""
    from conftest import MANUALS
    from ingest import loaders, reader
    from ingest.chunking import Chunker, ChunkSpec

    pdf = MANUALS / "R-data.pdf"
    spec = ChunkSpec(192, 24, embedder.tokenizer_file)
    got = reader.Reader(timeout_s=60, memory_mb=1536).load(str(pdf), spec)
    here = Chunker(192, 24, embedder.tokenize).chunk(loaders.load(pdf).sections)
    assert got.sections == [] and got.pages == 41 and len(here) > 100
    assert got.chunks == here


def test_the_reader_starts_in_a_folder_with_its_own_ingest_module(tmp_path, monkeypatch):
    """`hearth ingest` run from a user's project that has an ingest.py (or ingest/) of its own: the
    reader process still imports Hearth's package, not that file."""
    from ingest import reader

    (tmp_path / "ingest.py").write_text("raise SystemExit('the wrong ingest module')\n")
    (tmp_path / "note.txt").write_text("Lentils need no soaking before they are cooked.\n")
    monkeypatch.chdir(tmp_path)
    proc = reader.Reader(timeout_s=60, memory_mb=1536)
    try:
        loaded = proc.load(str(tmp_path / "note.txt"))
    finally:
        proc.close()
    assert "Lentils" in loaded.sections[0].text


class _Clock:
    """The leases' wall clock, moved by hand: a holder stalls past its TTL without a wait."""

    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


class _Stalling:
    """A real Chroma collection whose next write waits until let go: a renewal stalled mid-call."""

    def __init__(self, collection):
        self.collection, self.armed = collection, False
        self.reached, self.go = threading.Event(), threading.Event()

    def __getattr__(self, name):
        call = getattr(self.collection, name)
        if name not in ("add", "upsert", "update", "delete") or not self.armed:
            return call

        def stalled(*args, **kwargs):
            self.armed = False
            self.reached.set()
            assert self.go.wait(60)
            return call(*args, **kwargs)
        return stalled


def test_a_lease_holder_that_stalled_past_its_ttl_cannot_renew_or_write(tmp_path):
    """Holder A's renewal stalls (in the middle of its write) past the TTL; B takes the lease over.
    A's renewal must fail without reviving A's record, and A's writes are refused (fenced) while B's go."""
    import chromadb

    from ingest.catalog import CATALOG, Catalog
    from ingest.errors import LeaseLost
    from ingest.lease import Lease
    from ingest.manifest import Database

    client = chromadb.PersistentClient(path=str(tmp_path / "server"))
    store = client.get_or_create_collection(CATALOG, embedding_function=None)

    def leases() -> dict[str, str]:
        got = store.get(where={"kind": "lease"}, include=["documents"])
        return dict(zip(got["ids"], got["documents"]))

    clock, stalling = _Clock(), _Stalling(store)
    a = Lease(stalling, "instance-a", ttl=30, clock=clock, autorenew=False).acquire(wait=0)
    assert a.renew()  # in time: renewed
    a.check()

    stalling.armed = True
    renewed = []
    renewal = threading.Thread(target=lambda: renewed.append(a.renew()))
    renewal.start()
    assert stalling.reached.wait(60)  # A is in the middle of writing its renewal...
    clock.now += 31  # ...and stays there past its TTL
    b = Lease(store, "instance-b", ttl=30, clock=clock, autorenew=False).acquire(wait=0)
    assert b.took_over and b.number > a.number
    held_by_b = leases()
    stalling.go.set()  # A's stalled write lands now
    renewal.join(60)
    assert renewed == [False]
    assert leases() == held_by_b  # A's record is not written back: B's lease is the newest, as B wrote it
    assert a.renew() is False and leases() == held_by_b  # nor by a later try

    with pytest.raises(LeaseLost):
        a.check()
    catalog = Catalog(client, Database(tmp_path / "cache.sqlite3"))
    catalog.fence = a.check  # A's library: every write of its catalog is fenced by A's lease
    with pytest.raises(LeaseLost), catalog.transaction():
        catalog.put("file:stale", {"kind": "file", "collection": "default"}, {"path": "/from/a"})
    with pytest.raises(LeaseLost):
        catalog.put("file:stale", {"kind": "file", "collection": "default"}, {"path": "/from/a"})
    assert catalog.record("file:stale") is None
    catalog.fence = b.check  # B holds the newest lease: its writes go through
    with catalog.transaction():
        catalog.put("file:fresh", {"kind": "file", "collection": "default"}, {"path": "/from/b"})
    assert catalog.record("file:fresh") == {"path": "/from/b"}
    number = b.number
    b.release()
    a.release()  # changes nothing: not A's to release
    assert list(leases()) == [f"lease:{number}"] and json.loads(leases()[f"lease:{number}"])["released"]


def test_reembed_rebuilds_from_the_stored_passages_with_a_drive_away(tmp_path, open_library, monkeypatch):
    """A tenth of the files on a drive that is away: `--reembed` keeps every document, searchable
    with the new model, and reads no file."""
    import ingest.pipeline as pipeline
    from ingest.pipeline import rebuild

    here, away = tmp_path / "here", tmp_path / "away"
    for i in range(9):
        write(here / f"letter-{i}.md", f"# Letter {i}\n\nThe delivery number {i} reached the north warehouse.\n")
    write(away / "ledger.md", "# Ledger\n\nThe lighthouse keeper logs every ship that passes the cape at dawn.\n")
    Ingestor(open_library()).sync([here, away])
    before = store_snapshot(open_library())
    shutil.move(str(away), tmp_path / "unplugged")

    def no_reading(*_):
        raise AssertionError("a file was read")

    monkeypatch.setattr(pipeline.loaders, "load", no_reading)
    library = open_library(embed_model="multilingual-e5-small")  # what `HEARTH_EMBED_MODEL=... --reembed` opens
    with library.writing():
        report = rebuild(library, [])
    assert report.count("added") == 10 and not report.failures
    assert library.embed_model == "multilingual-e5-small"
    after = store_snapshot(library)
    assert after["documents"] == before["documents"] and after["chunks"] == before["chunks"]
    assert after["orphans"] == [] and after["journal"] == [] and after["ids_unique"]
    hit = search(library, "who records the ships passing the cape?", k=1)[0]
    assert hit.source == str(away / "ledger.md") and "lighthouse keeper" in hit.text
