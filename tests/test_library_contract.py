"""One behavioural contract for both libraries (as Haystack's document-store suite): every method
group below is a mixin of tests, and the embedded library (LocalLibrary) and a real `chroma run`
server's (ServerLibrary) each inherit all of them. What one does, the other must do; a difference
meant to be is written in docs/design.md ("Storage: one interface, two implementations").

Writes go through the real pipeline (Ingestor: reader, chunker, the real embedding model); each test
checks one group of Library's methods and of its files, journal and keyword index."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from chroma_server import ChromaServer
from ingest.libraries import open_library
from ingest.library import chunk_id
from ingest.pipeline import Ingestor, rebuild

pytestmark = pytest.mark.slow

NOTES = {
    "lamp.md": "# Lamp\n\nThe brass lamp burns lantern oil from the blue tin; trim the wick every evening.\n",
    "kiln.md": "# Kiln\n\nFire the kiln slowly to nine hundred degrees, then let it cool for a day.\n",
    "hive.md": "# Hive\n\nInspect the beehive every nine days in spring and look for the queen's eggs.\n",
}


def _notes(folder: Path, notes: dict = NOTES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in notes.items():
        (folder / name).write_text(text)
    return folder


def _ingest(lib, *paths):
    with lib.writing():
        return Ingestor(lib).sync(list(paths))


def _doc(lib, name: str):
    return next(r for r in lib.documents() if Path(r.path).name == name)


def _ids(rec) -> list[str]:
    return [chunk_id(rec.doc_id, i) for i in range(rec.chunks)]


class WriteAndCount:
    def test_ingested_files_are_recorded_and_counted(self, lib, tmp_path):
        report = _ingest(lib, _notes(tmp_path / "notes"))
        assert sorted(r.status for r in report.results) == ["added"] * 3
        records = lib.documents()
        assert sorted(Path(r.path).name for r in records) == sorted(NOTES)
        assert lib.count() == sum(r.chunks for r in records) == lib.files.totals()[1]
        assert lib.files.totals()[0] == 3 and lib.files.has_files()
        assert lib.files.get(str(tmp_path / "notes" / "lamp.md")).sha256 == _doc(lib, "lamp.md").sha256

    def test_a_changed_file_replaces_its_passages(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        _ingest(lib, folder)
        old = _doc(lib, "kiln.md")
        (folder / "kiln.md").write_text("# Kiln\n\nThe new kiln reaches twelve hundred degrees in an hour.\n")
        assert [r.status for r in _ingest(lib, folder).results] == ["updated"]
        assert lib.chunks(_ids(old)) == {} and _doc(lib, "kiln.md").doc_id != old.doc_id
        assert lib.count() == sum(r.chunks for r in lib.documents())


class Delete:
    def test_removed_documents_leave_no_passage(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        _ingest(lib, folder)
        gone = _doc(lib, "hive.md")
        with lib.writing():
            removed = Ingestor(lib).remove([folder / "hive.md"])
        assert [Path(r.path).name for r in removed] == ["hive.md"]
        assert lib.chunks(_ids(gone)) == {} and "hive.md" not in {Path(r.path).name for r in lib.documents()}
        assert lib.count() == sum(r.chunks for r in lib.documents())

    def test_delete_doc_deletes_every_chunk_of_it(self, lib, tmp_path):
        _ingest(lib, _notes(tmp_path / "notes"))
        lamp = _doc(lib, "lamp.md")
        with lib.writing():
            lib.delete_doc(lamp.doc_id)
        assert lib.chunks(_ids(lamp)) == {}


class MoveAndCopy:
    def test_a_moved_file_keeps_its_vectors(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        _ingest(lib, folder)
        before = lib.chunks(_ids(_doc(lib, "lamp.md")), vectors=True)
        (folder / "lamp.md").rename(folder / "brass-lamp.md")
        assert [r.status for r in _ingest(lib, folder).results] == ["moved"]
        after = lib.chunks(_ids(_doc(lib, "brass-lamp.md")), vectors=True)
        assert list(after) == list(before)  # the same doc id and chunks, re-pointed
        for cid, (text, meta, vector) in after.items():
            assert meta["source"] == str(folder / "brass-lamp.md") and meta["filename"] == "brass-lamp.md"
            assert text == before[cid][0] and list(vector) == list(before[cid][2])

    def test_a_copy_reuses_the_vectors(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        _ingest(lib, folder)
        shutil.copy(folder / "kiln.md", folder / "kiln-copy.md")
        assert [r.status for r in _ingest(lib, folder).results] == ["copied"]
        original, copy = (lib.chunks(_ids(_doc(lib, n)), vectors=True) for n in ("kiln.md", "kiln-copy.md"))
        assert [list(v) for _, _, v in original.values()] == [list(v) for _, _, v in copy.values()]
        assert {m["source"] for _, m, _ in copy.values()} == {str(folder / "kiln-copy.md")}
        assert [t for t, _, _ in copy.values()] == [t for t, _, _ in original.values()]


class NearestAndKeyword:
    def test_nearest_finds_the_note_about_it(self, lib, tmp_path):
        _ingest(lib, _notes(tmp_path / "notes"))
        vector = lib.embedder.embed_query("how often should bees be checked")
        cid, score = lib.nearest(vector, 1)[0]
        assert cid.startswith(_doc(lib, "hive.md").doc_id + ":") and -1.0 <= score <= 1.0
        only = [_doc(lib, "lamp.md").doc_id]
        assert {c.split(":")[0] for c, _ in lib.nearest(vector, 3, docs=only)} == set(only)

    def test_keyword_search_finds_words_within_the_documents_asked(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        _ingest(lib, folder)
        hits = lib.keyword_search('"kiln"', 3)
        assert [c.split(":")[0] for c, _ in hits] == [_doc(lib, "kiln.md").doc_id]
        assert lib.keyword_search('"kiln"', 3, docs=[_doc(lib, "lamp.md").doc_id]) == []
        assert lib.docs_under([folder / "hive.md"]) == [_doc(lib, "hive.md").doc_id]
        assert len(lib.docs_under([folder])) == 3

    def test_the_keyword_index_follows_changes(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        _ingest(lib, folder)
        (folder / "lamp.md").write_text("# Lamp\n\nThe lamp now runs on a rechargeable battery.\n")
        _ingest(lib, folder)
        assert lib.keyword_search('"wick"', 3) == []
        assert [c.split(":")[0] for c, _ in lib.keyword_search('"rechargeable"', 3)] == [_doc(lib, "lamp.md").doc_id]

    def test_a_collections_keyword_ranking_is_its_own_and_goes_with_it(self, lib, tmp_path):
        mine = tmp_path / "mine"
        mine.mkdir()
        (mine / "x.md").write_text("# X\n\nA zorbel, then a zorbel again, and one quintax.\n")
        (mine / "y.md").write_text("# Y\n\nA quintax, then a quintax again, and one zorbel.\n")
        _ingest(lib, mine)
        before = lib.keyword_search('"zorbel" OR "quintax"', 2)
        other = open_library(lib.settings, f"other{secrets.token_hex(3)}")
        other.embedder = lib.embedder
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        for i in range(40):  # "zorbel" common over there: had it weighed less here, y.md would come first
            (theirs / f"n{i}.md").write_text(f"# Note {i}\n\nThe zorbel of note {i}.\n")
        _ingest(other, theirs)
        assert lib.keyword_search('"zorbel" OR "quintax"', 2) == before
        folder = other.keywords.root / other.physical
        assert folder.is_dir() and len(other.keyword_search('"zorbel"', 50)) == 40
        other.drop()  # deleting a collection deletes its keyword index
        assert not folder.exists() and (lib.keywords.root / lib.physical).is_dir()


class Texts:
    def test_texts_and_chunks_give_the_passages_back(self, lib, tmp_path):
        _ingest(lib, _notes(tmp_path / "notes"))
        ids = _ids(_doc(lib, "hive.md"))
        texts = lib.texts(ids)
        assert list(texts) == ids and "beehive every nine days" in " ".join(texts.values())
        for cid, (text, meta, vector) in lib.chunks(ids).items():
            assert text == texts[cid] and meta["doc_id"] == cid.split(":")[0] and vector is None
        assert lib.texts([chunk_id("no-such-doc", 0)]) == {}


class RebuildAndSwap:
    def test_a_rebuild_swaps_in_the_same_documents(self, lib, tmp_path):
        _ingest(lib, _notes(tmp_path / "notes"))
        before, old = lib.snapshot(), lib.physical
        with lib.writing():
            report = rebuild(lib)
        assert sorted(r.status for r in report.results) == ["added"] * 3
        assert lib.physical != old and old not in lib.chroma_names()
        after = lib.snapshot()
        assert after["documents"] == before["documents"] and after["chunks"] == before["chunks"]
        assert after["orphans"] == [] and after["journal"] == []


class Sweep:
    def test_sweep_deletes_passages_no_record_names(self, lib, tmp_path):
        _ingest(lib, _notes(tmp_path / "notes"))
        lamp = _doc(lib, "lamp.md")
        stray = lib.chunks(_ids(lamp), vectors=True)
        with lib.writing():
            lib.add_chunks(["stray"] * len(stray), list(range(len(stray))), [list(v) for _, _, v in stray.values()],
                           [{**m, "doc_id": "stray"} for _, m, _ in stray.values()], [t for t, _, _ in stray.values()])
            assert lib.snapshot()["orphans"] == ["stray"]
            assert lib.sweep() == len(stray)
        assert lib.snapshot()["orphans"] == [] and lib.count() == sum(r.chunks for r in lib.documents())


class Snapshot:
    def test_a_snapshot_describes_the_collection(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        _ingest(lib, folder)
        got = lib.snapshot()
        assert [(Path(p).name, n) for p, _, n in got["documents"]] == sorted((n, 1) for n in NOTES)
        assert got["ids_unique"] and got["orphans"] == [] and got["journal"] == []
        assert {Path(source).name for source, *_ in got["chunks"]} == set(NOTES)
        assert len(got["keywords"]) == lib.count()


class FilesAndProblems:
    def test_the_documents_page_searches_sorts_and_pages(self, lib, tmp_path):
        _ingest(lib, _notes(tmp_path / "notes"))
        page, total = lib.files.page(search="i", sort="path")
        assert total == 2 and [Path(r.path).name for r in page] == ["hive.md", "kiln.md"]
        page, total = lib.files.page(sort="size", descending=True, limit=1)
        assert total == 3 and page[0].size == max(r.size for r in lib.documents())
        assert [Path(r.path).name for r in lib.files.page(offset=2)[0]] == ["lamp.md"]

    def test_a_file_that_cannot_be_read_is_a_problem_until_it_is_fixed(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        (folder / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
        _ingest(lib, folder)
        assert list(lib.files.problems()) == [str(folder / "broken.pdf")]
        (folder / "broken.pdf").unlink()
        (folder / "broken.md").write_text("# Fixed\n\nNow it is a plain note about copper roofing.\n")
        _ingest(lib, folder)
        assert lib.files.problems() == {}

    def test_the_generation_moves_with_every_change_and_live_docs_are_known(self, lib, tmp_path):
        folder = _notes(tmp_path / "notes")
        first = lib.files.generation()
        _ingest(lib, folder)
        second = lib.files.generation()
        assert second != first
        with lib.writing():
            Ingestor(lib).remove([folder / "kiln.md"])
        assert lib.files.generation() != second
        docs = [r.doc_id for r in lib.documents()]
        assert lib.files.live_doc_ids(docs + ["gone"]) == set(docs)


MIXINS = (WriteAndCount, Delete, MoveAndCopy, NearestAndKeyword, Texts, RebuildAndSwap, Sweep, Snapshot,
          FilesAndProblems)


class TestEmbeddedLibrary(*MIXINS):
    @pytest.fixture
    def lib(self, open_library):
        return open_library()


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    server = ChromaServer(tmp_path_factory.mktemp("contract") / "chroma").start()
    yield server
    server.stop()


class TestServerLibrary(*MIXINS):
    @pytest.fixture
    def lib(self, open_library, chroma_server, monkeypatch):
        monkeypatch.setenv("HEARTH_CHROMA_URL", chroma_server.url)
        return open_library(f"c{secrets.token_hex(4)}")  # the server is shared by the module's tests
