"""Retrieval over a Library: dense (Chroma), keyword (BM25 over SQLite FTS5) or both, fused.

    dense    the query is embedded and the nearest chunks come back (cosine similarity)
    keyword  BM25 over the manifest's FTS5 index (Porter-stemmed words, stopwords dropped)
    hybrid   both lists fused by reciprocal rank fusion (Cormack et al.: score = sum 1/(60 + rank)),
             then optionally re-ordered by a cross-encoder (HEARTH_RERANK_MODEL)

Every hit carries its cosine similarity to the query, also keyword-only hits (computed from their
stored vectors), so the answerer's relevance threshold means the same in every mode.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ingest.library import Library

MODES = ("hybrid", "dense", "keyword")
RRF_K = 60  # the constant of reciprocal rank fusion; 60 is the published default
CANDIDATES = 30  # how deep each retriever's list goes before fusion
# Keyword ranks count 0.3 of dense ranks: measured on the R FAQ dev set (bench/devset.py), equal
# weights lost hit@5 on questions in users' own words (0.946 against dense 0.973); 0.3 beats or ties
# both retrievers on hit@1 and hit@5 for verbatim and hand-written questions.
WEIGHTS = (1.0, 0.3)  # dense, keyword
# In hybrid mode a query word found in more than COMMON_WORD_SHARE of all chunks is left out of the
# keyword query. FTS5 scores every chunk holding any query word, and at 100k chunks of R manuals 'r',
# 'use' or 'function' each match 40-50k of them: the keyword query was two thirds of a hybrid search
# (bench/search.py). BM25 gives such words little weight (idf 1.4 against ~9 for a rare word) and the
# dense side still reads them. On the R FAQ among all R manuals (20k chunks) leaving them out moved
# hybrid hit@1/hit@5/MRR from 0.667/0.875/0.749 to 0.694/0.861/0.762 (headings) and MRR from 0.378
# to 0.381 (own words); a share of 0.1 was faster but lost more (hit@5 0.847). Keyword-only
# searches keep every word.
# A word in fewer than MIN_COMMON_ROWS chunks is always kept: such counts are quick to score, and in
# a library under 2,000 chunks a word in that many is in half of them or more (BM25's idf: zero).
COMMON_WORD_SHARE = 0.2
MIN_COMMON_ROWS = 1000
_WORD = re.compile(r"\w+")
_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hearth-keyword")
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from how i if in into is it its me my of on or so such "
    "that the their then there these they this to was what when where which who why will with would you "
    "your we our should could may might must not no".split()
)


@dataclass
class Hit:
    text: str
    source: str
    page: int | None
    score: float  # cosine similarity to the query, 1 is identical
    chunk_id: str
    section: str | None = None

    def to_json(self) -> dict:
        """The stable shape scripts rely on: text, source, page, score, chunk_id, section."""
        return {"text": self.text, "source": self.source, "page": self.page, "score": self.score,
                "chunk_id": self.chunk_id, "section": self.section}


def search(library: Library, query: str, k: int = 5, mode: str | None = None) -> list[Hit]:
    mode = mode or library.settings.retrieval
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}: use {', '.join(MODES)}")
    query = " ".join(query.split())
    if not query or not library.files.has_files():
        return []
    depth = max(CANDIDATES, k) if mode == "hybrid" else k
    library.collection  # opened here, not in two threads at once
    keyword = None
    if mode != "dense":
        library.ensure_keywords()
        # The keyword query runs beside the query's embedding and the dense search: SQLite and torch
        # both let go of the GIL, so on two cores a hybrid search takes about as long as the slower.
        keyword = _threads.submit(_keyword, library, query, depth, mode == "hybrid")
    vector = library.embedder.embed([query])[0]
    dense = _dense(library, vector, depth) if mode != "keyword" else []
    keyword = keyword.result() if keyword else []
    if mode == "dense":
        ranked = [cid for cid, _ in dense]
    elif mode == "keyword":
        ranked = [cid for cid, _ in keyword]
    else:
        ranked = fuse([cid for cid, _ in dense], [cid for cid, _ in keyword], weights=WEIGHTS)
    hits = _hits(library, ranked[: max(k, depth) if library.settings.rerank_model else k], vector)
    if mode == "hybrid" and library.settings.rerank_model:
        hits = rerank(library.settings.rerank_model, query, hits)
    return hits[:k]


def fuse(*rankings: list[str], weights=None) -> list[str]:
    """Weighted reciprocal rank fusion of several ranked lists of ids."""
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, cid in enumerate(ranking):
            scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank + 1)
    return sorted(scores, key=lambda cid: -scores[cid])


def _dense(library: Library, vector, n: int) -> list[tuple[str, float]]:
    return library.nearest(vector, n)


def query_words(query: str) -> list[str]:
    """The query's distinct words, lower-case, stopwords left out, in order."""
    return list(dict.fromkeys(w for w in _WORD.findall(query.lower()) if w not in STOPWORDS))


def keyword_query(words: list[str]) -> str:
    """An FTS5 MATCH expression: any of the words (quoted, so no word is read as syntax)."""
    return " OR ".join(f'"{w}"' for w in words)


def rare_words(keywords, words: list[str]) -> list[str]:
    """The words found in at most COMMON_WORD_SHARE of all chunks; all of them if none is that rare."""
    cap = max(int(COMMON_WORD_SHARE * keywords.total()), MIN_COMMON_ROWS) + 1
    counts = keywords.counts(words, cap)
    return [w for w in words if counts[w] < cap] or words


def _keyword(library: Library, query: str, n: int, rare_only: bool) -> list[tuple[str, float]]:
    words = query_words(query)
    if words and rare_only:
        words = rare_words(library.keywords, words)
    return library.keyword_search(keyword_query(words), n) if words else []


def _hits(library: Library, ids: list[str], vector) -> list[Hit]:
    if not ids:
        return []
    by_id = library.chunks(ids, vectors=True)
    hits = []
    for cid in ids:
        if cid not in by_id:
            continue
        doc, meta, emb = by_id[cid]
        score = round(float(np.dot(np.asarray(emb, dtype="float32"), vector)), 4)  # both unit length
        hits.append(Hit(doc, meta.get("source", ""), meta.get("page"), score, cid, meta.get("section")))
    return hits


_rerankers: dict = {}


def rerank(model_path: str, query: str, hits: list[Hit]) -> list[Hit]:
    """Re-order by a sentence-transformers CrossEncoder (loaded once, from a local folder)."""
    if model_path not in _rerankers:
        from sentence_transformers import CrossEncoder

        _rerankers[model_path] = CrossEncoder(model_path, device="cpu", local_files_only=True)
    scores = _rerankers[model_path].predict([(query, h.text) for h in hits])
    return [h for _, h in sorted(zip(scores, hits), key=lambda pair: -pair[0])]
