"""Keyword search in Chinese and Japanese (CJK runs indexed and searched as character bigrams),
accents folded, English as before, and keyword indexes from before the change rebuilt once."""

from __future__ import annotations

from types import SimpleNamespace

from ingest.manifest import Database
from ingest.manifest.keywords import CachedKeywords, cjk_bigrams
from ingest.pipeline import Ingestor
from rag.retrieval import keyword_query, query_words, search

JA = ("富士山は日本で一番高い山です。夏の登山シーズンは七月から九月までで、山小屋が営業しています。\n"
      "冬の富士山は雪に覆われ、登山は大変危険です。")
ZH = "# 茶叶\n\n绿茶是中国最常见的茶。泡绿茶的水温应该在八十度左右，冲泡时间大约两分钟。\n"
EN = "# Boats\n\nThe ferry to Skye leaves at seven from the pier.\n"


def _docs(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fuji.txt").write_text(JA, encoding="utf-8")
    (docs / "tea.md").write_text(ZH, encoding="utf-8")
    (docs / "boats.md").write_text(EN, encoding="utf-8")
    (docs / "cafe.txt").write_text("The café on the corner opens at eight.", encoding="utf-8")
    (docs / "diner.txt").write_text("The old cafe by the station closes at nine.", encoding="utf-8")
    return docs


def _found(lib, query, k=5):
    return [h.source.rsplit("/", 1)[1] for h in search(lib, query, k, mode="keyword")]


def test_bigrams_split_cjk_runs_only():
    assert cjk_bigrams("全文検索") == "全文 文検 検索"
    assert cjk_bigrams("Debianのパッケージ") == "Debian のパ パッ ッケ ケー ージ"
    assert cjk_bigrams("日 本") == "日 本"  # a lone character stays as it is
    assert cjk_bigrams("ソフト・ウェア") == "ソフ フト ・ ウェ ェア"  # the middle dot separates words
    assert cjk_bigrams("한국어") == "한국 국어"
    for text in ("café naïve Ärger, x-1.2 (y)\n\tz", EN, "über_alles 42"):
        assert cjk_bigrams(text) == text  # other scripts exactly as they were
    assert cjk_bigrams(cjk_bigrams(JA)) == cjk_bigrams(JA)
    assert query_words("What is the ferry to Skye?") == ["ferry", "skye"]
    assert keyword_query(query_words("绿茶的水温")) == '"绿茶" OR "茶的" OR "的水" OR "水温"'


def test_keyword_search_finds_japanese_chinese_and_accents(library, tmp_path):
    docs = _docs(tmp_path)
    Ingestor(library).sync([docs])
    assert _found(library, "富士山の登山シーズンはいつですか？")[0] == "fuji.txt"
    assert _found(library, "冬の富士山は危険？")[0] == "fuji.txt"
    assert _found(library, "泡绿茶的水温是多少？")[0] == "tea.md"
    assert _found(library, "茶叶")[0] == "tea.md"  # a heading word
    assert set(_found(library, "cafe")) == set(_found(library, "café")) == {"cafe.txt", "diner.txt"}
    # English as before: its index text is the chunk text itself, its query the same words.
    assert _found(library, "Skye ferry") == ["boats.md"]
    rows = {f"{doc}:{chunk}": text for doc, chunk, text in library.keywords.rows()}
    texts = library.texts(list(rows))
    assert all(rows[cid] == cjk_bigrams(texts[cid]) for cid in rows)
    assert sum(rows[cid] == texts[cid] for cid in rows) == 3  # the English ones, as they were


def test_an_index_from_before_bigrams_is_rebuilt_once(library, open_library, tmp_path):
    docs = _docs(tmp_path)
    Ingestor(library).sync([docs])
    assert _found(library, "Skye ferry") == ["boats.md"]  # the index is marked built
    db = library.db.db
    for row, doc, chunk in db.execute("SELECT id, doc_id, chunk FROM keyword_chunks").fetchall():  # as written before
        text = library.texts([f"{doc}:{chunk}"])[f"{doc}:{chunk}"]
        db.execute("UPDATE keywords SET text=? WHERE rowid=?", (text, row))
    db.execute("DELETE FROM meta WHERE key='keywords format'")
    assert _found(library, "Skye ferry") == ["boats.md"]  # (this instance has checked the format already)
    assert _found(library, "富士山の登山シーズンはいつですか？") == []  # what a library from before found
    # Such a library written to, then searched with this version: all its rows are indexed again.
    (docs / "more.txt").write_text("東京タワーは東京の電波塔です。", encoding="utf-8")
    later = open_library()
    Ingestor(later).sync([docs])
    assert _found(later, "富士山の登山シーズンはいつですか？")[0] == "fuji.txt"
    assert _found(later, "東京タワーの高さは？")[0] == "more.txt"
    assert _found(later, "Skye ferry") == ["boats.md"]
    rows = later.keywords.rows()
    assert len(rows) == 6 and all(t == cjk_bigrams(t) for _, _, t in rows)
    db.execute("UPDATE keywords SET text = text || ' canary' WHERE text LIKE '%Skye%'")
    assert _found(open_library(), "canary") == ["boats.md"]  # once: not rebuilt again on reopening


def test_a_server_librarys_cached_index_is_rebuilt_too(tmp_path):
    """CachedKeywords (against a Chroma server): old cache rows are dropped and fetched again."""
    files = SimpleNamespace(collection="c", generation=lambda: 7,
                            records=lambda: {"fuji.txt": SimpleNamespace(doc_id="d1")})
    db = Database(tmp_path / "cache.sqlite")
    old = CachedKeywords(db, files)
    with db.transaction():
        old.add("d1", [(0, JA)])
        old.mark_built(7)
    assert old.built()
    with db.transaction():  # as an older version wrote it: CJK text unsplit, no format mark
        db.execute("UPDATE keywords SET text=?", (JA,))
        db.execute("DELETE FROM meta WHERE key='keywords format'")
    cache = CachedKeywords(db, files)
    assert not cache.built() and cache.rows() == [] and cache.docs_missing() == ["d1"]
    with db.transaction():
        cache.add("d1", [(0, JA)])
        cache.mark_built(7)
    assert cache.built()
    assert [d for d, _, _ in cache.search(keyword_query(query_words("富士山の登山シーズン")), 5)] == ["d1"]
    assert cache.search('"富士山"', 5)[0][0] == "d1"  # a CJK word in a MATCH expression is split too
    assert cache.counts(["富士山", "登山"], 10) == {"富士山": 1, "登山": 1}
