"""Replay the support check on answers already written, to compare checks on the same text.

    .venv/bin/python bench/judge.py .cache/answers-results/<dev run>.jsonl [--arm NAME ...]

bench/answers.py records each answer's final attempt with the passages it was checked against. Each
arm here re-checks those answers (rag/support.py's check_support, with Hearth's own llama.cpp server
judging through Answerer.verify, as answers do) and prints, for thresholds of P(Yes) around
rag/support.py's YES:

- caught: of the answers missing a key fact, those with a sentence marked unsupported or whose main
  claim is (the mismatch note)
- flagged: of the sentences of right answers whose passages held every key fact, those marked
  unsupported (they should carry none)

The answers are fixed, so an arm's effect on which answers are retried (a first attempt that fails
its check is asked again) is not measured here: bench/answers.py measures that, once an arm is chosen.
Calibrate on a dev run; report a held-out run.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/ingest.py must not hide the package

from machine import describe  # noqa: E402

from rag import support  # noqa: E402
from rag.answer import mismatch_of  # noqa: E402
from rag.retrieval import Hit  # noqa: E402

# Each arm: the band the model judges, the characters of context each side of the best span, and
# whether the question is put before the sentence (an answer's sentence often leans on it: "Set it
# to latin1.").
ARMS = {
    "today": dict(low=support.LOW, high=support.HIGH, context=support.CONTEXT_CHARS, question=False),
    "all-judged": dict(low=-9.0, high=support.HIGH, context=support.CONTEXT_CHARS, question=False),
    "span-only": dict(low=-9.0, high=support.HIGH, context=0, question=False),
    "with-question": dict(low=-9.0, high=support.HIGH, context=support.CONTEXT_CHARS, question=True),
}
QUESTION_PROMPT = (
    "Question: {question}\n\nPassage: <{fence}>{context}</{fence}>\n\nA sentence of the answer: {claim}\n\n"
    "Does the passage say what the sentence says, as an answer to the question? If the sentence changes a "
    "name, number, place, tool or yes/no of the passage, or adds something the passage does not say, the "
    "answer is No. Answer Yes or No."
)


def judge_with_question(answerer, question: str):
    from rag.answer import inert, new_fence

    def verify(context: str, claim: str) -> float | None:
        fence = new_fence()
        prompt = QUESTION_PROMPT.format(question=inert(question, fence)[:500], fence=fence,
                                        context=inert(context, fence)[:2000], claim=inert(claim, fence)[:500])
        return answerer.p_yes([{"role": "user", "content": prompt}])
    return verify


def replay(records: list[dict], answerer, embedder, arm: dict) -> tuple[list, float]:
    """Each record's sentences as the arm marks them (P(Yes) kept), and the median ms a judgement."""
    saved = support.LOW, support.HIGH, support.CONTEXT_CHARS
    support.LOW, support.HIGH, support.CONTEXT_CHARS = arm["low"], arm["high"], arm["context"]
    times = []

    def timed(verify):
        def inner(context, claim):
            t = time.perf_counter()
            p = verify(context, claim)
            times.append(1000 * (time.perf_counter() - t))
            return p
        return inner

    out = []
    try:
        for r in records:
            passages = [Hit(text, "doc", 1, 0.5, f"d:{i}", None, 0) for i, text in enumerate(r["passages"])]
            text = r["retry_answer"] if r["retried"] else r["answer"]
            verify = judge_with_question(answerer, r.get("query") or r["question"]) if arm["question"] else answerer.verify
            out.append(support.check_support(text, passages, embedder, r.get("query") or r["question"], timed(verify)))
    finally:
        support.LOW, support.HIGH, support.CONTEXT_CHARS = saved
    return out, statistics.median(times) if times else 0.0


def marks_at(sentences, yes: float) -> list:
    """Each sentence as marked with the model's verdicts read at threshold `yes`."""
    return [dataclasses.replace(s, supported=s.p_yes >= yes)
            if s.supported is not None and s.judged_by == "model" and s.p_yes is not None else s
            for s in sentences]


def figures(records, checked, yes: float) -> dict:
    caught, wrong, flagged, shown = 0, 0, 0, 0
    for r, sentences in zip(records, checked):
        marked = marks_at(sentences, yes)
        if not r["correct"]:
            wrong += 1
            caught += mismatch_of(marked) or any(s.supported is False for s in marked)
        elif r.get("evidence_shown"):
            shown += sum(s.supported is not None for s in marked)
            flagged += sum(s.supported is False for s in marked)
    return {"caught": caught / max(wrong, 1), "wrong": wrong, "flagged": flagged / max(shown, 1), "shown": shown}


def main(path: Path, arms: list[str]) -> None:
    from ingest.libraries import open_library
    from ingest.settings import load_settings
    from rag import llm_server
    from rag.answer import Answerer

    print(describe())
    records = [json.loads(line) for line in path.open()]
    records = [r for r in records if "passages" in r and not r.get("error")]
    print(f"{path.name}: {len(records)} answers ({sum(not r['correct'] for r in records)} wrong)")
    settings = load_settings(home=Path(tempfile.mkdtemp(prefix="hearth-judge-")), llm_engine="llamacpp")
    library = open_library(settings)
    embedder = library.embedder  # the English sets' model (MiniLM), as their answers were checked with
    server = llm_server.start(settings)
    answerer = Answerer(library, server)
    try:
        print("| arm | YES | caught | right sentences flagged (evidence shown) | judged | ms a judgement |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name in arms:
            checked, ms = replay(records, answerer, embedder, ARMS[name])
            judged = sum(s.judged_by == "model" for x in checked for s in x)
            for yes in (0.3, 0.4, 0.5, support.YES, 0.7):
                f = figures(records, checked, yes)
                print(f"| {name} | {yes:.2f} | {100 * f['caught']:.0f} % of {f['wrong']} | "
                      f"{100 * f['flagged']:.1f} % of {f['shown']} | {judged} | {ms:.0f} |", flush=True)
            # the answers as recorded, marked by this arm at YES (for reading)
            dump = ROOT / ".cache/judge" / f"{path.stem}-{name}.jsonl"
            dump.parent.mkdir(parents=True, exist_ok=True)
            with dump.open("w") as fh:
                for r, sentences in zip(records, checked):
                    fh.write(json.dumps({"id": r["id"], "correct": r["correct"], "evidence_shown": r.get("evidence_shown"),
                                         "sentences": [s.to_json() for s in sentences]}) + "\n")
    finally:
        llm_server.stop(settings)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--arm", action="append", choices=sorted(ARMS))
    args = parser.parse_args()
    main(args.results, args.arm or list(ARMS))
