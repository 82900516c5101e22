"""Re-sync and delete at size: a no-op sync of 1,000 unchanged files, and deleting a 1,000-page document.

    .venv/bin/python bench/resync.py [--files 1000] [--pages 1000]

Builds 1,000 small Markdown notes and a 1,000-page PDF (the first 1,000 pages of R's reference manual,
`refman.pdf` from `make testdata`), ingests both into a temporary HEARTH_HOME (that part is not
timed), then times, in this process: the no-op `Ingestor.sync` of the notes folder (median of 5), the
same through a `hearth ingest` process as a user runs it (whole process, median of 3), and
`Ingestor.remove` of the PDF and of two copies of it (its chunks from Chroma, its keyword rows and
texts from the manifest; median of the 3), with the store checked afterwards; then a sync after
--changed notes were each rewritten (updates: re-read, re-embedded, old passages deleted) and one after
as many were renamed (moves: records and keyword rows follow, nothing re-embedded), median of 3 each.
Issue 9's targets: re-sync <= 1 s, delete <= 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

from ingest.libraries import open_library  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from ingest.settings import load_settings  # noqa: E402

REFMAN = ROOT / ".cache/testdata/root/usr/share/R/doc/manual/refman.pdf"
WORDS = "river stone lantern orchard copper violin harbour meadow signal pepper winter ladder".split()


def notes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        body = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(60))
        (folder / f"note-{i:04d}.md").write_text(f"# Note {i}\n\n{body}.\n")
    return folder


def first_pages(source: Path, pages: int, target: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    reader, writer = PdfReader(source), PdfWriter()
    for page in reader.pages[:pages]:
        writer.add_page(page)
    with open(target, "wb") as fh:
        writer.write(fh)
    return target


def main():
    print(describe(), flush=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=100, help="notes rewritten, then renamed, per timed sync")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hearth-resync-bench-"))
    home = work / "home"
    folder = notes(work / "notes", args.files)
    pdf = first_pages(REFMAN, args.pages, work / f"refman-{args.pages}-pages.pdf")
    copies = [work / f"copy-{n}-of-{pdf.name}" for n in (1, 2)]  # stored as copies: three deletes to time
    for copy in copies:
        copy.write_bytes(pdf.read_bytes())
    lib = open_library(load_settings(home=home))
    t = time.perf_counter()
    report = Ingestor(lib).sync([folder, pdf, *copies])
    print(f"set-up: {args.files} notes + a {args.pages}-page PDF and 2 copies of it ingested, {report.chunks_added} "
          f"chunks, {time.perf_counter() - t:.0f} s (not timed below)")

    resync = []
    for _ in range(5):
        t = time.perf_counter()
        again = Ingestor(lib).sync([folder])
        resync.append(time.perf_counter() - t)
        assert again.unchanged == args.files and not again.results, again.results[:3]
    env = {**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT)}
    process = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(folder), "--json"], env=env, check=True,
                       capture_output=True)
        process.append(time.perf_counter() - t)

    deletes = []
    for doc in (*copies, pdf):
        record = lib.files.records()[str(doc)]
        before = lib.collection.count()
        t = time.perf_counter()
        removed = Ingestor(lib).remove([doc])
        deletes.append(time.perf_counter() - t)
        assert [r.chunks for r in removed] == [record.chunks]
        assert lib.collection.count() == before - record.chunks
        assert not lib.collection.get(where={"doc_id": record.doc_id}, include=[])["ids"]
        assert not [row for row in lib.keywords.rows() if row[0] == record.doc_id]
        assert not lib.chunk_texts.get([(record.doc_id, 0)])
    delete_s = statistics.median(deletes)

    updates, moves = [], []
    for round_ in range(3):
        chosen = sorted(folder.iterdir())[round_ * args.changed: (round_ + 1) * args.changed]
        for path in chosen:
            path.write_text(path.read_text() + f"\nRevised in round {round_}: {' '.join(WORDS[round_:round_ + 5])}.\n")
        t = time.perf_counter()
        report = Ingestor(lib).sync([folder])
        updates.append(time.perf_counter() - t)
        assert len(report.results) == args.changed, len(report.results)
        for path in chosen:
            path.rename(path.with_name(f"moved-{round_}-{path.name}"))
        t = time.perf_counter()
        report = Ingestor(lib).sync([folder])
        moves.append(time.perf_counter() - t)
        assert len(lib.files.records()) == args.files  # the notes (the PDFs were deleted above), none twice

    print(f"\nno-op re-sync of {args.files} unchanged files, in process: median {statistics.median(resync):.3f} s "
          f"(runs {', '.join(f'{s:.3f}' for s in resync)}); target 1 s: {statistics.median(resync) / 1.0:.2f} of it")
    print(f"the same through `hearth ingest` (whole process: imports, store open): median {statistics.median(process):.2f} s")
    print(f"delete the {args.pages}-page document ({record.chunks} chunks): median {delete_s:.3f} s "
          f"(runs {', '.join(f'{s:.3f}' for s in deletes)}); target 0.5 s: {delete_s / 0.5:.2f} of it")
    print(f"sync after {args.changed} notes rewritten: median {statistics.median(updates):.2f} s "
          f"(runs {', '.join(f'{s:.2f}' for s in updates)})")
    print(f"sync after {args.changed} notes renamed: median {statistics.median(moves):.2f} s "
          f"(runs {', '.join(f'{s:.2f}' for s in moves)})")
    lib.close()


if __name__ == "__main__":
    main()
