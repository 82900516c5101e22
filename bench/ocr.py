"""OCR, measured: pages of a real text PDF rendered as images, read by Hearth's OCR, compared with
the PDF's own text layer.

    .venv/bin/python bench/ocr.py [--pages 20] [--first 10] [--pdf PATH] [--engine rapidocr|tesseract]

Pages `first`..`first+pages-1` of the R manual "An Introduction to R" (`make testdata`) are
rendered at 150 dpi (ingest/loaders/ocr.DPI, as scans are) and read by ingest/loaders/ocr.read,
the code ingestion runs. Printed: the character error rate (edit distance over the reference's
length, both sides NFKC-normalised, typographic quotes and dashes made ASCII, whitespace collapsed:
a scan cannot tell ’ from '), pages/s and the process's peak memory. `--engine tesseract` reads the
same images with Debian's tesseract (`apt-get install tesseract-ocr`), for the comparison in the
README; Hearth itself does not use it.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from machine import describe  # noqa: E402

from ingest.loaders import ocr  # noqa: E402

PDF = ROOT / ".cache/testdata/root/usr/share/R/doc/manual/R-intro.pdf"
ASCII = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "−": "-", "′": "'", "\ufffe": "-"})


def normal(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).translate(ASCII).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row at a time in numpy (insertions by a running minimum)."""
    if not a or not b:
        return max(len(a), len(b))
    codes = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, ch in enumerate(a, 1):
        cost = (codes != ord(ch)).astype(np.int64)
        best = np.empty_like(row)
        best[0] = i
        best[1:] = np.minimum(row[1:] + 1, row[:-1] + cost)
        row = np.minimum.accumulate(best - steps) + steps
    return int(row[-1])


def tesseract(image) -> str:
    data = io.BytesIO()
    image.save(data, format="PNG")
    return subprocess.run(["tesseract", "-", "-", "--dpi", str(ocr.DPI)], input=data.getvalue(),
                          capture_output=True, check=True).stdout.decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, default=PDF)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--first", type=int, default=10, help="0-based index of the first page")
    parser.add_argument("--engine", default="rapidocr", choices=("rapidocr", "tesseract"))
    args = parser.parse_args()
    print(describe())
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(args.pdf))
    read = tesseract if args.engine == "tesseract" else ocr.read
    if args.engine == "rapidocr":
        ocr.engine()  # loaded once, as in the reader process (its start is not a page's time)
    errors = chars = 0
    seconds, rows = [], []
    for index in range(args.first, min(args.first + args.pages, len(doc))):
        page = doc[index]
        reference = normal(page.get_textpage().get_text_range())
        image = page.render(scale=ocr.DPI / 72).to_pil().convert("L")  # a greyscale scan
        started = time.perf_counter()
        text = normal(read(image))
        seconds.append(time.perf_counter() - started)
        wrong = edit_distance(reference, text)
        errors, chars = errors + wrong, chars + len(reference)
        rows.append((index + 1, len(reference), wrong / max(len(reference), 1), seconds[-1]))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{args.pdf.name}, {len(rows)} pages at {ocr.DPI} dpi, engine {args.engine}")
    print("| page | characters | CER | seconds |")
    print("| ---: | ---: | ---: | ---: |")
    for number, n, rate, s in rows:
        print(f"| {number} | {n} | {100 * rate:.2f} % | {s:.2f} |")
    print(f"\n| measure | {args.engine} |")
    print("| --- | ---: |")
    print(f"| character error rate, all pages | **{100 * errors / chars:.2f} %** |")
    print(f"| worst page | {100 * max(r[2] for r in rows):.2f} % |")
    print(f"| seconds per page, median | {statistics.median(seconds):.2f} |")
    print(f"| pages/s | {len(seconds) / sum(seconds):.2f} |")
    print(f"| peak memory of this process | {peak_mb:.0f} MB |")


if __name__ == "__main__":
    main()
