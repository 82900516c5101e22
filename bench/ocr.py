"""OCR, measured: pages of real text PDFs scanned into an image-only PDF, read the way ingestion reads
it (ingest/loaders/pdf.load: pdfium renders each page, ingest/loaders/ocr.read reads it), compared
with the PDFs' own text layers.

    .venv/bin/python bench/ocr.py [--pages 20] [--first N] [--pdf PATH ...] [--noise 12]
                                  [--engine rapidocr|tesseract] [--runtime auto|fp32|onnxruntime]

By default pages 11-30 of R's "An Introduction to R" and pages 31-50 of Octave's manual (`make
testdata`); `--pdf` (repeatable) names other PDFs, `--first` the 0-based first page of each. A page is
rendered at 150 dpi (ocr.DPI) in greyscale, given light noise (Gaussian, `--noise` grey levels, fixed
seed; 0: none) and saved by PIL into an image-only PDF (a JPEG per page, as scanners write them).
Both sides are NFKC-normalised with typographic quotes and dashes made ASCII (a scan cannot tell ’
from '). Printed, per PDF:
  CER: character edit distance over the reference's length, each run of whitespace one space (the
       figure this bench gave before issue 32: a lost word space is one error);
  CER without whitespace: the same with all whitespace removed (the glyphs alone: blind to spacing);
  WER: word edit distance over the reference's word count (words split at whitespace: two words run
       together are two errors);
  long words: share of the words read (letter runs) over 18 letters, the text layer's beside it;
  pages/s of OCR (page render and read; the engine is loaded before), the CPU seconds a page took
  (all threads: steadier than pages/s on a shared machine) and the process's peak memory.
`--engine tesseract` reads the same page images with Debian's tesseract (`apt-get install
tesseract-ocr`), for the comparison in docs/performance.md; Hearth itself does not use it.
"""

from __future__ import annotations

import argparse
import io
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from machine import describe  # noqa: E402

from ingest.loaders import ocr  # noqa: E402
from ingest.loaders import pdf as pdf_loader  # noqa: E402

PDF = ROOT / ".cache/testdata/root/usr/share/R/doc/manual/R-intro.pdf"
OCTAVE = ROOT / ".cache/testdata/root/usr/share/doc/octave/octave.pdf"
FIRST = {PDF: 10, OCTAVE: 30}  # the first pages of running text
ASCII = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "−": "-", "′": "'", "\ufffe": "-"})
LONG = 18  # letters: a word longer than this is almost always words run together
_LETTERS = re.compile(r"[^\W\d_]+")


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


def word_errors(reference: str, text: str) -> tuple[int, int]:
    """(word edit distance, reference words): each distinct word becomes one character."""
    codes: dict[str, str] = {}
    ref, got = ("".join(codes.setdefault(w, chr(0xF0000 + len(codes))) for w in t.split()) for t in (reference, text))
    return edit_distance(ref, got), len(ref)


def long_words(text: str) -> tuple[int, int]:
    words = _LETTERS.findall(text)
    return sum(len(w) > LONG for w in words), len(words)


def tesseract(image) -> str:
    data = io.BytesIO()
    image.save(data, format="PNG")
    return subprocess.run(["tesseract", "-", "-", "--dpi", str(ocr.DPI)], input=data.getvalue(),
                          capture_output=True, check=True).stdout.decode()


def scan(source: Path, pages: range, noise: float, out: Path) -> list[str]:
    """`pages` of `source` as an image-only PDF at `out` (150 dpi greyscale, noise); their text layers."""
    import pypdfium2
    from PIL import Image

    doc = pypdfium2.PdfDocument(str(source))
    images, references = [], []
    for index in pages:
        page = doc[index]
        references.append(page.get_textpage().get_text_range())
        grey = np.asarray(page.render(scale=ocr.DPI / 72).to_pil().convert("L"), dtype=np.float32)
        grey = grey + np.random.default_rng(index).normal(0, noise, grey.shape) if noise else grey
        images.append(Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L"))
    doc.close()
    images[0].save(out, save_all=True, append_images=images[1:], resolution=ocr.DPI)
    return references


def measure(source: Path, first: int, count: int, noise: float, engine: str) -> dict:
    import pypdfium2

    with pypdfium2.PdfDocument(str(source)) as doc:
        pages = range(first, min(first + count, len(doc)))
    seconds: list[float] = []
    cpu: list[float] = []
    timed = pdf_loader._ocr_text

    def ocr_text(path, cache, index):  # what pdf.load calls for a page without text: render and OCR
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            return timed(path, cache, index)
        finally:
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)

    with tempfile.TemporaryDirectory() as tmp:
        scanned = Path(tmp) / "scan.pdf"
        references = scan(source, pages, noise, scanned)
        pdf_loader._ocr_text = ocr_text
        try:
            loaded = pdf_loader.load(scanned)
        finally:
            pdf_loader._ocr_text = timed
    read = {n: "" for n in range(1, len(pages) + 1)}
    for section in loaded.sections:
        read[section.page] += "\n" + section.text
    rows = []
    for (number, text), reference, index, s in zip(sorted(read.items()), references, pages, seconds):
        ref, got = normal(reference), normal(text)
        ref_words = normal(reference.replace("\ufffe", "-\n"))  # the page shows "ses-" at a line end, "sion" next
        words_wrong, words = word_errors(ref_words, got)
        bare_ref, bare_got = ref.replace(" ", ""), got.replace(" ", "")
        rows.append(dict(page=index + 1, chars=len(ref), cer=edit_distance(ref, got),
                         bare=edit_distance(bare_ref, bare_got), bare_chars=len(bare_ref),
                         wer=words_wrong, words=words, long=long_words(got), ref_long=long_words(ref), seconds=s))
    return dict(name=source.name, rows=rows, seconds=seconds, cpu=cpu)


def total(rows: list[dict], key: str, of: str) -> float:
    return 100 * sum(r[key] for r in rows) / max(sum(r[of] for r in rows), 1)


def share(rows: list[dict], key: str) -> float:
    return 100 * sum(r[key][0] for r in rows) / max(sum(r[key][1] for r in rows), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, action="append", help="a text PDF to scan (repeatable; "
                        "default: R-intro.pdf and octave.pdf)")
    parser.add_argument("--pages", type=int, default=20, help="pages of each PDF")
    parser.add_argument("--first", type=int, help="0-based index of the first page (default: 10 for R-intro, "
                        "30 for Octave, 0 for others)")
    parser.add_argument("--noise", type=float, default=12, help="standard deviation of the noise, grey levels")
    parser.add_argument("--engine", default="rapidocr", choices=("rapidocr", "tesseract"))
    parser.add_argument("--runtime", default="auto", choices=("auto", "fp32", "onnxruntime"),
                        help="rapidocr's models run by OpenVINO where the reader's memory allows, in bf16 where "
                        "the CPU has it (auto, as ingestion does), OpenVINO in fp32 (as on a CPU without bf16), "
                        "or ONNX Runtime (the runtime before; for an A/B)")
    args = parser.parse_args()
    print(describe())
    if args.engine == "tesseract":
        ocr.read = tesseract  # pdf.load calls ocr.read: it now reads with tesseract
    else:
        if args.runtime == "onnxruntime":
            ocr.OPENVINO = False
        elif args.runtime == "fp32":
            ocr.OPENVINO_PRECISION = "fp32"
        loaded = ocr.engine()  # loaded once, as in the reader process (its start is not a page's time)
        print("runtime:", "OpenVINO " + ocr.OPENVINO_PRECISION if isinstance(loaded.text_rec.session, ocr._OpenVINO)
              else "ONNX Runtime")
    results = [measure(path, args.first if args.first is not None else FIRST.get(path, 0), args.pages,
                       args.noise, args.engine) for path in (args.pdf or [PDF, OCTAVE])]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nscanned at {ocr.DPI} dpi, greyscale, noise {args.noise:g}, image-only PDF read by pdf.load; "
          f"engine {args.engine}")
    print("| PDF | page | CER | CER without whitespace | WER | words > 18 letters | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        for r in result["rows"]:
            print(f"| {result['name']} | {r['page']} | {100 * r['cer'] / max(r['chars'], 1):.2f} % "
                  f"| {100 * r['bare'] / max(r['bare_chars'], 1):.2f} % | {100 * r['wer'] / max(r['words'], 1):.1f} % "
                  f"| {r['long'][0]} of {r['long'][1]} | {r['seconds']:.2f} |")
    print("\n| PDF, pages | CER | CER without whitespace | WER | words > 18 letters (text layer) "
          "| worst page WER | s/page, median | pages/s | CPU s/page |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        rows, seconds = result["rows"], result["seconds"]
        print(f"| {result['name']}, {rows[0]['page']}-{rows[-1]['page']} | {total(rows, 'cer', 'chars'):.2f} % "
              f"| {total(rows, 'bare', 'bare_chars'):.2f} % | **{total(rows, 'wer', 'words'):.1f} %** "
              f"| {share(rows, 'long'):.1f} % ({share(rows, 'ref_long'):.1f} %) "
              f"| {max(100 * r['wer'] / max(r['words'], 1) for r in rows):.1f} % "
              f"| {statistics.median(seconds):.2f} | {len(seconds) / sum(seconds):.2f} "
              f"| {sum(result['cpu']) / len(seconds):.2f} |")
    print(f"\npeak memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
