"""Summarize a whole document: map over its passages in parts, then reduce, with page citations.

    stream = summarize(answerer, record, on_part=lambda i, n, pages, text: ...)
    for text in stream: ...        # the summary of the whole document, as it streams
    stream.result.citations        # [n] = part n, with its first page

Map: the document's chunks, in order, are joined into parts that fit the model's passage budget
(rag/retrieval.budget_for: sized from the server's measured prompt speed, ~250 tokens on a 2-core
CPU, so the first part's summary starts within seconds); each part is summarized in two sentences,
streamed to `on_part` as it comes. Only MAX_PARTS parts are read (evenly spaced over a longer
document, and the summary says so). Reduce: the
part summaries, numbered with their pages, are summarized into one answer that cites them as [n],
checked against the parts' own text like any answer.
"""

from __future__ import annotations

import time

from ingest.library import chunk_id

from .answer import Answer, AnswerStream, _plain, build_messages, check_citations
from .retrieval import Hit, budget_for
from .support import check_support, split_sentences

MAX_PARTS = 8
PART_PROMPT = "Summarize this passage in two short sentences."
WHOLE_PROMPT = ("Summarize the whole document these passages summarize, in three to five sentences. "
                "Cite the passage each sentence comes from as [1], [2].")


def parts(library, record, server=None) -> list[Hit]:
    """The document's chunks in order, joined into parts of at most the passage budget of the model
    behind `server`."""
    ids = [chunk_id(record.doc_id, i) for i in range(record.chunks)]
    chunks = library.chunks(ids)
    budget = budget_for(library, server)
    out, text, tokens, first = [], "", 0, None
    for cid in ids:
        if cid not in chunks:
            continue
        piece, meta, _ = chunks[cid]
        size = len(library.embedder.tokenize(piece))
        if text and tokens + size > budget:
            out.append(Hit(text, first[0], first[1], 0.0, first[2], first[3]))
            text, tokens, first = "", 0, None
        if first is None:
            first = (meta.get("source", record.path), meta.get("page"), cid, meta.get("section"))
        text = f"{text}\n{piece}" if text else piece
        tokens += size
    if text:
        out.append(Hit(text, first[0], first[1], 0.0, first[2], first[3]))
    return out


def pick(all_parts: list[Hit], cap: int = MAX_PARTS) -> list[Hit]:
    """At most `cap` parts, evenly spaced from the first to the last."""
    if len(all_parts) <= cap:
        return all_parts
    if cap <= 1:
        return all_parts[:max(cap, 0)]
    step = (len(all_parts) - 1) / (cap - 1)
    return [all_parts[round(i * step)] for i in range(cap)]


def summarize(answerer, record, on_part=None, cap: int = MAX_PARTS) -> AnswerStream:
    """A streamed summary of the document `record` (a FileRecord); on_part(i, n, page, text) is
    called with each part's summary as it grows, before the summary of the whole streams."""
    started = time.perf_counter()
    library = answerer.library
    all_parts = parts(library, record, answerer.server)
    chosen = pick(all_parts, cap)
    name = record.path.rsplit("/", 1)[-1]
    read = f"all {len(all_parts)} parts" if len(chosen) == len(all_parts) else \
        f"{len(chosen)} of its {len(all_parts)} parts, evenly spaced (a long document)"
    result = Answer(f"Summarize {name}", "", [], [], answerer.server.model if answerer.server else "",
                    f"summary of {record.path}: {read}")
    summaries: list[Hit] = []
    if answerer.server is not None and not answerer.starting:
        llm = answerer.llm(max_tokens=90)
        for i, part in enumerate(chosen, 1):
            text = ""
            try:
                for chunk in llm.stream_chat(build_messages(PART_PROMPT, [part])):
                    if chunk.delta:
                        if "first_token_ms" not in result.timings:
                            result.timings["first_token_ms"] = round(1000 * (time.perf_counter() - started))
                        text += chunk.delta
                        if on_part:
                            on_part(i, len(chosen), part.page, text)
            except Exception as exc:
                result.error = f"the model server stopped while summarizing part {i} ({_plain(exc)})"
                break
            summaries.append(Hit(" ".join(text.replace("[1]", "").split()), part.source, part.page, 0.0,
                                 part.chunk_id, part.section))
    stream = _SummaryStream(answerer, result, started, summaries, chosen[: len(summaries)] or chosen)
    return stream


class _SummaryStream(AnswerStream):
    """The reduce step: the part summaries are the model's passages; its citations are checked
    against the parts' own text."""

    def __init__(self, answerer, result, started, summaries: list[Hit], originals: list[Hit]):
        super().__init__(answerer, result, started)
        self.summaries = summaries
        result.passages = self.passages = originals
        result.timings.setdefault("map_ms", round(1000 * (time.perf_counter() - started)))

    def _messages(self):
        return build_messages(WHOLE_PROMPT, self.summaries)

    def check(self):
        """A small model often cites nothing in a summary: a sentence without a citation is checked
        against every part, and cites the one that supports it (if any does) before the usual check."""
        result = self.result
        all_parts = "".join(f"[{n}]" for n in range(1, len(self.passages) + 1))
        pieces, changed = [], False
        for start, end in split_sentences(result.answer):
            sentence = result.answer[start:end]
            if "[" not in sentence:
                found = check_support(sentence + " " + all_parts, self.passages, self.answerer.library.embedder)
                if found and found[0].supported and found[0].n:
                    sentence, changed = f"{sentence} [{found[0].n}]", True
            pieces.append(sentence)
        if changed:
            result.answer, result.citations = check_citations(" ".join(pieces), self.passages)
        super().check()
