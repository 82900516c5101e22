"""How big should a chunk be? Dense retrieval quality and cost for several chunk sizes.

    .venv/bin/python bench/chunking.py [R-FAQ.pdf]

Questions: the R FAQ's own question headings (from the PDF outline). Each heading is deleted from
the page text before chunking, so a question can only be found through its answer, not by matching
its own heading. A hit is a retrieved chunk from the page where that question's answer starts.
Exact cosine search over all chunks (what Chroma approximates), so only the chunking varies.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

from ingest.chunking import Chunker  # noqa: E402
from ingest.embedding import Embedder  # noqa: E402
from ingest.loaders import Section, pdf  # noqa: E402

SIZES = [(96, 12), (128, 16), (192, 24), (254, 32), (384, 48), (512, 64)]


def questions_and_pages(path: Path):
    import pypdf

    reader = pypdf.PdfReader(str(path))
    starts, titles = pdf._outline_headings(reader)
    return [(t, p + 1) for p, t in zip(starts, titles) if t.endswith("?")]


def strip_headings(sections: list[Section], questions) -> list[Section]:
    out = []
    for s in sections:
        text = s.text
        for title, page in questions:
            if page == s.page:
                words = [re.escape(w) for w in title.split()]
                text = re.sub(r"(\d+(\.\d+)*\s+)?" + r"\s+".join(words), " ", text)
        out.append(Section(text, s.page, s.heading, s.start))
    return out


def main(path: Path):
    print(describe(), flush=True)
    embedder = Embedder()
    questions = questions_and_pages(path)
    sections = strip_headings(pdf.load(path).sections, questions)
    qvec = embedder.embed([q for q, _ in questions])
    window = embedder.max_tokens - 2
    print(f"{path.name}: {len(questions)} questions, {len(sections)} pages; model reads {window} tokens per chunk\n")
    print(f"{'chunk/overlap':>13s} {'chunks':>7s} {'hit@1':>6s} {'hit@5':>6s} {'MRR':>6s} {'unread':>7s} {'embed s':>8s}")
    for size, overlap in SIZES:
        chunks = Chunker(size, overlap, embedder.tokenize).chunk(sections)
        lengths = [len(embedder.tokenize(c.text)) for c in chunks]
        unread = sum(max(0, n - window) for n in lengths) / sum(lengths)
        t = time.perf_counter()
        cvec = embedder.embed([c.text for c in chunks])
        seconds = time.perf_counter() - t
        order = np.argsort(-(qvec @ cvec.T), axis=1)
        pages = np.array([c.page for c in chunks])
        hit1 = hit5 = rr = 0.0
        for (_, gold), ranked in zip(questions, order):
            ranked_pages = pages[ranked[:10]]
            hits = np.nonzero(ranked_pages == gold)[0]
            if hits.size:
                rr += 1 / (hits[0] + 1)
                hit1 += hits[0] == 0
                hit5 += hits[0] < 5
        n = len(questions)
        print(f"{size:>8d}/{overlap:<4d} {len(chunks):7d} {hit1 / n:6.3f} {hit5 / n:6.3f} {rr / n:6.3f} "
              f"{100 * unread:6.1f}% {seconds:8.1f}")
    print("\nunread: share of chunk tokens past the model's window, never embedded (invisible to search)")


if __name__ == "__main__":
    default = ROOT / ".cache/testdata/root/usr/share/R/doc/manual/R-FAQ.pdf"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
