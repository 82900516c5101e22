"""Sentence splitting inside chunking: Hearth's regex against llama-index's default (nltk punkt).

    .venv/bin/python bench/sentences.py

Both split sentences for the same SentenceSplitter at Hearth's chunk size (192/24 tokens); sentences only
decide where a chunk may end. On the five R manuals the file reader would read for `bench/ingest.py`:
chunking CPU seconds (median of 3), chunks made, chunk starts the two share. Then dense retrieval on the
R FAQ's own questions (bench/chunking.py's test: headings deleted, a hit is the answer's page) for both.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chunking import questions_and_pages, strip_headings  # noqa: E402
from machine import describe  # noqa: E402

from ingest.chunking import Chunker  # noqa: E402
from ingest.embedding import Embedder  # noqa: E402
from ingest.loaders import pdf  # noqa: E402

MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
FIVE = ["R-intro", "R-data", "R-admin", "R-lang", "R-ints"]


def chunkers(embedder: Embedder) -> dict:
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

    regex = Chunker(192, 24, embedder.tokenize)
    punkt = Chunker(192, 24, embedder.tokenize)
    punkt.splitter._chunking_tokenizer_fn = punkt.splitter._split_fns[1] = split_by_sentence_tokenizer()
    return {"regex (Hearth)": regex, "nltk punkt (llama-index default)": punkt}


def main() -> None:
    print(describe(), flush=True)
    embedder = Embedder()
    variants = chunkers(embedder)
    docs = [pdf.load(MANUALS / f"{name}.pdf").sections for name in FIVE]
    chars = sum(len(s.text) for d in docs for s in d)
    print(f"five R manuals: {sum(len(d) for d in docs)} sections, {chars / 1e6:.2f} M characters; chunk 192/24 tokens\n")
    print("| sentence splitter | chunking CPU s | chunks | chunk starts shared |")
    print("| --- | ---: | ---: | ---: |")
    made = {}
    for label, chunker in variants.items():
        chunker.chunk(docs[0][:3])  # first-use costs (punkt loads its model) off the clock
        seconds = []
        for _ in range(3):
            started = time.process_time()
            made[label] = [c for d in docs for c in chunker.chunk(d)]
            seconds.append(time.process_time() - started)
        made[label + " s"] = statistics.median(seconds)
    starts = [{(c.page, c.start) for c in made[label]} for label in variants]
    for label, own in zip(variants, starts):
        print(f"| {label} | {made[label + ' s']:.2f} | {len(made[label])} | {len(starts[0] & starts[1]) / len(own):.3f} |")

    faq = MANUALS / "R-FAQ.pdf"
    questions = questions_and_pages(faq)
    sections = strip_headings(pdf.load(faq).sections, questions)
    qvec = embedder.embed([q for q, _ in questions])
    print(f"\nR FAQ, {len(questions)} questions, dense retrieval (hit = the answer's page):")
    print("| sentence splitter | chunks | hit@1 | hit@5 | MRR |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, chunker in variants.items():
        chunks = chunker.chunk(sections)
        order = np.argsort(-(qvec @ embedder.embed([c.text for c in chunks]).T), axis=1)
        pages = np.array([c.page for c in chunks])
        ranks = [np.nonzero(pages[ranked[:10]] == gold)[0] for (_, gold), ranked in zip(questions, order)]
        n = len(questions)
        hit1 = sum(r.size > 0 and r[0] == 0 for r in ranks) / n
        hit5 = sum(r.size > 0 and r[0] < 5 for r in ranks) / n
        mrr = sum(1 / (r[0] + 1) for r in ranks if r.size) / n
        print(f"| {label} | {len(chunks)} | {hit1:.3f} | {hit5:.3f} | {mrr:.3f} |")


if __name__ == "__main__":
    main()
