"""The keyword (BM25) index: one tantivy index per collection (its physical name), a folder under
HEARTH_HOME/keywords/, so a collection's ranking never depends on another's documents and deleting a
collection deletes its index. tantivy scores a query's best passages with block-max WAND instead of
scoring every row of each word, so every query word is kept however common (docs/decisions.md).

The index follows the manifest under the same journal as the Chroma chunks (manifest/__init__.py):
a document's rows are committed before the transaction that records it, and deleted with its chunks
after the one that forgets it, so a crash between the two leaves a journal entry that repair acts
on; readers only trust documents that a file record names (Library.keyword_search).

Chinese and Japanese put no spaces between words: every run of Han, Kana or Hangul is indexed, and
searched, as its overlapping pairs of characters (cjk_bigrams: Lucene's CJK analyzer's way); a
quoted run is the phrase of its pairs. Other text: words of letters and digits, lower-cased, accents
folded (café = cafe), Porter's English stems (runs = running; stems(), the index and the query alike:
Porter's stemmer, SQLite FTS5's, found more than Snowball's, tantivy's own, docs/decisions.md). On Debian's reference manual
(bench/keywords_cjk.py) pairs took keyword hit@5 from 0 to 1.0 in Japanese and from 0.30 to 1.0 in
Chinese. Against a Chroma server the index is this instance's cache of the server's chunks
(CachedKeywords)."""

from __future__ import annotations

import contextlib
import re
import shutil
import unicodedata
import threading
import time
from pathlib import Path

from ..chunking import is_listing
from ..language import cjk_bigrams
from ..settings import tighten
from . import Database

# What the index is: 4 since it indexes Porter's stems (3: tantivy's Snowball stems; 1 and 2 were one
# SQLite FTS5 table for all collections). An older one is dropped before an index is first opened
# (_upgrade) and built again from the stored texts at the first search.
FORMAT = 4
_FORMAT_KEY = "keywords format"
WRITER_HEAP = 64_000_000  # bytes of documents tantivy buffers before writing a segment of its own
WRITER_WAIT_S = 300  # how long a write waits for another process's writer of the same index
_ANALYZER = "hearth"
_lock = threading.Lock()  # one tantivy writer per index folder in this process


def _schema():
    import tantivy

    schema = tantivy.SchemaBuilder()
    schema.add_text_field("doc_id", stored=True, tokenizer_name="raw", fast=True)
    schema.add_unsigned_field("chunk", stored=True, indexed=False)
    schema.add_text_field("text", stored=False, tokenizer_name=_ANALYZER)  # stems(passage)
    schema.add_bytes_field("passage", stored=True, indexed=False)  # as written (copy, rows)
    return schema.build()


def _analyzer():
    import tantivy

    f = tantivy.Filter
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(f.remove_long(40)).filter(f.lowercase())
            .filter(f.ascii_fold()).build())


_WORD = re.compile(r"[^\W_]+")  # letters and digits: the index's tokenizer splits at anything else
_ACCENTS = re.compile("[\u0300-\u036f]")  # the combining diacritical marks of Latin, Greek, Cyrillic
_QUOTED = re.compile(r'"([^"]*)"')  # a query's words (rag.retrieval.keyword_query)
_stemmer = None


def stems(text: str) -> str:
    """The text as the index holds it: its words lower-cased, accents dropped, each one stemmed by
    Porter's algorithm (PyStemmer), space-separated. Words it does not stem (digits, CJK pairs) stay."""
    global _stemmer
    if _stemmer is None:
        import Stemmer

        _stemmer = Stemmer.Stemmer("porter")
    # Accents off Latin letters (café = cafe); composed again, so that a kana keeps its voicing mark.
    folded = unicodedata.normalize("NFKC", _ACCENTS.sub("", unicodedata.normalize("NFKD", text.lower())))
    return " ".join(_stemmer.stemWords(_WORD.findall(folded)))


class Keywords:
    def __init__(self, db: Database, files, root: Path):
        """root: the folder holding one index folder per physical collection."""
        self.db, self.files, self.root = db, files, Path(root)  # files: whose physical name it is
        self._current = False  # the manifest is known to be of FORMAT
        self._opened: dict[str, object] = {}  # physical name: tantivy.Index
        self._writer = None  # (physical, tantivy.IndexWriter) with changes not yet committed

    @property
    def _built_key(self) -> str:
        return f"keywords built:{self.files.collection}"

    # --- the index of this collection ---------------------------------------------------------------
    def _index(self, physical: str | None = None):
        import tantivy

        physical = physical or self.files.collection
        self._upgrade()  # before any index is opened: an older one's folders are dropped first
        if physical not in self._opened:
            folder = self.root / physical
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
            index = tantivy.Index(_schema(), path=str(folder), reuse=True)
            tighten(folder)
            index.register_tokenizer(_ANALYZER, _analyzer())
            self._opened[physical] = index
        return self._opened[physical]

    def _writing(self):
        """The open writer of this collection's index (one at a time: tantivy locks its folder)."""
        physical = self.files.collection
        if self._writer is not None and self._writer[0] != physical:
            self.commit()
        if self._writer is None:
            _lock.acquire()
            try:
                self._writer = (physical, self._open_writer(self._index(physical)))
            except BaseException:
                _lock.release()
                raise
        return self._writer[1]

    @staticmethod
    def _open_writer(index):
        """tantivy refuses a second writer of a folder at once, in any process: another process's
        commit (a reader bringing its cache up to date, a writer's batch) holds it for moments."""
        deadline = time.monotonic() + WRITER_WAIT_S
        while True:
            try:
                return index.writer(WRITER_HEAP, 1)
            except ValueError as exc:
                if "LockBusy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def commit(self):
        """Make what was added and deleted since the last commit durable and searchable, and let go
        of the writer's lock so another process can write."""
        if self._writer is None:
            return
        physical, writer = self._writer
        try:
            writer.commit()
            writer.wait_merging_threads()  # also drops the writer, and its lock
        finally:
            self._writer = None
            _lock.release()
        tighten(self.root / physical)  # tantivy's files follow the umask; the home is 0700 meanwhile
        self._index(physical).reload()

    @contextlib.contextmanager
    def batch(self):
        """Writes made in the block committed at its end, or none of them if it raises (the writer,
        and its lock, are never left held)."""
        try:
            yield self
            self.commit()
        finally:
            self.rollback()

    def rollback(self):
        """Forget what was added and deleted since the last commit."""
        if self._writer is not None:
            try:
                self._writer[1].rollback()
            finally:
                self._writer = None
                _lock.release()

    # --- writing ------------------------------------------------------------------------------------
    def add(self, doc_id: str, chunks, more: bool = False):
        """chunks: (index, text) pairs of one document, replacing its rows (more: added to them, the
        rest of a document still being read). Tables of contents and indexes are left out: they
        repeat every heading, so BM25 ranked them above the sections themselves (R FAQ: keyword hit@1
        0.42 with them, 0.82 without; bench/devset.py). Searchable once committed."""
        self._insert(doc_id, [(index, cjk_bigrams(text)) for index, text in chunks if not is_listing(text)], more)

    def _insert(self, doc_id: str, rows, more: bool = False):
        import tantivy

        schema, writer = self._index().schema, self._writing()
        # Rows it had first go (tantivy applies a delete to what was added before it only): two
        # processes that both found it missing (ensure_keywords) cannot index it twice.
        if not more:
            writer.delete_documents_by_term("doc_id", doc_id)
        for index, text in rows:
            writer.add_document(tantivy.Document.from_dict(
                {"doc_id": doc_id, "chunk": index, "text": stems(text), "passage": text.encode()}, schema))

    def copy(self, from_doc: str, to_doc: str):
        """An identical document's rows under a new doc id (as written: listings already left out)."""
        self._insert(to_doc, [(chunk, text) for _, chunk, text in self._rows_of(from_doc)])

    def delete(self, doc_id: str):
        self._writing().delete_documents_by_term("doc_id", doc_id)

    def close(self):
        """Let go of the opened indexes (their files), committing nothing left open."""
        self.rollback()
        self._opened.clear()

    def folders(self) -> list[str]:
        """The physical collections that have an index folder."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []

    def drop(self, physical: str):
        """Delete a physical collection's index folder (its rows are gone from the manifest)."""
        if self._writer is not None and self._writer[0] == physical:
            self.rollback()
        self._opened.pop(physical, None)
        shutil.rmtree(self.root / physical, ignore_errors=True)

    # --- reading ------------------------------------------------------------------------------------
    def _searcher(self):
        index = self._index()
        index.reload()  # another process's commits (a cheap look at the index's meta.json)
        return index.searcher()

    def _found(self, searcher, query, limit: int) -> list[tuple[str, int, str, float]]:
        rows = []
        for score, address in searcher.search(query, limit, count=False).hits:
            doc = searcher.doc(address)
            rows.append((doc["doc_id"][0], doc["chunk"][0], bytes(doc["passage"][0]).decode(), score))
        return rows

    def _rows_of(self, doc_id: str) -> list[tuple[str, int, str]]:
        import tantivy

        searcher = self._searcher()
        query = tantivy.Query.term_query(self._index().schema, "doc_id", doc_id)
        return sorted((d, c, t) for d, c, t, _ in self._found(searcher, query, max(1, searcher.num_docs)))

    def rows(self) -> list[tuple[str, int, str]]:
        """(doc_id, chunk, text) of every keyword row of this collection: for integrity checks."""
        import tantivy

        searcher = self._searcher()
        return sorted((d, c, t) for d, c, t, _ in self._found(searcher, tantivy.Query.all_query(), max(1, searcher.num_docs)))

    def _indexed_docs(self) -> set[str]:
        import tantivy

        searcher = self._searcher()
        if not searcher.num_docs:
            return set()
        got = searcher.aggregate(tantivy.Query.all_query(),
                                 {"docs": {"terms": {"field": "doc_id", "size": searcher.num_docs}}})
        return {bucket["key"] for bucket in got["docs"]["buckets"]}

    def search(self, match: str, limit: int, docs: list[str] | None = None) -> list[tuple[str, int, float]]:
        """(doc id, chunk index, BM25 score: higher is better) of the best rows for a query of quoted
        words joined by OR (rag.retrieval.keyword_query), in the documents `docs` only when given.
        CJK text in it is split as the index's (a quoted run: the phrase of its pairs)."""
        import tantivy

        index = self._index()
        query = index.parse_query(_QUOTED.sub(lambda m: f'"{stems(m.group(1))}"', cjk_bigrams(match)), ["text"])
        if docs:
            only = tantivy.Query.const_score_query(tantivy.Query.term_set_query(index.schema, "doc_id", list(docs)), 0.0)
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, only)])
        return [(doc, chunk, score) for doc, chunk, _, score in self._found(self._searcher(), query, limit)]

    # --- built, and the upgrade from SQLite FTS5 ------------------------------------------------------
    def built(self) -> bool:
        """The index was built for this collection (ingests keep it current from then on)."""
        self._upgrade()
        return self.db.execute("SELECT 1 FROM meta WHERE key=?", (self._built_key,)).fetchone() is not None

    def mark_built(self, generation: int = 1):
        self._upgrade()  # first: an upgrade unmarks every collection
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (self._built_key, generation))

    def _upgrade(self):
        """A manifest from before FORMAT: its FTS5 tables dropped and every collection marked not
        built, so Library.ensure_keywords indexes each again from its stored chunk texts."""
        if self._current:
            return
        if self._format() == FORMAT:
            self._current = True
            return
        in_transaction = self.db.db.in_transaction
        with contextlib.nullcontext() if in_transaction else self.db.transaction():
            if self._format() != FORMAT:
                self.close()  # an older tantivy index's folders (another schema) go, before the mark
                shutil.rmtree(self.root, ignore_errors=True)
                self.db.execute("DROP TABLE IF EXISTS keywords")
                self.db.execute("DROP TABLE IF EXISTS keyword_chunks")
                self.db.execute("DELETE FROM meta WHERE key LIKE 'keywords built:%'")
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_FORMAT_KEY, FORMAT))
        self._current = not in_transaction  # a caller's transaction may yet roll back

    def _format(self):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (_FORMAT_KEY,)).fetchone()
        return row and row[0]

    def docs_missing(self) -> list[str]:
        """doc_ids of this collection's documents with no keyword row (never indexed, or all
        navigation); rows of documents no record names are deleted on the way (left by a crash, or
        by a collection of the same name dropped before its folder went)."""
        live = self._live_docs()
        indexed = self._indexed_docs()
        with self.batch():
            for gone in indexed - live:
                self.delete(gone)
        return sorted(live - indexed)

    def _live_docs(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT doc_id FROM files WHERE collection=?", (self.files.collection,))}


class CachedKeywords(Keywords):
    """A Chroma server's keyword index, cached per instance: current while it holds what the server
    held at the server's last change (its generation)."""

    def built(self) -> bool:
        self._upgrade()
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (self._built_key,)).fetchone()
        return row is not None and row[0] == self.files.generation()

    def _live_docs(self) -> set[str]:
        return {r.doc_id for r in self.files.records().values()}  # what any instance recorded
