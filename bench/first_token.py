"""First-token wait against the context sent, and what the cut costs in answers kept, per budget.

    .venv/bin/python bench/first_token.py [--budgets 3220,800,600,450,300] [--questions 6]

The R FAQ (`make testdata`) is ingested into a temporary HEARTH_HOME. For each passage budget
(HEARTH_CONTEXT_TOKENS; the first is what fits Qwen's 4,096-token context, Hearth's budget before):

- **gold in context**: over the whole dev set (`make eval`'s 109 questions), the share whose gold
  answer (8 consecutive words of it) is in a passage actually sent after hybrid retrieval, the
  relevance threshold and context assembly; and the median prompt size in the model's tokens;
- **first token**: the managed llama.cpp server (Qwen2.5-Coder-1.5B) answers the first N hand-written
  questions through Hearth's Answerer; median seconds from the question to the first streamed token
  (retrieval included), and how many answers cite only passages they were given. Each budget's
  prompts differ from the others' after the fixed system prompt, which the server keeps cached.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

from ingest.library import Library  # noqa: E402
from ingest.libraries import open_library  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from ingest.settings import load_settings  # noqa: E402
from rag import llm_server  # noqa: E402
from rag.answer import Answerer, cited_numbers  # noqa: E402
from rag.retrieval import assemble, budget_for  # noqa: E402
from rag.evaluate import _grams, is_hit, load_qa  # noqa: E402
from rag.retrieval import search  # noqa: E402

MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
DEVSET = ROOT / ".cache/devset"
ANSWER_TOKENS = 120  # enough for the cited sentences; the wait measured is the first token's


def gold_in_context(lib: Library, qa: list[dict], budget: int) -> tuple[float, float]:
    kept, sizes = 0, []
    for row in qa:
        hits = [h for h in search(lib, row["question"], lib.settings.top_k) if h.score >= lib.settings.min_score]
        passages = assemble(lib, hits, budget)
        gold = _grams(row["answer"])
        kept += any(is_hit(p.text, gold) for p in passages)
        sizes.append(sum(len(lib.embedder.tokenize(p.text)) for p in passages))
    return kept / len(qa), statistics.median(sizes)


def main() -> None:
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="")
    parser.add_argument("--questions", type=int, default=6)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hearth-first-token-"))
    settings = load_settings(home=home, llm_engine="llamacpp")
    lib = open_library(settings)
    Ingestor(lib).sync([MANUALS / "R-FAQ.pdf"])
    full = budget_for(lib)  # no server given: what fits the context
    budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else [full, 800, 600, 450, 300]
    qa = load_qa(DEVSET / "rfaq-verbatim.jsonl") + load_qa(DEVSET / "rfaq-handwritten.jsonl")
    asked = load_qa(DEVSET / "rfaq-handwritten.jsonl")[: args.questions + 1]  # the first warms up
    rows = {b: dict(zip(("gold", "tokens"), gold_in_context(lib, qa, b))) for b in budgets}

    llm_server.stop(settings)
    server = llm_server.start(settings)
    try:
        for b in budgets:
            answerer = Answerer(open_library(load_settings(home=home, llm_engine="llamacpp", context_tokens=b,
                                                      answer_max_tokens=ANSWER_TOKENS)), server)
            waits, citing = [], 0
            for i, row in enumerate(asked):
                stream = answerer.ask(row["question"])
                text = "".join(stream)
                if i == 0:
                    continue
                waits.append(stream.result.timings.get("first_token_ms", float("nan")) / 1000)
                numbers = cited_numbers(text)
                citing += bool(numbers) and all(1 <= n <= len(stream.passages) for n in numbers)
            rows[b].update(first=statistics.median(waits), citing=citing, n=len(waits))
    finally:
        llm_server.stop(settings)
    print(f"\nR FAQ: {lib.collection.count()} chunks; top_k {settings.top_k}; {len(qa)} dev questions; "
          f"first token over {args.questions} hand-written questions, {server.model} on llama.cpp")
    print("| passage budget (tokens) | passages sent, median tokens | gold answer in context | first token, median | answers citing |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for b, r in rows.items():
        print(f"| {b}{' (all that fits)' if b == full else ''} | {r['tokens']:.0f} | {100 * r['gold']:.1f}% | "
              f"{r['first']:.2f} s | {r['citing']}/{r['n']} |")


if __name__ == "__main__":
    main()
