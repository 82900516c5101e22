"""Keyword search in Chinese and Japanese (CJK runs indexed and searched as character bigrams),
accents folded, English as before, and keyword indexes from before tantivy rebuilt once."""

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


def test_a_new_homes_collections_written_before_the_first_search_keep_their_indexes(tmp_path, open_library):
    """The format check that drops an older index runs before an index is first opened, not at the
    first search: there it dropped every collection's new index, under libraries that had them open."""
    docs = _docs(tmp_path)
    boats, tea = open_library("boats"), open_library("tea")
    Ingestor(boats).sync([docs / "boats.md"])
    Ingestor(tea).sync([docs / "tea.md"])
    assert _found(boats, "Skye ferry") == ["boats.md"]
    assert _found(tea, "绿茶的水温") == ["tea.md"]
    assert boats.keywords.built() and len(tea.keywords.rows()) == 1


def _as_fts5_left_it(lib):
    """The library as the SQLite FTS5 index of versions before tantivy left it: its tables, the
    collection marked built, and no index folder."""
    lib.keywords.drop(lib.physical)
    with lib.db.transaction():
        lib.db.execute("CREATE TABLE keyword_chunks (id INTEGER PRIMARY KEY, collection TEXT, doc_id TEXT, chunk INTEGER)")
        lib.db.execute("CREATE VIRTUAL TABLE keywords USING fts5(text)")
        lib.db.execute("INSERT INTO keyword_chunks VALUES (1, ?, 'gone', 0)", (lib.physical,))
        lib.db.execute("INSERT INTO keywords (rowid, text) VALUES (1, 'canary')")
        lib.db.execute("INSERT OR REPLACE INTO meta VALUES ('keywords format', 2)")
        lib.db.execute("INSERT OR REPLACE INTO meta VALUES (?, 1)", (f"keywords built:{lib.physical}",))


def test_an_index_from_before_tantivy_is_rebuilt_once(library, open_library, tmp_path):
    docs = _docs(tmp_path)
    Ingestor(library).sync([docs])
    _as_fts5_left_it(library)
    # Such a library written to, then searched with this version: all its rows are indexed again.
    (docs / "more.txt").write_text("東京タワーは東京の電波塔です。", encoding="utf-8")
    later = open_library()
    Ingestor(later).sync([docs])
    assert _found(later, "富士山の登山シーズンはいつですか？")[0] == "fuji.txt"
    assert _found(later, "東京タワーの高さは？")[0] == "more.txt"
    assert _found(later, "Skye ferry") == ["boats.md"]
    assert _found(later, "canary") == []  # the old tables' rows are gone with them
    assert not later.db.execute("SELECT 1 FROM sqlite_master WHERE name IN ('keywords', 'keyword_chunks')").fetchall()
    rows = later.keywords.rows()
    assert len(rows) == 6 and all(t == cjk_bigrams(t) for _, _, t in rows)
    again = open_library()
    again.keywords.docs_missing = None  # once: on reopening it is built, and not looked through again
    assert _found(again, "Skye ferry") == ["boats.md"]


def test_a_server_librarys_cached_index_is_rebuilt_too(tmp_path):
    """CachedKeywords (against a Chroma server): a cache from an older version (tantivy's own stems,
    another schema) is dropped and fetched again."""
    import tantivy

    files = SimpleNamespace(collection="c", generation=lambda: 7,
                            records=lambda: {"fuji.txt": SimpleNamespace(doc_id="d1")})
    db = Database(tmp_path / "cache.sqlite")
    old = CachedKeywords(db, files, tmp_path / "cache.keywords")
    with db.transaction():
        old.mark_built(7)
    schema = tantivy.SchemaBuilder()  # FORMAT 3's: the text stored and stemmed by tantivy
    schema.add_text_field("doc_id", stored=True, tokenizer_name="raw", fast=True)
    schema.add_unsigned_field("chunk", stored=True, indexed=False)
    schema.add_text_field("text", stored=True)
    (tmp_path / "cache.keywords" / "c").mkdir(parents=True)
    index = tantivy.Index(schema.build(), path=str(tmp_path / "cache.keywords" / "c"))
    writer = index.writer(15_000_000, 1)
    writer.add_document(tantivy.Document(doc_id="d1", chunk=0, text=JA))
    writer.commit()
    writer.wait_merging_threads()
    with db.transaction():
        db.execute("UPDATE meta SET value=3 WHERE key='keywords format'")
    cache = CachedKeywords(db, files, tmp_path / "cache.keywords")
    assert not cache.built() and cache.docs_missing() == ["d1"] and cache.rows() == []  # dropped: fetched again
    files.records = lambda: {}  # the document removed by another instance: nothing of it is asked for
    assert cache.docs_missing() == []
    files.records = lambda: {"fuji.txt": SimpleNamespace(doc_id="d1")}
    assert cache.docs_missing() == ["d1"]
    cache.add("d1", [(0, JA)])
    cache.add("d1", [(0, JA)])  # twice (two processes that found it missing): held once
    cache.commit()
    with db.transaction():
        cache.mark_built(7)
    assert cache.built() and len(cache.rows()) == 1
    assert [d for d, _, _ in cache.search(keyword_query(query_words("富士山の登山シーズン")), 5)] == ["d1"]
    assert cache.search('"富士山"', 5)[0][0] == "d1"  # a CJK word in a query is split too
