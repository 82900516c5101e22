"""How well the "unsupported" mark finds claims their citation does not back, and what it costs.

    .venv/bin/python bench/support.py [bench/support-set.jsonl] [--words-only]
    HEARTH_EMBED_MODEL=multilingual-e5-small .venv/bin/python bench/support.py bench/support-set-de.jsonl

(bench/support-set-de.jsonl: the same sentences in German on their English passages, from
bench/support_translate.py: the check across languages.)

The labelled set (bench/support_set.py) holds sentences from the R FAQ dev set that cite the right
passage (paraphrase, verbatim) or do not rest on the passage they cite (swapped, falsified). Each
sentence is checked by rag/support.py against its one cited passage. WEIGHT (of word coverage against
embedding similarity) and THRESHOLD are calibrated by two-fold cross-validation split by question:
each half's best setting (the highest of min(precision, recall) of the mark) is scored on the other
half, so the figures are held out. Then the constants in rag/support.py are scored on the whole set,
and the cost of checking a three-sentence answer over five passages is timed (median of 20).

Second stage (unless --words-only): Hearth's own llama.cpp server (the CPU default model) is started
and judges every sentence whose support lies between LOW and HIGH, through Answerer.verify, the code
answers use. The P(Yes) threshold is cross-validated the same way; its cost is the median time of one
judgement times the share of sentences in the band.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/ingest.py must not hide the package

from machine import describe  # noqa: E402

from ingest import language  # noqa: E402
from ingest.embedding import Embedder  # noqa: E402
from ingest.settings import load_settings  # noqa: E402
from rag import support  # noqa: E402
from rag.retrieval import Hit  # noqa: E402

WEIGHTS = [w / 10 for w in range(11)]
COSTS = [0.0, 0.1, 0.2, 0.3, 0.5]
THRESHOLDS = [t / 100 for t in range(20, 96)]


def scores(feats, setting):
    """The best candidate's support for each claim under setting = (weight, mismatch cost, novel cost)."""
    w, mc, nc = setting
    return [max((support.combine(*f[2:], weight=w, mismatch_cost=mc, novel_cost=nc) for f in rows), default=0.0)
            for rows in feats]


def mark_quality(rows, best, threshold):
    """(precision, recall) of marking a sentence unsupported when its best score is under threshold."""
    marked = [b < threshold for b in best]
    truth = [not r["supported"] for r in rows]
    tp = sum(m and t for m, t in zip(marked, truth))
    return tp / max(1, sum(marked)), tp / max(1, sum(truth))


def calibrate(rows, feats):
    """The setting and threshold with the highest min(precision, recall) of the mark on `rows`."""
    best = (-1.0, None, None)
    for setting in ((w, mc, nc) for w in WEIGHTS for mc in COSTS for nc in COSTS):
        s = scores(feats, setting)
        for t in THRESHOLDS:
            p, r = mark_quality(rows, s, t)
            if min(p, r) > best[0]:
                best = (min(p, r), setting, t)
    return best[1], best[2]


def main(path: Path, words_only: bool = False, band_limits=None, save=None):
    print(describe())
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    settings = load_settings()
    embedder = Embedder.from_settings(settings)
    feats = support.features([r["sentence"] for r in rows], [[r["passage"]] for r in rows], embedder)
    # the question's words are not new in an answer (check_support is given the question too)
    feats = [[f[:-1] + (len(support.novel_terms(r["sentence"], [r["passage"], r["question"]],
                                                names=language.of_short(r["sentence"]) in ("", "en"))),) for f in fs]
             for r, fs in zip(rows, feats)]
    questions = sorted({r["question"] for r in rows})
    half = {q: i % 2 for i, q in enumerate(questions)}
    held_marks, held_truth = [], []
    for fold in (0, 1):
        train = [i for i, r in enumerate(rows) if half[r["question"]] != fold]
        test = [i for i, r in enumerate(rows) if half[r["question"]] == fold]
        setting, t = calibrate([rows[i] for i in train], [feats[i] for i in train])
        s = scores([feats[i] for i in test], setting)
        held_marks += [b < t for b in s]
        held_truth += [not rows[i]["supported"] for i in test]
        print(f"fold {fold}: calibrated on {len(train)} sentences -> weight {setting[0]:.1f}, mismatch cost "
              f"{setting[1]:.1f}, novel cost {setting[2]:.1f}, threshold {t:.2f}")
    tp = sum(m and t for m, t in zip(held_marks, held_truth))
    print(f"held out: precision {tp / max(1, sum(held_marks)):.3f}, recall {tp / max(1, sum(held_truth)):.3f} "
          f"of the unsupported mark over {len(rows)} sentences ({sum(held_truth)} unsupported)")
    setting, t_all = calibrate(rows, feats)
    print(f"calibrated on all: weight {setting[0]:.1f}, mismatch cost {setting[1]:.1f}, novel cost "
          f"{setting[2]:.1f}, threshold {t_all:.2f}")

    best = scores(feats, (support.WEIGHT, support.MISMATCH_COST, support.NOVEL_COST))
    p, r = mark_quality(rows, best, support.THRESHOLD)
    print(f"\nrag/support.py (WEIGHT {support.WEIGHT}, MISMATCH_COST {support.MISMATCH_COST}, NOVEL_COST "
          f"{support.NOVEL_COST}, THRESHOLD {support.THRESHOLD}) on all {len(rows)} sentences:")
    print("| kind | label | sentences | marked unsupported |")
    print("| --- | --- | ---: | ---: |")
    for kind in ("paraphrase", "verbatim", "swapped", "falsified"):
        for label in (True, False):
            idx = [i for i, x in enumerate(rows) if x["kind"] == kind and x["supported"] == label]
            if idx:
                marked = sum(best[i] < support.THRESHOLD for i in idx)
                print(f"| {kind} | {'supported' if label else 'unsupported'} | {len(idx)} | "
                      f"{marked} ({100 * marked / len(idx):.0f}%) |")
    print(f"precision {p:.3f}, recall {r:.3f} of the unsupported mark")

    # cost per answer: three sentences citing [1], [2], [1][3] over five passages of the set
    passages = [Hit(x["passage"], "R-FAQ.pdf", 1, 0.5, f"d:{i}", None, 0) for i, x in enumerate(rows[:40:8])]
    answer = (f"{rows[0]['sentence']} [1]. {rows[4]['sentence']} [2]. {rows[8]['sentence']} [1][3].")
    support.check_support(answer, passages, embedder, rows[0]["question"])  # warm
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        support.check_support(answer, passages, embedder, rows[0]["question"])
        times.append(1000 * (time.perf_counter() - t0))
    words_ms = statistics.median(times)
    print(f"cost: {words_ms:.0f} ms median per three-sentence answer over five passages "
          "(after the answer has streamed)")
    if not words_only:
        second_stage(rows, feats, best, half, words_ms, band_limits, save)


def second_stage(rows, feats, best, half, words_ms, band_limits=None, save=None):
    import tempfile

    from ingest.libraries import open_library
    from rag import llm_server
    from rag.answer import Answerer

    setting = (support.WEIGHT, support.MISMATCH_COST, support.NOVEL_COST)
    low, high = band_limits or (support.LOW, support.HIGH)
    band = [i for i, b in enumerate(best) if low <= b <= high]
    settings = load_settings(home=Path(tempfile.mkdtemp(prefix="hearth-support-")), llm_engine="llamacpp")
    server = llm_server.start(settings)
    answerer = Answerer(open_library(settings), server)
    p_yes, times = {}, []
    try:
        for i in band:
            r = rows[i]
            top = max(feats[i], key=lambda f: support.combine(*f[2:], weight=setting[0], mismatch_cost=setting[1],
                                                               novel_cost=setting[2]))
            a, b = top[1]
            context = " ".join(r["passage"][max(0, a - support.CONTEXT_CHARS): b + support.CONTEXT_CHARS].split())
            t0 = time.perf_counter()
            p_yes[i] = answerer.verify(context, r["sentence"])
            times.append(1000 * (time.perf_counter() - t0))
    finally:
        llm_server.stop(settings)
    if save:
        Path(save).write_text(json.dumps({"score": best, "p_yes": p_yes, "ms": times}))

    def marks(idx, yes):
        return [(p_yes[i] is not None and p_yes[i] < yes) if i in p_yes else best[i] < support.THRESHOLD for i in idx]

    held_marks, held_truth = [], []
    for fold in (0, 1):
        train = [i for i, r in enumerate(rows) if half[r["question"]] != fold]
        test = [i for i, r in enumerate(rows) if half[r["question"]] == fold]
        yes = max((min(mark_quality([rows[i] for i in train], [0.0 if m else 1.0 for m in marks(train, y)], 0.5)), y)
                  for y in [t / 100 for t in range(30, 91)])[1]
        held_marks += marks(test, yes)
        held_truth += [not rows[i]["supported"] for i in test]
        print(f"fold {fold}: YES threshold {yes:.2f}")
    tp = sum(m and t for m, t in zip(held_marks, held_truth))
    print(f"\nwith the model judging the {len(band)} sentences between LOW {low} and HIGH {high} "
          f"({server.model}): held out precision {tp / max(1, sum(held_marks)):.3f}, recall "
          f"{tp / max(1, sum(held_truth)):.3f} of the unsupported mark")
    everything = list(range(len(rows)))
    p, r = mark_quality(rows, [0.0 if m else 1.0 for m in marks(everything, support.YES)], 0.5)
    print(f"rag/support.py (YES {support.YES}) on all {len(rows)} sentences: precision {p:.3f}, recall {r:.3f}")
    share = len(band) / len(rows)
    print(f"cost: {statistics.median(times):.0f} ms median per judged sentence; {100 * share:.0f}% of sentences "
          f"are judged, so a three-sentence answer costs about {words_ms + 3 * share * statistics.median(times):.0f} ms "
          "after it has streamed")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", nargs="?", default=str(ROOT / "bench/support-set.jsonl"))
    parser.add_argument("--words-only", action="store_true", help="no second stage (no model server)")
    parser.add_argument("--band", default="", help="LOW,HIGH for the model to judge (default: rag/support.py's)")
    parser.add_argument("--save", default="", help="write each sentence's score and P(Yes) to this JSON file")
    args = parser.parse_args()
    band = tuple(float(x) for x in args.band.split(",")) if args.band else None
    main(Path(args.set), args.words_only, band, args.save or None)
