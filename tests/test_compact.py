"""Space comes back: a library that had documents removed and added again gives the disk back
(`hearth compact`), keeps every document searchable, and goes on taking writes."""

from __future__ import annotations

import json

from conftest import run_hearth
from ingest.pipeline import Ingestor
from rag.api import Hearth
from rag.retrieval import search

TOPICS = ["lantern repair", "orchard pruning", "violin tuning", "harbour tides", "copper roofing", "winter pepper"]


def _notes(folder, n: int, start: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(f"Entry {i}.{j} of the {topic} notebook: measure twice, write down the date, the weather "
                        f"and what changed since entry {j}." for j in range(40))
        (folder / f"note-{i:04d}.md").write_text(f"# {topic.title()} {i}\n\n{body}\n")
    return folder


def test_compact_gives_back_what_removed_documents_left_and_keeps_the_rest(open_library, tmp_path, home):
    lib = open_library()
    kept, churn = _notes(tmp_path / "kept", 12), _notes(tmp_path / "churn", 40, start=100)
    Ingestor(lib).sync([kept, churn])
    count, documents = lib.count(), len(lib.documents())
    Ingestor(lib).remove([churn])  # a big folder forgotten...
    assert lib.free_bytes() > 0  # ...leaves pages SQLite keeps for reuse
    with lib.writing():
        before, after = lib.compact()
    assert after < before and lib.free_bytes() < before - after

    assert len(lib.documents()) == 12 and lib.count() == sum(r.chunks for r in lib.documents())
    hits = search(lib, "violin tuning notebook", mode="hybrid", k=3)
    assert hits and all("/kept/" in h.source for h in hits)
    assert search(lib, "violin tuning notebook", mode="keyword", k=3)[0].source.startswith(str(kept))
    Ingestor(lib).sync([kept, churn])  # the compacted store takes writes as before
    assert len(lib.documents()) == documents and lib.count() == count
    assert {h.source for h in search(lib, "orchard pruning entry 106", mode="keyword", k=1)} == {
        str(churn / "note-0106.md")}


def test_hearth_compact_from_the_command_line(open_library, tmp_path, home):
    lib = open_library()
    folder = _notes(tmp_path / "notes", 20)
    Ingestor(lib).sync([folder])
    Ingestor(lib).remove([folder])
    lib.close()
    got = run_hearth(home, "compact", "--json")
    assert got.returncode == 0, got.stderr
    sizes = json.loads(got.stdout)
    assert sizes["bytes_after"] < sizes["bytes_before"]
    assert "given back" in run_hearth(home, "compact").stdout


def test_compacting_is_offered_only_when_worth_it(open_library, tmp_path, home, monkeypatch):
    import rag.api as api

    lib = open_library()
    Ingestor(lib).sync([_notes(tmp_path / "notes", 20)])
    hearth = Hearth()
    try:
        assert not hearth.worth_compacting()  # nothing removed yet
        Ingestor(lib).remove([tmp_path / "notes"])
        monkeypatch.setattr(api, "COMPACT_WORTH_BYTES", 1)  # a small library: the 50 MB floor lowered
        assert hearth.worth_compacting()
        hearth.compact()
        assert not hearth.worth_compacting()
    finally:
        hearth.close()
