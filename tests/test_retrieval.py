"""Hybrid retrieval, the keyword index's upkeep, context assembly and `hearth eval`: real store, real model."""

from __future__ import annotations

import pytest

import json
import os
import shutil

from ingest.pipeline import Ingestor
from rag import evaluate, retrieval

from rag.retrieval import Hit, fuse, keyword_query, query_words, search

TEXT = " ".join(f"Sentence {n} of the long guide explains step {n} of brewing tea with care." for n in range(120))


def _keyword_rows(lib) -> int:
    return len(lib.keywords.rows())


def _as_before_the_index(lib):
    """The library as a version without this keyword index left it: no index folder, nothing marked built."""
    lib.keywords.drop(lib.physical)
    with lib.db.transaction():
        lib.db.execute("DELETE FROM meta WHERE key LIKE 'keywords built:%'")


@pytest.fixture
def library(either_library):
    """Every test here runs against the embedded library and a Chroma server's (conftest)."""
    return either_library


def test_keyword_index_follows_every_change(library, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Boats\n\nThe ferry to Skye leaves at seven from the pier.\n")
    (docs / "b.md").write_text("# Trains\n\nThe sleeper train to Inverness departs at nine.\n")
    Ingestor(library).sync([docs])
    assert _keyword_rows(library) == library.collection.count() == 2
    assert search(library, "Skye ferry", 1, mode="keyword")[0].source == str(docs / "a.md")
    shutil.copy(docs / "a.md", docs / "copy.md")  # copy: vectors and keywords copied
    (docs / "b.md").write_text("# Trains\n\nThe sleeper train to Penzance departs at ten.\n")  # edit
    Ingestor(library).sync([docs])
    assert _keyword_rows(library) == library.collection.count() == 3
    assert search(library, "Inverness", 3, mode="keyword") == []  # the old text is gone from the index
    assert search(library, "Penzance", 1, mode="keyword")[0].source == str(docs / "b.md")
    os.rename(docs / "a.md", docs / "moved.md")
    os.remove(docs / "copy.md")
    Ingestor(library).sync([docs])
    assert {h.source for h in search(library, "ferry Skye pier", 5, mode="keyword")} == {str(docs / "moved.md")}
    assert _keyword_rows(library) == library.collection.count() == 2


def test_a_store_without_keyword_index_gets_one(library, tmp_path):
    (tmp_path / "a.txt").write_text("Lighthouse keepers trimmed the wicks every evening.")
    Ingestor(library).sync([tmp_path / "a.txt"])
    _as_before_the_index(library)
    assert search(library, "wicks lighthouse", 1, mode="keyword")[0].source == str(tmp_path / "a.txt")


def test_hybrid_finds_what_either_retriever_finds(library, tmp_path):
    (tmp_path / "code.txt").write_text("Error XJ-4471 means the flux capacitor overheated.")
    (tmp_path / "prose.txt").write_text("When the engine gets far too hot, stop and let it cool down for twenty minutes.")
    Ingestor(library).sync([tmp_path])
    assert search(library, "XJ-4471", 1, mode="hybrid")[0].source.endswith("code.txt")  # an exact code
    query = "my car motor is boiling, how long should I wait?"  # no word in common with either file
    assert search(library, query, 1, mode="keyword") == []
    assert search(library, query, 1, mode="hybrid")[0].source.endswith("prose.txt")
    for hit in search(library, "XJ-4471", 2, mode="hybrid"):
        assert -1.0 <= hit.score <= 1.0  # cosine similarity, also for keyword-only hits


def test_fusion_and_query_syntax():
    assert fuse(["a", "b", "c"], ["c", "d"])[:2] == ["c", "a"]  # in both lists beats first in one
    assert fuse(["a", "b"], ["b", "a"], weights=(1.0, 0.3))[0] == "a"
    assert keyword_query(query_words('What is "NOT" AND (x)*?')) == '"x"'  # words only, quoted: no query syntax gets through


def test_the_keyword_side_keeps_every_query_word_and_weighs_the_rare_one(library, tmp_path, monkeypatch):
    for n in range(10):  # "kettle" in every chunk, "zebra" in one
        (tmp_path / f"note{n}.txt").write_text(f"The kettle note {n}." + (" A zebra crossed." if n == 3 else ""))
    Ingestor(library).sync([tmp_path])
    assert search(library, "kettle zebras", 1, mode="keyword")[0].source.endswith("note3.txt")  # stemmed, and rarer
    assert len(search(library, "kettle", 10, mode="keyword")) == 10
    asked = []
    monkeypatch.setattr(library.keywords, "search", lambda match, n, docs=None: asked.append(match) or [])
    search(library, "kettle zebra", 3, mode="hybrid")
    search(library, "kettle zebra", 3, mode="keyword")
    assert asked == ['"kettle" OR "zebra"'] * 2


def test_context_merges_neighbours_and_fits_the_budget(library, tmp_path):
    (tmp_path / "guide.txt").write_text(TEXT)
    Ingestor(library).sync([tmp_path])
    hits = search(library, "step 40 of brewing tea", 10, mode="dense")
    doc = hits[0].chunk_id.rsplit(":", 1)[0]
    got = library.collection.get(ids=[f"{doc}:2", f"{doc}:3"], include=["metadatas"])
    texts = library.texts(got["ids"])
    two = [Hit(texts[cid], str(tmp_path / "guide.txt"), None, 0.5, cid) for cid in got["ids"]]
    merged = retrieval.assemble(library, two)
    metas = got["metadatas"]
    assert len(merged) == 1 and merged[0].chunk_id == f"{doc}:2"
    assert merged[0].text == TEXT[metas[0]["start"]: metas[1]["end"]]  # the overlap counted once
    assert retrieval.assemble(library, two + two) == merged  # duplicates dropped
    small = retrieval.assemble(library, hits, budget=300)
    assert len(small) >= 1 and len(small) < len(retrieval.assemble(library, hits))
    assert sum(len(library.embedder.tokenize(p.text)) for p in small) <= 300 or len(small) == 1


def test_eval_scores_each_mode(library, tmp_path):
    (tmp_path / "faq.md").write_text(
        "# Kettles\n\nDescale the kettle every month with white vinegar and rinse it twice.\n\n"
        "# Teapots\n\nWarm the teapot with hot water before adding the leaves.\n")
    Ingestor(library).sync([tmp_path])
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "how often should I descale my kettle", "answer":
                              "Descale the kettle every month with white vinegar and rinse it twice."}) + "\n")
    table = evaluate.evaluate(library, evaluate.load_qa(qa), k=2)
    assert set(table) == {"hybrid", "dense", "keyword"}
    assert table["hybrid"]["hit@1"] == 1.0 and table["hybrid"]["mrr"] == 1.0
    gold = evaluate._grams("one two three four five six seven eight nine")
    assert evaluate.is_hit("x ONE two, three four five six seven eight y", gold)
    assert not evaluate.is_hit("one two three four five six seven", gold)


def test_a_configured_cross_encoder_reorders_hybrid_results(open_library, tmp_path):
    # No trained cross-encoder ships offline, so one is built from the MiniLM weights with a fresh
    # (untrained) scoring head and saved to a folder, as a user would point HEARTH_RERANK_MODEL at one.
    from sentence_transformers import CrossEncoder

    from ingest.embedding import resolve_model

    folder = tmp_path / "cross-encoder"
    CrossEncoder(resolve_model("all-MiniLM-L6-v2"), num_labels=1, device="cpu").save(str(folder))
    docs = tmp_path / "docs"
    docs.mkdir()
    for n, fact in enumerate(["Otters hold hands while sleeping.", "Otters eat sea urchins.", "Otters use stones as tools.",
                              "Sea otters have the densest fur of any animal.", "River otters live in burrows."]):
        (docs / f"otter{n}.txt").write_text(fact)
    plain = open_library()
    Ingestor(plain).sync([docs])
    reranked = open_library(rerank_model=str(folder))
    query = "what do otters do"
    before = search(plain, query, 5)
    after = search(reranked, query, 5)
    scores = CrossEncoder(str(folder), device="cpu").predict([(query, h.text) for h in before])
    expected = [h.chunk_id for _, h in sorted(zip(scores, before), key=lambda pair: -pair[0])]
    assert [h.chunk_id for h in after] == expected and sorted(expected) == sorted(h.chunk_id for h in before)


def test_a_store_from_before_the_keyword_index_is_backfilled_once(library, tmp_path):
    (tmp_path / "a.md").write_text("# Boats\n\nThe ferry to Skye leaves at seven from the pier.\n")
    Ingestor(library).sync([tmp_path / "a.md"])
    _as_before_the_index(library)
    assert search(library, "Skye ferry", 1, mode="keyword")[0].source == str(tmp_path / "a.md")
    assert _keyword_rows(library) == 1 and library.keywords.built()
    library.keywords.drop(library.physical)  # now empty on purpose (as for a library of tables of contents): not rebuilt per query
    assert search(library, "Skye ferry", 1, mode="keyword") == [] and _keyword_rows(library) == 0
    # An old store that has since had a file added: the old documents are indexed too, not skipped.
    _as_before_the_index(library)
    (tmp_path / "b.md").write_text("# Trains\n\nThe sleeper train to Inverness departs at nine.\n")
    Ingestor(library).sync([tmp_path / "b.md"])
    assert search(library, "Skye ferry", 1, mode="keyword")[0].source == str(tmp_path / "a.md")
    assert _keyword_rows(library) == 2


def test_a_local_store_keeps_chunk_texts_in_the_manifest(open_library, tmp_path):
    library = open_library()  # the embedded library's way (a server's keeps texts in Chroma: docs/design.md)
    (tmp_path / "a.txt").write_text("Lighthouse keepers trimmed the wicks every evening.")
    Ingestor(library).sync([tmp_path])
    got = library.collection.get(include=["documents", "embeddings"])
    assert got["documents"] == [None] * len(got["ids"])  # Chroma keeps vectors and metadata only
    text = search(library, "lighthouse wicks", 1)[0].text
    assert "wicks" in text
    # A store written before texts moved to the manifest: they are read from Chroma.
    library.collection.update(ids=got["ids"], embeddings=got["embeddings"], documents=[text])
    library.db.execute("DELETE FROM chunk_texts")
    assert search(library, "lighthouse wicks", 1)[0].text == text
    (tmp_path / "b.txt").write_text("Ferries to the island stop in winter storms.")
    Ingestor(library).sync([tmp_path])
    doc = library.files.records()[str(tmp_path / "b.txt")].doc_id
    rows = "SELECT count(*) FROM chunk_texts WHERE doc_id=?"
    assert library.db.execute(rows, (doc,)).fetchone()[0] == 1
    Ingestor(library).remove([tmp_path / "b.txt"])
    assert library.db.execute(rows, (doc,)).fetchone()[0] == 0  # deleted with the document


def test_a_question_can_be_limited_to_chosen_documents_or_folders(library, tmp_path):
    docs = tmp_path / "docs"
    (docs / "trips").mkdir(parents=True)
    (docs / "trips" / "ferry.md").write_text("# Boats\n\nThe ferry to Skye leaves at seven from the pier.\n")
    (docs / "trips" / "train.md").write_text("# Trains\n\nThe sleeper train to Inverness departs at nine.\n")
    (docs / "boat-club.md").write_text("# Club\n\nThe boat club ferry trip to Skye is on Sunday.\n")
    Ingestor(library).sync([docs])
    everything = {h.source for h in search(library, "ferry to Skye", 5)}
    assert everything == {str(docs / n) for n in ("trips/ferry.md", "trips/train.md", "boat-club.md")}
    for mode in retrieval.MODES:
        hits = search(library, "ferry to Skye", 5, mode=mode, only=[docs / "boat-club.md"])
        assert {h.source for h in hits} == {str(docs / "boat-club.md")}, mode
        hits = search(library, "ferry to Skye", 5, mode=mode, only=[docs / "trips"])  # a folder: what is under it
        assert {h.source for h in hits} <= {str(docs / "trips/ferry.md"), str(docs / "trips/train.md")} and hits, mode
    assert search(library, "ferry", 5, only=[docs / "trips" / "ferry"]) == []  # a prefix of a name is not a folder
    assert search(library, "ferry", 5, only=[tmp_path / "elsewhere"]) == []  # nothing there: nothing found


def test_tables_of_contents_and_indexes_are_marked_and_never_outrank_prose(library, tmp_path):
    from ingest.chunking import is_listing

    contents = "\n".join(f"{n}.{m} Brewing tea step {m} . . . . . . . . . . {10 * n + m}" for n in (1, 2) for m in range(4))
    index = "\n".join(f"kettle temperature, {n}" for n in range(3, 40, 4))
    numbered = "\n\n".join(f"3.{n}. Brewing tea with a kettle, part {n}" for n in range(1, 8))
    assert is_listing(contents) and is_listing(index) and is_listing(numbered)
    assert not is_listing(TEXT) and not is_listing("1. Boil the kettle.\nWait two minutes, then pour the water.")
    assert not is_listing(("1" * 69 + "x\n") * 40)  # and quickly: a regex that backtracks would hang here
    (tmp_path / "contents.md").write_text(f"# Contents\n\n{contents}\n\n{numbered}\n")
    (tmp_path / "guide.md").write_text("# Water\n\nBring the kettle to a temperature of 80 degrees before brewing green tea.\n")
    Ingestor(library).sync([tmp_path])
    metas = library.collection.get(include=["metadatas"])["metadatas"]
    assert {m["filename"]: bool(m.get("listing")) for m in metas} == {"contents.md": True, "guide.md": False}
    for mode in ("hybrid", "dense", "keyword"):
        hits = search(library, "kettle temperature for brewing tea", 2, mode=mode)
        assert hits[0].source.endswith("guide.md"), mode
        assert all(h.listing for h in hits[1:]), mode


def test_a_heading_that_matches_the_question_counts():
    body = "Use the function described here; it takes the path of the file and returns a data frame."
    hits = [Hit(body, "a.pdf", 7, 0.75, "a:1", "1.1 Imports"), Hit(body, "a.pdf", 36, 0.72, "a:9", "9 Reading Excel spreadsheets"),
            Hit(body, "a.pdf", 12, 0.70, "a:4", "2 Data in spreadsheets")]
    match = retrieval.heading_match("How can I read an Excel spreadsheet in R?", hits)
    # three of the question's four content words; one ("spreadsheet") is under HEADING_MIN_SHARE; "Imports" none
    assert list(match) == ["a:9"] and 0 < match["a:9"] < 1
    assert retrieval.heading_match("Reading Excel spreadsheets", hits)["a:9"] == 1  # its number is no word of it
    # combined with the cosines and the keyword scores, the chapter named by the question comes first
    keyword = {"a:1": 9.4, "a:9": 9.8}  # as the README question meets them in R-data.pdf
    assert [h.chunk_id for h in retrieval.combine(hits, keyword, match)] == ["a:9", "a:1", "a:4"]
    assert [h.chunk_id for h in retrieval.combine(hits, keyword, {})] == ["a:1", "a:9", "a:4"]  # without it
    # a keyword hit lifts a passage whose cosine is close, not one far below
    assert retrieval.combine(hits, {"a:4": 9.0}, {})[0].chunk_id == "a:4"
    far = [Hit(body, "a.pdf", 7, 0.75, "a:1"), Hit(body, "a.pdf", 12, 0.60, "a:4")]
    assert retrieval.combine(far, {"a:4": 9.0}, {})[0].chunk_id == "a:1"


def test_the_readme_question_finds_the_excel_chapter_first(library):
    """README's sample question: R-data's chapter "9 Reading Excel spreadsheets" comes first (it came
    second to "1.1 Imports", which only points to it, before the heading counted)."""
    Ingestor(library).sync([os.path.join(os.path.dirname(__file__), "..", "data", "R-data.pdf")])
    hits = search(library, "How can I read an Excel spreadsheet in R?", 5)
    assert hits[0].section == "9 Reading Excel spreadsheets", [(h.section, h.score) for h in hits]
    assert not any(h.listing for h in hits)


def test_keyword_rows_no_record_names_are_never_shown_and_go_at_the_check(library, tmp_path):
    (tmp_path / "a.md").write_text("# Boats\n\nThe ferry to Skye leaves at seven from the pier.\n")
    Ingestor(library).sync([tmp_path / "a.md"])
    with library.keywords.batch():  # as a kill between the folder and the manifest, or a dropped collection's folder, left them
        library.keywords.add("0123456789abcdef", [(0, "The zeppelin hangar at Cardington.")])
    assert library.keyword_search('"zeppelin"', 3) == []  # no record names it
    assert search(library, "zeppelin hangar", 3, mode="keyword") == []  # the first search checks the index
    assert "0123456789abcdef" not in {doc for doc, _, _ in library.keywords.rows()}
    assert search(library, "Skye ferry", 1, mode="keyword")[0].source == str(tmp_path / "a.md")
