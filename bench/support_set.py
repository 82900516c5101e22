"""Build the labelled claim set that calibrates and scores the "unsupported" mark (bench/support.py).

    .venv/bin/python bench/support_set.py [--limit N]   # writes bench/support-set.jsonl (minutes)

From each question of the R FAQ dev set (bench/devset.py: a FAQ heading and the text under it), the
text under the heading, cut to a passage's size (PASSAGE_WORDS), is the cited passage. Four sentences
are made per question, each citing one passage:

- paraphrase  (supported)    the CPU default model (Qwen2.5-Coder-1.5B on llama.cpp) answers the
                             question in one sentence of its own words from that passage;
- verbatim    (supported)    a sentence of the passage itself, as answers often copy;
- swapped     (unsupported)  the paraphrase citing the FAQ answer most like the right one (by the
                             embedding model) instead: a citation to the wrong, similar passage;
- falsified   (unsupported)  the model, shown two examples, rewrites the paraphrase so that its facts
                             (a name, number, place, yes/no or advice) are false, citing the right
                             passage: a made-up claim behind a real citation (FactCC-style, Kryscinski
                             et al. 2020, written by a model rather than by rules).

A falsified sentence the model returned unchanged (same words) is dropped, as is a paraphrase that
is empty; nothing is dropped by the checker's own score. The committed file was then read by hand,
every paraphrase and falsified sentence against its passage: 8 of the 72 paraphrases say what the
passage does not (a real model's real mistakes: they are labelled unsupported, with a "review" note),
and 4 of the 43 falsified sentences stayed true (removed, kept in bench/support-set-removed.jsonl).
The file is committed so that bench/support.py runs without the model; running this again rebuilds
it (and the hand review would have to be done again).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/ingest.py must not hide the package

from devset import FAQ, faq_pairs  # noqa: E402

from ingest.settings import load_settings  # noqa: E402
from rag import llm_server  # noqa: E402

OUT = ROOT / "bench/support-set.jsonl"
PASSAGE_WORDS = 170  # about one 192-token chunk of the embedding model
PARAPHRASE = ("Passage:\n{passage}\n\nQuestion: {question}\n"
              "Answer the question in one sentence, in your own words, using only what the passage says. "
              "Reply with that one sentence and nothing else.")
# The 1.5B model returns the sentence unchanged when simply asked to falsify it; two examples do it.
FALSIFY = ("Change the facts of a sentence so that it becomes false.\n"
           "Sentence: Python was created by Guido van Rossum in 1991.\n"
           "False version: Python was created by Dennis Ritchie in 1978.\n"
           "Sentence: You can install the package with pip on Windows.\n"
           "False version: You can install the package only with conda on Linux.\n"
           "Sentence: {sentence}\nFalse version:")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def chat(url: str, prompt: str) -> str:
    body = json.dumps({"model": "local", "messages": [{"role": "user", "content": prompt}],
                       "temperature": 0.0, "max_tokens": 90}).encode()
    req = urllib.request.Request(url.rstrip("/") + "/chat/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        text = json.loads(resp.read())["choices"][0]["message"]["content"] or ""
    text = " ".join(text.replace("[1]", "").split()).strip().strip('"')
    text = re.sub(r"^(False version|Sentence|Answer):\s*", "", text)
    return _SENT.split(text)[0] if text else ""


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def main():
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    pairs = [p for p in faq_pairs(FAQ) if len(p["answer"].split()) >= 20]
    for p in pairs:
        p["passage"] = " ".join(p["answer"].split()[:PASSAGE_WORDS])
    from sentence_transformers import SentenceTransformer

    from ingest.embedding import resolve_model

    model = SentenceTransformer(resolve_model(load_settings().embed_model), device="cpu")
    vectors = model.encode([p["passage"] for p in pairs], normalize_embeddings=True)
    sims = vectors @ vectors.T
    rng = random.Random(18)
    asked = pairs[: args.limit] if args.limit else pairs
    settings = load_settings(home=Path(tempfile.mkdtemp(prefix="hearth-support-set-")), llm_engine="llamacpp")
    server = llm_server.start(settings)
    rows = []
    try:
        for i, p in enumerate(asked):
            near = max((j for j in range(len(sims)) if j != i), key=lambda j: sims[i][j])
            other = pairs[near]["passage"]
            base = {"question": p["question"]}
            false = ""
            para = chat(server.url, PARAPHRASE.format(passage=p["passage"], question=p["question"]))
            if para:
                rows.append({**base, "kind": "paraphrase", "sentence": para, "passage": p["passage"], "supported": True})
                rows.append({**base, "kind": "swapped", "sentence": para, "passage": other, "supported": False})
                false = chat(server.url, FALSIFY.format(sentence=para))
                if false and words(false) != words(para):
                    rows.append({**base, "kind": "falsified", "sentence": false, "passage": p["passage"], "supported": False})
            sentences = [s for s in _SENT.split(p["passage"]) if 8 <= len(s.split()) <= 40 and s.rstrip()[-1:] in ".!?"]
            if sentences:
                rows.append({**base, "kind": "verbatim", "sentence": rng.choice(sentences), "passage": p["passage"],
                             "supported": True})
            print(f"{i + 1}/{len(asked)} {p['question'][:50]} | {para[:60]} | {false[:60] if para else ''}", flush=True)
    finally:
        llm_server.stop(settings)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kinds = {k: sum(r["kind"] == k for r in rows) for k in ("paraphrase", "verbatim", "swapped", "falsified")}
    print(f"{len(rows)} sentences from {len(asked)} questions -> {OUT}: {kinds}")


if __name__ == "__main__":
    main()
