"""Summaries, timed: real PDFs summarized by the CPU default model through Hearth's API.

    .venv/bin/python bench/summary.py [--runs N] [PDF ...]

Each PDF (default: the R FAQ and "R Data Import/Export" from `make testdata`) is ingested into a
temporary HEARTH_HOME and summarized with `Hearth.summarize`, the call behind `hearth summarize`
and the app's "Summarize this document", by Hearth's own llama.cpp server (Qwen2.5-Coder-1.5B).
Printed per document (medians over the runs): seconds to the first words of part 1 (the target is
10 s), to the end of the map step, to the whole summary; parts read; the summary's citations.
The server is started and warmed once before the runs, as the app's is while the page loads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from machine import describe  # noqa: E402

from ingest.settings import load_settings  # noqa: E402
from rag import llm_server  # noqa: E402
from rag.api import Hearth  # noqa: E402

MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
DEFAULT = [MANUALS / "R-FAQ.pdf", MANUALS / "R-data.pdf"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(describe())
    home = Path(tempfile.mkdtemp(prefix="hearth-summary-"))
    settings = load_settings(home=home, llm_engine="llamacpp", verify_claims=False)
    hearth = Hearth(settings)
    hearth.sync(args.pdfs)
    server = llm_server.start(settings)
    rows = []
    try:
        hearth.ask("What is R?", server=server).collect()  # warm, as the app's page load does
        for pdf in args.pdfs:
            first, mapped, whole, result = [], [], [], None
            for _ in range(args.runs):
                started = time.perf_counter()
                stream = hearth.summarize(str(pdf), server=server)
                text = "".join(stream)
                whole.append(time.perf_counter() - started)
                result = stream.result
                first.append(result.timings.get("first_token_ms", float("nan")) / 1000)
                mapped.append(result.timings.get("map_ms", float("nan")) / 1000)
            rows.append((pdf.name, statistics.median(first), statistics.median(mapped),
                         statistics.median(whole), result, text))
    finally:
        llm_server.stop(settings)
        hearth.close()
    print(f"\n{server.model} on llama.cpp, medians over {args.runs} runs")
    print("| document | first words of part 1 | map step done | whole summary | parts | citations |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for name, first, mapped, whole, result, _ in rows:
        print(f"| {name} | {first:.2f} s | {mapped:.1f} s | {whole:.1f} s | {result.query.split(': ', 1)[-1]} "
              f"| {len(result.citations)} |")
    for name, *_, result, text in rows:
        print(f"\n{name}: {text.strip()[:400]}")


if __name__ == "__main__":
    main()
