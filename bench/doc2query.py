"""Questions each passage answers (doc2query), probed before an enrich step is built: what writing
them costs on this machine, and whether matching a user's question against them puts the passage
holding the answer first more often.

    .venv/bin/python bench/doc2query.py --split dev --every 2 --depth 5      # the probe
    .venv/bin/python bench/doc2query.py --split held --depth 5               # the held-out split, after

For each question of the sets (every Nth), the hybrid search's top `depth` passages each get
QUESTIONS questions written by Hearth's llama.cpp model (Qwen2.5-Coder-1.5B), cached in
.cache/doc2query/<set>.json by chunk id so a rerun or the other split reuses them. The top `depth`
are then ranked: as the search ranks them; by the best cosine between the user's question and a
passage's written questions (MiniLM, as the collection); by the cosine to the passage embedded with
its questions appended (doc2query proper); and each fused with the search's order by reciprocal rank
(rag/retrieval.fuse, the generated side at weight W). Printed: every key fact in the first 1 and 3
(bench/answer_set.py's facts), per split, and seconds per passage written. It re-ranks within the
search's top `depth` only, so it measures ranking, not recall beyond them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from answer_set import facts_met, load  # noqa: E402
from answers import libraries  # noqa: E402
from machine import describe  # noqa: E402

CACHE = ROOT / ".cache/doc2query"
QUESTIONS = 3
PROMPT = ("Here is a passage from a document:\n\n{passage}\n\nWrite {n} short questions that a user of this "
          "document might ask in their own words and that this passage answers. One question a line, "
          "nothing else.")


def write_questions(client, model: str, passage: str) -> list[str]:
    reply = client.chat.completions.create(
        model=model, temperature=0.0, max_tokens=90,
        messages=[{"role": "user", "content": PROMPT.format(passage=passage[:1500], n=QUESTIONS)}])
    lines = [line.strip(" -*0123456789.)\t") for line in (reply.choices[0].message.content or "").splitlines()]
    return [line for line in lines if len(line) > 8][:QUESTIONS]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", choices=("r", "octave", "debian"))
    parser.add_argument("--split", choices=("dev", "held"), default="dev")
    parser.add_argument("--every", type=int, default=1, help="every Nth question of the split")
    parser.add_argument("--depth", type=int, default=5, help="passages of the search re-ranked")
    parser.add_argument("--weight", type=float, action="append", help="the generated side's fusion weight(s)")
    args = parser.parse_args()
    print(describe())
    import numpy as np
    from openai import OpenAI

    from rag import llm_server
    from rag.retrieval import fuse, search

    names = args.set or ["r", "octave", "debian"]
    rows = [r for name in names for r in load(name) if r["split"] == args.split][:: args.every]
    settings, libs = libraries(names)
    server = llm_server.start(settings)
    client = OpenAI(base_url=server.url, api_key="not-needed", timeout=120, max_retries=0)
    CACHE.mkdir(parents=True, exist_ok=True)
    written_s: list[float] = []
    rankings = []
    try:
        for i, row in enumerate(rows, 1):
            lib = libs[row["set"]]
            path = CACHE / f"{row['set']}.json"
            cache = json.loads(path.read_text()) if path.exists() else {}
            hits = search(lib, row["question"], args.depth)
            for h in hits:
                if h.chunk_id not in cache:
                    t = time.perf_counter()
                    cache[h.chunk_id] = write_questions(client, server.model or "local", h.text)
                    written_s.append(time.perf_counter() - t)
            path.write_text(json.dumps(cache, ensure_ascii=False, indent=0))
            query = lib.embedder.embed_query(row["question"])
            best, expanded = {}, {}
            for h in hits:
                asked = cache[h.chunk_id] or [h.text[:200]]
                best[h.chunk_id] = float(np.max(lib.embedder.embed(asked) @ query))
                # doc2query proper: the passage embedded with its questions appended (MiniLM reads 256 tokens)
                expanded[h.chunk_id] = float(lib.embedder.embed([" ".join(cache[h.chunk_id]) + "\n" + h.text])[0] @ query)
            hybrid = [h.chunk_id for h in hits]
            generated = sorted(hybrid, key=lambda cid: -best[cid])
            texts = {h.chunk_id: h.text for h in hits}
            rankings.append((row, texts, hybrid, generated, sorted(hybrid, key=lambda cid: -expanded[cid])))
            print(f"[{i}/{len(rows)}] {row['id']} {len(written_s)} passages written, "
                  f"{statistics.median(written_s) if written_s else 0:.1f} s each (median); e.g. "
                  f"{(cache[hybrid[0]] or [''])[0][:70]!r}", flush=True)
    finally:
        llm_server.stop(settings)
        for lib in libs.values():
            lib.close()

    def found(order, texts, facts, n):
        return all(facts_met(" ".join(texts[c] for c in order[:n]), facts))

    print(f"\ndoc2query, {args.split} ({len(rankings)} questions, top {args.depth} re-ranked): every key fact in "
          "the first 1 / 3")
    arms = {"hybrid (today)": lambda h, g, e: h, "written questions alone": lambda h, g, e: g,
            "passage embedded with its questions appended, alone": lambda h, g, e: e}
    for w in args.weight or [0.5, 1.0, 2.0]:
        arms[f"fused, written questions at weight {w:g}"] = lambda h, g, e, w=w: fuse(h, g, weights=[1.0, w])
        arms[f"fused, passage with its questions at weight {w:g}"] = lambda h, g, e, w=w: fuse(h, e, weights=[1.0, w])
    for name, arm in arms.items():
        top = [[found(arm(h, g, e), texts, row["facts"], n) for n in (1, 3)] for row, texts, h, g, e in rankings]
        print(f"  {name}: {100 * sum(t[0] for t in top) / len(top):.0f} / {100 * sum(t[1] for t in top) / len(top):.0f} %")
    if written_s:
        print(f"writing {QUESTIONS} questions: {statistics.median(written_s):.1f} s a passage (median of "
              f"{len(written_s)}), {1 / statistics.median(written_s):.2f} passages/s")


if __name__ == "__main__":
    main()
