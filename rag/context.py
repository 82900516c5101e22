"""What the model is shown: the retrieved chunks made into passages that fit its context.

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

from ingest.library import Library, chunk_id, split_id

from .search import Hit

WIDEN_BELOW = 48  # tokens
PROMPT_OVERHEAD = 400  # tokens for the system prompt, the question and the chat template


# llama.cpp on a laptop-class CPU reads ~100 prompt tokens/s, so the passages are most of the wait
# for the first token. bench/first_token.py measures the wait and how often the gold answer is still
# in what is sent, per budget, on the R FAQ dev set.
CPU_CONTEXT_TOKENS = 450


def budget_for(library: Library, server=None) -> int:
    """Passage tokens for the model behind `server` (an llm_server.ServerInfo, or None)."""
    s = library.settings
    room = max(256, s.llm_context - s.answer_max_tokens - PROMPT_OVERHEAD)
    if s.context_tokens > 0:
        return min(room, s.context_tokens)
    if server is not None and server.engine == "llamacpp":
        return min(room, CPU_CONTEXT_TOKENS)
    return room


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
        text = _join(doc=b["doc"], indices=sorted(b["indices"]), chunks=chunks, fallback=b["hit"].text)
        tokens = count(text)
        if passages and used + tokens > budget:
            break
        used += tokens
        first = b["hit"]
        start_id = chunk_id(b["doc"], min(b["indices"]))
        section = chunks.get(start_id, (None, {}))[1].get("section", first.section)
        passages.append(Hit(text, first.source, first.page, b["score"], start_id, section))
    return passages


def _join(doc: str, indices: list[int], chunks: dict, fallback: str) -> str:
    """Consecutive chunks as one text, the overlap between neighbours counted once."""
    parts = [chunks[chunk_id(doc, i)] for i in indices if chunk_id(doc, i) in chunks]
    if not parts:
        return fallback
    text, end = parts[0][0], parts[0][1].get("end")
    for piece, meta in parts[1:]:
        start = meta.get("start")
        if end is not None and start is not None and start < end:
            text += piece[end - start:]  # offsets are in the same page text: what follows the overlap
        else:
            text += " " + piece
        end = meta.get("end", end)
    return text
