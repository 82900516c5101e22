"""How well the "unsupported" mark finds claims their citation does not back, and what it costs.

    .venv/bin/python bench/support.py [bench/support-set.jsonl]

The labelled set (bench/support_set.py) holds sentences from the R FAQ dev set that cite the right
passage (paraphrase, verbatim) or do not rest on the passage they cite (swapped, falsified). Each
sentence is checked by rag/support.py against its one cited passage. WEIGHT (of word coverage against
embedding similarity) and THRESHOLD are calibrated by two-fold cross-validation split by question:
each half's best setting (the highest of min(precision, recall) of the mark) is scored on the other
half, so the figures are held out. Then the constants in rag/support.py are scored on the whole set,
and the cost of checking a three-sentence answer over five passages is timed (median of 20).
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


def main(path: Path):
    print(describe())
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    settings = load_settings()
    embedder = Embedder(settings.embed_model, settings.embed_batch_size, settings.embed_precision)
    feats = support.features([r["sentence"] for r in rows], [[r["passage"]] for r in rows], embedder)
    # the question's words are not new in an answer (check_support is given the question too)
    feats = [[f[:-1] + (len(support.novel_terms(r["sentence"], [r["passage"], r["question"]])),) for f in fs]
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
    print(f"cost: {statistics.median(times):.0f} ms median per three-sentence answer over five passages "
          "(after the answer has streamed)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench/support-set.jsonl")
