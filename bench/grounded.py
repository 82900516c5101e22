"""Grounded answers, measured: the R FAQ dev set answered by the CPU default model through Hearth.

    .venv/bin/python bench/grounded.py [--questions N] [--set handwritten|verbatim|both]

The R FAQ (`make testdata`) is ingested into a temporary HEARTH_HOME and Hearth's own llama.cpp
server (Qwen2.5-Coder-1.5B) answers, through the same Answerer the app and `hearth ask` use:

- grounded: the share of dev questions whose answer cites a passage holding the gold answer (8
  consecutive words of it, as `hearth eval` counts a hit);
- refused: the share of out-of-scope questions (OUT_OF_SCOPE, nothing the FAQ covers) answered with
  "I found nothing" or "the documents don't say";
- first token: median seconds from the question to the first streamed token (retrieval included).

The support check's model stage is off here (HEARTH_VERIFY_CLAIMS=false): it runs after the answer
and does not change what is cited.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from machine import describe  # noqa: E402

from ingest.libraries import open_library  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from ingest.settings import load_settings  # noqa: E402
from rag import llm_server  # noqa: E402
from rag.answer import NOTHING_FOUND, Answerer  # noqa: E402
from rag.evaluate import _grams, is_hit, load_qa  # noqa: E402
from rag.support import _REFUSAL  # noqa: E402

MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
DEVSET = ROOT / ".cache/devset"
OUT_OF_SCOPE = [
    "What is the capital of Mongolia?", "How long should I boil an egg for a soft yolk?",
    "Who won the football world cup in 2010?", "How do I change a flat bicycle tyre?",
    "What is the boiling point of water on Mount Everest?", "How often should I water a cactus?",
    "What is the best way to learn to play the violin?", "How do I renew a passport?",
    "What year did the Berlin Wall fall?", "How many moons does Jupiter have?",
    "What temperature should a fridge be set to?", "How do I get red wine out of a carpet?",
]


def refused(answer) -> bool:
    return answer.answer == NOTHING_FOUND or bool(_REFUSAL.search(answer.answer)) or not answer.citations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=0, help="at most this many dev questions (0: all)")
    parser.add_argument("--set", default="handwritten", choices=("handwritten", "verbatim", "both"))
    args = parser.parse_args()
    print(describe())
    names = ["handwritten", "verbatim"] if args.set == "both" else [args.set]
    qa = [row for name in names for row in load_qa(DEVSET / f"rfaq-{name}.jsonl")]
    qa = qa[: args.questions] if args.questions else qa
    home = Path(tempfile.mkdtemp(prefix="hearth-grounded-"))
    settings = load_settings(home=home, llm_engine="llamacpp", verify_claims=False)
    lib = open_library(settings)
    Ingestor(lib).sync([MANUALS / "R-FAQ.pdf"])
    server = llm_server.start(settings)
    try:
        answerer = Answerer(lib, server)
        answerer.ask("What is R?").collect()  # warm: the server's prompt cache and the first load
        grounded, waits = 0, []
        for row in qa:
            answer = answerer.ask(row["question"]).collect()
            gold = _grams(row["answer"])
            cited = [answer.passages[c.n - 1] for c in answer.citations]
            grounded += any(is_hit(p.text, gold) for p in cited)
            if "first_token_ms" in answer.timings:
                waits.append(answer.timings["first_token_ms"] / 1000)
        outside = [answerer.ask(q).collect() for q in OUT_OF_SCOPE]
    finally:
        llm_server.stop(settings)
        lib.close()
    said = sum(refused(a) for a in outside)
    print(f"\nR FAQ ({', '.join(names)} questions), {server.model} on llama.cpp, top_k {settings.top_k}")
    print("| measure | figure |")
    print("| --- | ---: |")
    print(f"| answers citing a passage that holds the gold answer | {grounded}/{len(qa)} ({100 * grounded / len(qa):.0f}%) |")
    print(f"| out-of-scope questions answered 'the documents don't say' | {said}/{len(outside)} "
          f"({100 * said / len(outside):.0f}%) |")
    print(f"| first token, median over {len(waits)} answers | {statistics.median(waits):.2f} s |")


if __name__ == "__main__":
    main()
