"""Retrieval: the passages a question is answered from.

search      dense (Chroma), keyword (BM25, tantivy) or both, combined:
    dense    the query is embedded and the nearest chunks come back (cosine similarity)
    keyword  BM25 over the collection's tantivy index (stemmed words, accents folded, stopwords dropped)
    hybrid   both lists' candidates ordered by cosine + a keyword weight (per embedding model) * BM25
             over the query's best BM25 + HEADING_WEIGHT times how closely the heading matches the question;
             then optionally re-ordered by a cross-encoder (HEARTH_RERANK_MODEL)
In every mode, tables of contents and indexes (marked at ingest) come after every prose passage.
Every hit carries its cosine similarity to the query, also keyword-only hits (computed from their
stored vectors), so the answerer's relevance threshold means the same in every mode.

assemble    the hits made into passages that fit the model's context:
    dedupe   a chunk whose text repeats a better-ranked one is dropped (copies of a file, reprints)
    widen    a hit shorter than WIDEN_BELOW tokens (a heading, the tail of a page) takes in its
             neighbouring chunks on the same page, since alone it rarely holds an answer
    merge    chunks of one document that touch on the same page become one passage, their overlap
             counted once (the chunker's character offsets say where each starts)
    budget   passages are kept in rank order while they fit the model's context, after room for the
             instructions, the question and the answer
A merged passage keeps the page, section and id of its first chunk and the best score of its parts.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ingest.chunking import is_listing
from ingest.library import Library, chunk_id, split_id
from ingest.settings import MULTILINGUAL_MODEL, Settings
from ingest.language import cjk_bigrams

from . import engines
from .support import content_words

MODES = ("hybrid", "dense", "keyword")
RRF_K = 60  # the constant of reciprocal rank fusion (fuse: the benches' arms); 60 is the published default
CANDIDATES = 30  # how deep each retriever's list goes before fusion
# Hybrid order: a candidate's cosine, plus KEYWORD_WEIGHT times its BM25 over the query's best BM25, plus
# HEADING_WEIGHT times how closely its heading matches the question. Scores, not ranks: rank fusion let the
# keyword list reorder passages whose cosines differ by a lot (docs/decisions.md, 2026-12-06).
KEYWORD_WEIGHT = 0.06
# multilingual-e5's cosines lie ~7x closer together than MiniLM's; 0.02 was best on its dev questions
KEYWORD_WEIGHTS = {MULTILINGUAL_MODEL: 0.02}
HEADING_WEIGHT = 0.04  # 0.03 and 0.04 equal on every dev set; at 0.04 the README question finds its chapter first
HEADING_MIN_SHARE = 0.5  # of the question's content words a heading must hold to count (any one word: -14 points)
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"[\d.]+")
_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hearth-keyword")
# Words a query's keyword side leaves out. Not support.py's longer list (negations kept there, more
# words dropped): one list for both lost ~1 point of hit@1 and MRR on both splits (docs/decisions.md).
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
    start: int | None = None  # where the text begins in its page's (or file's) text; None: not known
    ocr: bool = False  # the page was read from an image by OCR
    listing: bool = False  # a table of contents or index (ingest.chunking.is_listing)

    def to_json(self) -> dict:
        """The stable shape scripts rely on: text, source, page, score, chunk_id, section, start, ocr."""
        return {"text": self.text, "source": self.source, "page": self.page, "score": self.score,
                "chunk_id": self.chunk_id, "section": self.section, "start": self.start, "ocr": self.ocr}


def search(library: Library, query: str, k: int = 5, mode: str | None = None, only=None) -> list[Hit]:
    """`only`: files or folders; then only the documents at or under them are searched."""
    mode = mode or library.settings.retrieval
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}: use {', '.join(MODES)}")
    query = " ".join(query.split())
    if not query or not library.files.has_files():
        return []
    docs = library.docs_under(only) if only else None
    if only and not docs:
        return []
    depth = max(CANDIDATES, k)
    library.collection  # opened here, not in two threads at once
    keyword = None
    if mode != "dense":
        library.ensure_keywords()
        # The keyword query runs beside the query's embedding and the dense search: tantivy and torch
        # both let go of the GIL, so on two cores a hybrid search takes about as long as the slower.
        keyword = _threads.submit(_keyword, library, query, depth, docs)
    vector = library.embedder.embed_query(query)
    dense = _dense(library, vector, depth, docs) if mode != "keyword" else []
    keyword = keyword.result() if keyword else []
    if mode == "dense":
        ranked = [cid for cid, _ in dense]
    elif mode == "keyword":
        ranked = [cid for cid, _ in keyword]
    else:
        ranked = [cid for cid, _ in dense] + [cid for cid, _ in keyword]  # the candidates, fused below
    hits = _hits(library, list(dict.fromkeys(ranked)), vector)
    if mode == "hybrid":
        weight = KEYWORD_WEIGHTS.get(library.embed_model, KEYWORD_WEIGHT)
        hits = combine(hits, dict(keyword), heading_match(query, hits), weight)
    # Tables of contents and indexes after every prose passage (stable: each keeps its rank otherwise)
    hits = sorted(hits, key=lambda h: h.listing)
    if mode == "hybrid" and library.settings.rerank_model:
        hits = rerank(library.settings.rerank_model, query, hits[: max(k, depth)])
    return hits[:k]


def heading_match(query: str, hits: list[Hit]) -> dict[str, float]:
    """{chunk id: how closely its section heading matches the query} for the hits whose heading holds
    HEADING_MIN_SHARE of the query's content words: a question in the words of a chapter's title
    ("read an Excel spreadsheet") belongs to that chapter ("9 Reading Excel spreadsheets"), which
    neither retriever sees (chunks are embedded and indexed without their heading). The match is the
    words shared over the words of both (Jaccard), so the heading a question repeats beats one that
    only holds its words among others ("What is a bug?" against "How to report a bug")."""
    words = _heading_words(query)
    least = max(1.0, HEADING_MIN_SHARE * len(words))
    matches = {}
    for h in hits:
        heading = _heading_words(h.section or "")
        if len(shared := words & heading) >= least:
            matches[h.chunk_id] = len(shared) / len(words | heading)
    return matches


def _heading_words(text: str) -> set[str]:
    """Content words less numbers: a heading's "9" or "7.31" is its place in the book, not its subject."""
    return {w for w in content_words(text) if not _NUMBER.fullmatch(w)}


def combine(hits: list[Hit], keyword: dict[str, float], heading: dict[str, float],
            weight: float = KEYWORD_WEIGHT) -> list[Hit]:
    """The hybrid order: cosine + weight * BM25 / the best BM25 + HEADING_WEIGHT * the heading's match."""
    best = max(keyword.values(), default=0.0) or 1.0
    return sorted(hits, key=lambda h: -(h.score + weight * keyword.get(h.chunk_id, 0.0) / best
                                        + HEADING_WEIGHT * heading.get(h.chunk_id, 0.0)))


def fuse(*rankings: list[str], weights=None) -> list[str]:
    """Weighted reciprocal rank fusion of several ranked lists of ids (the benches' arms that fuse a
    ranking of their own; hybrid search combines scores: combine)."""
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, cid in enumerate(ranking):
            scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank + 1)
    return sorted(scores, key=lambda cid: -scores[cid])


def _dense(library: Library, vector, n: int, docs=None) -> list[tuple[str, float]]:
    return library.nearest(vector, n, docs)  # a function of its own: bench/search.py times it


def query_words(query: str) -> list[str]:
    """The query's distinct words, lower-case, stopwords left out, in order; Chinese, Japanese and
    Korean as the keyword index holds them, in overlapping character pairs (cjk_bigrams)."""
    return list(dict.fromkeys(w for w in _WORD.findall(cjk_bigrams(query.lower())) if w not in STOPWORDS))


def keyword_query(words: list[str]) -> str:
    """The keyword index's query: any of the words (quoted, so no word is read as syntax). Every
    word is kept, however common: BM25 weighs it, and tantivy skips what cannot reach the best."""
    return " OR ".join(f'"{w}"' for w in words)


def _keyword(library: Library, query: str, n: int, docs=None) -> list[tuple[str, float]]:
    words = query_words(query)
    return library.keyword_search(keyword_query(words), n, docs) if words else []


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
        listing = meta["listing"] if "listing" in meta else is_listing(doc)  # a chunk stored before the mark
        hits.append(Hit(doc, meta.get("source", ""), meta.get("page"), score, cid, meta.get("section"), meta.get("start"),
                        bool(meta.get("ocr")), bool(listing)))
    return hits


_rerankers: dict = {}


def rerank(model_path: str, query: str, hits: list[Hit]) -> list[Hit]:
    """Re-order by a sentence-transformers CrossEncoder (loaded once, from a local folder)."""
    if model_path not in _rerankers:
        from sentence_transformers import CrossEncoder

        _rerankers[model_path] = CrossEncoder(model_path, device="cpu", local_files_only=True)
    scores = _rerankers[model_path].predict([(query, h.text) for h in hits])
    return [h for _, h in sorted(zip(scores, hits), key=lambda pair: -pair[0])]


# --- passages -------------------------------------------------------------------------------------
WIDEN_BELOW = 48  # tokens
PROMPT_OVERHEAD = 400  # tokens for the system prompt, the question and the chat template


# Passages sized to the first-token wait (HEARTH_FIRST_TOKEN_S) at the server's measured prompt speed:
#   passage tokens = prompt tokens/s * (FIRST_TOKEN_S - FIRST_TOKEN_FIXED_S) - PROMPT_FIXED_TOKENS
FIRST_TOKEN_FIXED_S = 0.6  # the wait that is not the prompt: retrieval, the lead quote, the HTTP round trip
PROMPT_FIXED_TOKENS = 140  # the rest of the prompt: system, question, instructions, template (build_messages, Qwen: 135-146)
MIN_PASSAGE_TOKENS = 150  # one passage's worth, however slow the server: an answer needs something to quote


def budget_for(library: Library, server=None) -> int:
    """Passage tokens for the model behind `server` (an llm_server.ServerInfo, or None); `library`
    may also be a Settings. See budget_and_basis."""
    return budget_and_basis(library, server)[0]


def budget_and_basis(library: "Library | Settings", server=None) -> tuple[int, str]:
    """The passage budget and what sized it: HEARTH_CONTEXT_TOKENS wins ("setting"); else a server
    whose prompt speed was measured gets what it reads within HEARTH_FIRST_TOKEN_S, at least
    MIN_PASSAGE_TOKENS ("measured"), at most what its engine's default model reads closely (READ_TOKENS:
    "model"); else its engine's CONTEXT_TOKENS ("engine"); always at most what fits the context
    ("context" when nothing else set it)."""
    s = getattr(library, "settings", library)
    room = max(256, s.llm_context - s.answer_max_tokens - PROMPT_OVERHEAD)
    if s.context_tokens > 0:
        return min(room, s.context_tokens), "setting"
    engine = engines.get(server.engine) if server is not None else None
    speed = getattr(server, "prompt_tokens_per_s", None)
    if speed:
        fits = int(min(room, max(MIN_PASSAGE_TOKENS, speed * (s.first_token_s - FIRST_TOKEN_FIXED_S) - PROMPT_FIXED_TOKENS)))
        reads = getattr(engine, "READ_TOKENS", None) if not s.llm_model else None
        return (reads, "model") if reads and fits > reads else (fits, "measured")
    if engine is not None and engine.CONTEXT_TOKENS:
        return min(room, engine.CONTEXT_TOKENS), "engine"
    return room, "context"


def assemble(library: Library, hits: list[Hit], budget: int | None = None) -> list[Hit]:
    if not hits:
        return []
    budget = budget if budget is not None else budget_for(library)
    count = lambda text: len(library.embedder.tokenize(text))  # noqa: E731 (the embedder's tokens, close enough)
    short = {h.chunk_id for h in hits if count(h.text) < WIDEN_BELOW}
    wanted = set()
    for h in hits:
        doc, i = split_id(h.chunk_id)
        wanted.update({chunk_id(doc, i)} | ({chunk_id(doc, i - 1), chunk_id(doc, i + 1)} if h.chunk_id in short else set()))
    chunks = {cid: (text, meta) for cid, (text, meta, _) in library.chunks(sorted(wanted)).items()}

    blocks: list[dict] = []  # doc, page, indices, best hit, score, in rank order
    seen_texts: set[str] = set()
    for h in hits:
        key = " ".join(h.text.split())
        if key in seen_texts:
            continue
        seen_texts.add(key)
        doc, i = split_id(h.chunk_id)
        indices = {i}
        if h.chunk_id in short:
            indices |= {j for j in (i - 1, i + 1) if chunk_id(doc, j) in chunks and chunks[chunk_id(doc, j)][1].get("page") == h.page}
        block = next((b for b in blocks if b["doc"] == doc and b["page"] == h.page
                      and min(indices) <= max(b["indices"]) + 1 and max(indices) >= min(b["indices"]) - 1), None)
        if block is None:
            blocks.append({"doc": doc, "page": h.page, "indices": indices, "hit": h, "score": h.score})
        else:
            block["indices"] |= indices
            block["score"] = max(block["score"], h.score)

    passages, used = [], 0
    for b in blocks:
        text, start = _join(doc=b["doc"], indices=sorted(b["indices"]), chunks=chunks, fallback=b["hit"])
        tokens = count(text)
        if passages and used + tokens > budget:
            break
        used += tokens
        first = b["hit"]
        start_id = chunk_id(b["doc"], min(b["indices"]))
        section = chunks.get(start_id, (None, {}))[1].get("section", first.section)
        passages.append(Hit(text, first.source, first.page, b["score"], start_id, section, start, first.ocr))
    return passages


def _join(doc: str, indices: list[int], chunks: dict, fallback: Hit) -> tuple[str, int | None]:
    """Consecutive chunks as one text, the overlap between neighbours counted once; and where that
    text starts in the page's text (None when a gap between chunks makes offsets inexact)."""
    parts = [chunks[chunk_id(doc, i)] for i in indices if chunk_id(doc, i) in chunks]
    if not parts:
        return fallback.text, fallback.start
    text, end, first = parts[0][0], parts[0][1].get("end"), parts[0][1].get("start")
    for piece, meta in parts[1:]:
        start = meta.get("start")
        if end is not None and start is not None and start < end:
            text += piece[end - start:]  # offsets are in the same page text: what follows the overlap
        elif end is not None and start is not None and start - end <= 8:
            text += " " * (start - end) + piece  # the whitespace between them, offsets kept
        else:
            text += " " + piece
            first = None
        end = meta.get("end", end)
    return text, first
