"""PDF text extractors side by side: pdfium (pypdfium2) and pypdf, page by page, same PDFs.

    .venv/bin/python bench/pdf_text.py [PDF ...]     (default: the five R manuals bench/ingest.py reads)

Prints each extractor's milliseconds a page (median of 3 passes over all pages) and the ratio, then
how far they agree: per page, the share of words both find (word multisets, intersection over the
larger), median and 10th percentile; and the page where they differ most, with words only one found.
Hearth reads pdfium first and pypdf where pdfium fails or glues words (ingest/loaders/pdf.py).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402

from bench.ingest import DEFAULT, MANUALS  # noqa: E402
from ingest.loaders.pdf import _pdfium_text  # noqa: E402


def pages(path: Path) -> tuple[list[str], list[str], float, float]:
    """(pdfium texts, pypdf texts, pdfium seconds, pypdf seconds) for every page, median of 3 passes."""
    import pypdf

    n = len(pypdf.PdfReader(str(path)).pages)
    runs = {"pdfium": [], "pypdf": []}
    texts = {}
    for _ in range(3):
        started, cache = time.perf_counter(), {}
        texts["pdfium"] = [_pdfium_text(path, cache, i) for i in range(n)]
        cache["doc"].close()
        runs["pdfium"].append(time.perf_counter() - started)
        reader = pypdf.PdfReader(str(path))  # a fresh reader each pass: pypdf caches parsed content streams
        started = time.perf_counter()
        texts["pypdf"] = [page.extract_text() or "" for page in reader.pages]
        runs["pypdf"].append(time.perf_counter() - started)
    return texts["pdfium"], texts["pypdf"], statistics.median(runs["pdfium"]), statistics.median(runs["pypdf"])


def agreement(a: str, b: str) -> float:
    wa, wb = Counter(a.split()), Counter(b.split())
    larger = max(sum(wa.values()), sum(wb.values()))
    return sum((wa & wb).values()) / larger if larger else 1.0


def main(paths: list[str]) -> None:
    print(describe())
    n_pages, seconds, scores, worst = 0, {"pdfium": 0.0, "pypdf": 0.0}, [], (2.0, "", "", "")
    for name in paths:
        path = Path(name)
        ours, theirs, t_pdfium, t_pypdf = pages(path)
        n_pages += len(ours)
        seconds["pdfium"] += t_pdfium
        seconds["pypdf"] += t_pypdf
        for i, (a, b) in enumerate(zip(ours, theirs)):
            score = agreement(a, b)
            scores.append(score)
            if score < worst[0] and len(b.split()) > 50:
                worst = (score, f"{path.name} p. {i + 1}", a, b)
    ms = {k: 1000 * v / n_pages for k, v in seconds.items()}
    print(f"{len(paths)} PDFs, {n_pages} pages")
    print("| extractor | ms a page | × pdfium's time |")
    print("| --- | ---: | ---: |")
    for k in ("pdfium", "pypdf"):
        print(f"| {k} | {ms[k]:.1f} | {ms[k] / ms['pdfium']:.1f}× |")
    deciles = statistics.quantiles(scores, n=10)
    print(f"words both find, per page: median {statistics.median(scores):.3f}, 10th percentile {deciles[0]:.3f}")
    score, where, a, b = worst
    only_pdfium = list((Counter(a.split()) - Counter(b.split())).elements())[:12]
    only_pypdf = list((Counter(b.split()) - Counter(a.split())).elements())[:12]
    print(f"least agreement: {where} ({score:.3f}); only pdfium: {only_pdfium}; only pypdf: {only_pypdf}")


if __name__ == "__main__":
    main(sys.argv[1:] or [str(MANUALS / name) for name in DEFAULT])
