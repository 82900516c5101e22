"""Answer latency through Hearth for each engine: server start, retrieval, first token, tokens/s.

    .venv/bin/python bench/answer.py [--engines llamacpp,vllm] [--questions N]

Ingests two R manuals into a temporary HEARTH_HOME, starts each engine with `hearth llm`'s code,
asks the questions through Hearth (streaming), then restarts the server and sends the very same
prompts straight to it, so the overhead of Hearth's path shows as a ratio. Tokens are counted as streamed deltas
(one token each for both servers). Medians over the questions; the first, untimed, warms up.
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
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

from ingest.libraries import open_library  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from ingest.settings import load_settings  # noqa: E402
from rag import llm_server  # noqa: E402
from rag.answer import Answerer, build_messages  # noqa: E402

MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
QUESTIONS = [
    "How can I read Excel spreadsheets in R?",  # warm-up
    "How do I write a data frame to a CSV file?",
    "What is the difference between a list and a vector?",
    "How do I read a fixed-width format file?",
    "How can I connect R to a relational database?",
    "How do I define my own function?",
    "What does the attach function do?",
]


def first_token_ms(llm, messages) -> float:
    """First-token time of a prompt sent straight to the server (no retrieval, no Hearth)."""
    started = time.perf_counter()
    for chunk in llm.stream_chat(messages):
        if chunk.delta:
            return 1000 * (time.perf_counter() - started)
    return float("nan")


def bench_engine(engine: str, home: Path, questions: list[str]) -> dict:
    """Pass 1 asks through Hearth; pass 2 restarts the server and sends the same prompts, in the same
    order, straight to it. Both servers cache the KV state of earlier prompts' common prefixes, so
    only two passes over the same sequence on fresh servers compare like with like."""
    settings = load_settings(home=home, llm_engine=engine)
    llm_server.stop(settings)
    t = time.perf_counter()
    server = llm_server.start(settings)
    start_s = time.perf_counter() - t
    lib = open_library(settings)
    answerer = Answerer(lib, server)
    rows, prompts = [], []
    try:
        for i, q in enumerate(questions):
            stream = answerer.ask(q)
            deltas = sum(1 for _ in stream)
            a = stream.result
            prompts.append(build_messages(a.query, a.passages))
            if a.error:
                print(f"  ({engine}) {q}: {a.error}")
            if i == 0 or "first_token_ms" not in a.timings:
                continue  # the first question warms up
            decode_s = (a.timings["total_ms"] - a.timings["first_token_ms"]) / 1000
            rows.append({
                "i": i, "retrieve_ms": a.timings["retrieve_ms"], "first_token_ms": a.timings["first_token_ms"],
                "tokens": deltas, "tokens_per_s": (deltas - 1) / decode_s if decode_s > 0 else float("nan"),
                "prompt_chars": sum(len(m.content) for m in prompts[-1]), "cited": len(a.citations),
            })
        llm_server.stop(settings)
        server = llm_server.start(settings)
        client = Answerer(lib, server).llm()  # the restarted server
        direct = [first_token_ms(client, messages) for messages in prompts]
        for row in rows:
            row["direct_first_token_ms"] = direct[row.pop("i")]
    finally:
        llm_server.stop(settings)
        lib.close()
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]} if rows else {}
    med["cited"] = sum(1 for r in rows if r["cited"])  # answers with at least one valid citation
    return {"engine": engine, "model": server.model, "start_s": start_s, "n": len(rows), **med}


def main():
    print(describe(), flush=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="llamacpp,vllm")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS) - 1)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hearth-answer-bench-"))
    lib = open_library(load_settings(home=home))
    report = Ingestor(lib).sync([MANUALS / "R-data.pdf", MANUALS / "R-intro.pdf"])
    lib.close()
    print(f"corpus: R-data.pdf + R-intro.pdf, {report.chunks_added} chunks; top_k {lib.settings.top_k}")
    questions = QUESTIONS[: args.questions + 1]
    results = [bench_engine(e, home, questions) for e in args.engines.split(",")]
    print(f"\n{'engine':9s} {'model':36s} {'start s':>8s} {'retrieve ms':>12s} {'1st token ms':>13s} "
          f"{'direct ms':>10s} {'hearth/direct':>14s} {'tokens/s':>9s} {'tokens':>7s} {'cited':>6s}")
    for r in results:
        if not r["n"]:
            print(f"{r['engine']:9s} no successful answers")
            continue
        print(f"{r['engine']:9s} {r['model']:36s} {r['start_s']:8.1f} {r['retrieve_ms']:12.0f} {r['first_token_ms']:13.0f} "
              f"{r['direct_first_token_ms']:10.0f} {r['first_token_ms'] / r['direct_first_token_ms']:14.2f} "
              f"{r['tokens_per_s']:9.1f} {r['tokens']:7.0f} {r['cited']:>3d}/{r['n']}")
    print(f"medians over {results[0]['n']} questions; prompt ~{results[0].get('prompt_chars', 0):.0f} chars; "
          "cited = answers with at least one valid citation")


if __name__ == "__main__":
    main()
