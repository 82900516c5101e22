"""A hypothetical answer (HyDE) as a second dense query: does it put the key facts higher, and at what cost?

    .venv/bin/python bench/hyde.py [--weight 1.0] [--split dev|held|all]

For each question of the English answer sets (bench/answers-{r,octave,debian}.jsonl), Hearth's own
llama.cpp server (Qwen2.5-Coder-1.5B) writes a short passage that would answer it (cached in
.cache/hyde/); the passage is embedded with the collection's model and its dense search is fused
(RRF, `--weight`) with today's hybrid ranking. Printed per split: every key fact in the top 1 / 3 / 5,
hybrid alone against fused, and what writing the passage costs (seconds, median): the time it adds
before the answer's prompt can start.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/ingest.py must not hide the package

from machine import describe  # noqa: E402

CACHE = ROOT / ".cache/hyde"
DEPTHS = (1, 3, 5)
PROMPT = ("Write a short passage, as from a manual, that answers this question. Two or three sentences, "
          "no preamble.\n\nQuestion: {question}")


def write_passage(answerer, question: str) -> tuple[str, float]:
    """The hypothetical passage and the seconds it took (0 when cached)."""
    key = hashlib.sha1(question.encode()).hexdigest()[:16]
    path = CACHE / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())["text"], 0.0
    t = time.perf_counter()
    reply = answerer._client().chat.completions.create(
        model=answerer.server.model or "local", messages=[{"role": "user", "content": PROMPT.format(question=question)}],
        max_tokens=80, temperature=0.0)
    took = time.perf_counter() - t
    text = reply.choices[0].message.content or ""
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"question": question, "text": text, "seconds": took}))
    return text, took


def main(split: str, weight: float) -> None:
    from answers import facts_met, libraries, load
    from rag import llm_server
    from rag.answer import Answerer
    from rag.retrieval import CANDIDATES, fuse, search

    print(describe())
    names = ["r", "octave", "debian"]
    settings, libs = libraries(names)
    rows = [r for name in names for r in load(name) if split in ("all", r["split"])]
    server = llm_server.start(settings)
    answerer = Answerer(next(iter(libs.values())), server)
    found = {}
    costs = []
    try:
        for row in rows:
            lib = libs[row["set"]]
            hits = search(lib, row["question"], CANDIDATES)
            text, took = write_passage(answerer, row["question"])
            if took:
                costs.append(took)
            dense = [cid for cid, _ in lib.nearest(lib.embedder.embed_query(text), CANDIDATES)]
            order = fuse([h.chunk_id for h in hits], dense, weights=[1.0, weight])
            texts = lib.texts(order[: max(DEPTHS)])
            arms = {"hybrid": [h.text for h in hits], "fused": [texts.get(cid, "") for cid in order]}
            for arm, ranked in arms.items():
                got = [all(facts_met(" ".join(ranked[:d]), row["facts"])) for d in DEPTHS]
                found.setdefault((row["split"], arm), []).append(got)
    finally:
        llm_server.stop(settings)
    print(f"\nEvery key fact in the top {' / '.join(map(str, DEPTHS))} (HyDE weight {weight})")
    for (part, arm), got in sorted(found.items()):
        shares = " / ".join(f"{100 * sum(g[i] for g in got) / len(got):.0f}" for i in range(len(DEPTHS)))
        print(f"  {part:<5} {arm:<7} n={len(got):<3} {shares} %")
    if costs:
        print(f"writing the passage: {statistics.median(costs):.2f} s median of {len(costs)} (before any answer)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "held", "all"), default="all")
    parser.add_argument("--weight", type=float, default=1.0)
    args = parser.parse_args()
    main(args.split, args.weight)
