"""Several users at once: 8 concurrent `hearth ask` clients against one model server, per engine.

    .venv/bin/python bench/many_users.py [--engines vllm,llamacpp] [--clients 8]

Ingests two R manuals into a temporary HEARTH_HOME, starts each engine with `hearth llm`'s code, and
asks the same CLIENTS questions twice: one after another (1 client), then all at once (CLIENTS
`hearth ask --json` processes started together, each its own Python process as users' terminals or
app sessions would be). Latency is each answer's own total (question in, last token out), from the
answer's timings, so a client's start-up (imports, loading the embedding model) is not counted
against the server; throughput is answers (and words of answer) per minute of the server's time: one at a time, the sum
of the answers' times; all at once, the span from the first question asked to the last answer. vLLM batches concurrent requests; llama.cpp's server (llama-cpp-python)
answers one at a time, so its clients queue.
"""

from __future__ import annotations

import argparse
import json
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
from rag import llm_server  # noqa: E402
from answer import QUESTIONS as ANSWER_QUESTIONS  # noqa: E402  (bench/answer.py)

MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
# bench/answer.py's questions (its warm-up one moved to the end), and three more: 10 in all.
QUESTIONS = ANSWER_QUESTIONS[1:] + ANSWER_QUESTIONS[:1] + [
    "How do I make a scatter plot?",
    "What is a factor?",
    "How do I install a package?",
]


def ask(home: Path, question: str) -> subprocess.Popen:
    env = {**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "rag.cli", "ask", question, "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=3600)
    ended = time.time()
    if not out.strip():
        raise RuntimeError(f"hearth ask failed: {err[-800:]}")
    answer = json.loads(out)
    if answer["error"]:
        print(f"  ! {answer['question']}: {answer['error']}")
    t = answer["timings"]
    return {"asked": ended - t["total_ms"] / 1000, "ended": ended, "total_s": t["total_ms"] / 1000,
            "first_token_s": t.get("first_token_ms", float("nan")) / 1000, "ok": bool(answer["answer"].strip()),
            "words": len(answer["answer"].split())}


def run(home: Path, questions: list[str], together: bool) -> list[dict]:
    if together:
        procs = [ask(home, q) for q in questions]
        return [finish(p) for p in procs]
    return [finish(ask(home, q)) for q in questions]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


def summary(rows: list[dict], together: bool) -> dict:
    """One at a time, the server is busy for the sum of the answers' times (a client's start-up
    between two questions is not the server's); all at once, from the first question to the last answer."""
    totals = [r["total_s"] for r in rows]
    span = max(r["ended"] for r in rows) - min(r["asked"] for r in rows) if together else sum(totals)
    return {"answers": sum(r["ok"] for r in rows), "span_s": span, "per_min": 60 * len(rows) / span,
            "words_per_min": 60 * sum(r["words"] for r in rows) / span,
            "p50": statistics.median(totals), "p95": percentile(totals, 95),
            "ttft_p50": statistics.median(r["first_token_s"] for r in rows),
            "words": statistics.median(r["words"] for r in rows)}


def main():
    print(describe(), flush=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="vllm,llamacpp")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hearth-concurrent-bench-"))
    lib = open_library(load_settings(home=home))
    report = Ingestor(lib).sync([MANUALS / "R-data.pdf", MANUALS / "R-intro.pdf"])
    lib.close()
    questions = (QUESTIONS * 4)[: args.clients]
    print(f"corpus: R-data.pdf + R-intro.pdf, {report.chunks_added} chunks; {args.clients} clients; "
          f"{os.cpu_count()} CPU cores")
    table = []
    for engine in args.engines.split(","):
        settings = load_settings(home=home, llm_engine=engine)
        llm_server.stop(settings)
        server = llm_server.start(settings)
        try:
            run(home, QUESTIONS[-1:], together=False)  # warm-up, untimed
            alone = summary(run(home, questions, together=False), together=False)
            together = summary(run(home, questions, together=True), together=True)
        finally:
            llm_server.stop(settings)
        table.append((engine, server.model, alone, together))
        print(f"{engine}: one at a time {alone}\n{engine}: all at once {together}", flush=True)

    print(f"\n{'engine':9s} {'model':36s} {'clients':>7s} {'answers/min':>11s} {'words/min':>9s} {'p50 s':>7s} "
          f"{'p95 s':>7s} {'1st token p50 s':>15s} {'words':>6s} {'ok':>5s}")
    for engine, model, alone, together in table:
        for label, s in (("1", alone), (str(args.clients), together)):
            print(f"{engine:9s} {model:36s} {label:>7s} {s['per_min']:11.2f} {s['words_per_min']:9.0f} {s['p50']:7.1f} "
                  f"{s['p95']:7.1f} {s['ttft_p50']:15.1f} {s['words']:6.0f} {s['answers']:>2d}/{args.clients}")
        print(f"{engine:9s} {args.clients} clients / 1 client: answers/min {together['per_min'] / alone['per_min']:.2f}x, "
              f"words/min {together['words_per_min'] / alone['words_per_min']:.2f}x, p50 latency {together['p50'] / alone['p50']:.2f}x")


if __name__ == "__main__":
    main()
