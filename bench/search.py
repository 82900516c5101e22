"""Hybrid retrieval latency at 100k chunks: query embedding + dense + keyword + fusion, no model server.

    .venv/bin/python bench/search.py [--chunks 100000] [--queries 200]

The corpus is built by this script, once, and kept in .cache/bench/search-<chunks>/ (a second run
only measures): sentences of the R manuals (`make testdata`) are drawn at random (seeded) into
paragraphs of 3-9 sentences, written as text files of ~100 paragraphs, and ingested by Hearth's own
pipeline until the collection holds at least --chunks chunks. Every chunk is real R-manual prose in
an order no manual has, so texts are distinct and the vocabulary and vector spread are realistic.

Queries: the R FAQ dev set's questions (verbatim headings and users' own words), repeated to
--queries. Each is timed through rag.retrieval.search (what `hearth search` and the app call), after
3 warm-up queries; the parts are timed too: embedding the query, Chroma's nearest neighbours,
the keyword query (tantivy; it runs in a thread beside the other two), and fetching the hits' texts
and vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)
MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
SOURCES = ["refman.pdf", "R-exts.pdf", "R-intro.pdf", "R-data.pdf", "R-admin.pdf", "R-lang.pdf", "R-ints.pdf",
           "R-FAQ.pdf"]
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def sentence_pool(cache: Path) -> list[str]:
    if cache.is_file():
        return json.loads(cache.read_text())
    from ingest.loaders import load

    pool = []
    for name in SOURCES:
        for section in load(MANUALS / name).sections:
            pool += [" ".join(s.split()) for s in _SENTENCE.split(section.text) if len(s.split()) >= 4]
    cache.write_text(json.dumps(pool))
    return pool


def build(home: Path, chunks: int) -> None:
    from ingest.libraries import open_library
    from ingest.pipeline import Ingestor
    from ingest.settings import load_settings

    lib = open_library(load_settings(home=home))
    have = lib.collection.count()
    if have >= chunks:
        return
    pool = sentence_pool(home.parent / "sentences.json")
    rng = random.Random(20261125)
    files = home.parent / "files"
    files.mkdir(exist_ok=True)
    print(f"building: {len(pool)} sentences; ingesting until {chunks} chunks (once; minutes)", flush=True)
    started, n = time.perf_counter(), len(list(files.glob("*.txt")))
    while have < chunks:
        batch = []
        for _ in range(10):  # ten files per sync: progress shows, and each sync is a real incremental one
            paragraphs = [" ".join(rng.choice(pool) for _ in range(rng.randint(3, 9))) for _ in range(100)]
            path = files / f"notes-{n:05d}.txt"
            path.write_text("\n\n".join(paragraphs))
            batch.append(path)
            n += 1
        Ingestor(lib).sync([str(files)])
        have = lib.collection.count()
        rate = have / (time.perf_counter() - started)
        print(f"  {n} files, {have} chunks, {rate:.0f} chunks/s", flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(home: Path, n_queries: int) -> None:
    from ingest.libraries import open_library
    from ingest.settings import load_settings
    from rag import retrieval as S
    from rag.evaluate import load_qa

    lib = open_library(load_settings(home=home))
    questions = [row["question"] for name in ("verbatim", "handwritten")
                 for row in load_qa(ROOT / f".cache/devset/rfaq-{name}.jsonl")]
    queries = (questions * (n_queries // len(questions) + 1))[:n_queries]
    for q in queries[:3]:
        S.search(lib, q, 5)
    parts: dict[str, list[float]] = {"embed query": [], "dense (Chroma)": [], "keyword (tantivy)": [], "hits": []}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[name][-1] += time.perf_counter() - t
        return wrapper

    originals = (lib.embedder.embed, S._dense, S._keyword, S._hits)
    lib.embedder.embed = timed("embed query", originals[0])
    S._dense, S._keyword, S._hits = (timed("dense (Chroma)", originals[1]), timed("keyword (tantivy)", originals[2]),
                                     timed("hits", originals[3]))
    total = []
    for q in queries:
        for p in parts.values():
            p.append(0.0)
        t = time.perf_counter()
        S.search(lib, q, 5, mode="hybrid")
        total.append(time.perf_counter() - t)
    lib.embedder.embed, S._dense, S._keyword, S._hits = originals
    print(f"\n{lib.collection.count()} chunks in {len(lib.documents())} files; {len(queries)} hybrid queries "
          f"(k=5, {S.CANDIDATES} candidates per retriever), {os.cpu_count()} CPUs, embeddings "
          f"{lib.embedder.precision}; the keyword query runs beside embedding + dense, so parts overlap")
    print("| part | p50 ms | p95 ms |")
    print("| --- | ---: | ---: |")
    rows = [("**hybrid search, whole**", total), *parts.items()]
    for name, values in rows:
        print(f"| {name} | {1000 * statistics.median(values):.1f} | {1000 * percentile(values, 95):.1f} |")
    print(f"\np95 {1000 * percentile(total, 95):.1f} ms: {percentile(total, 95) / 0.060:.2f} of the 60 ms target")


def main() -> None:
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    home = ROOT / f".cache/bench/search-{args.chunks}/home"
    home.mkdir(parents=True, exist_ok=True)
    build(home, args.chunks)
    measure(home, args.queries)


if __name__ == "__main__":
    main()
