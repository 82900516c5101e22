"""Answer quality on questions in users' own words: the CPU default model answering through Hearth.

    .venv/bin/python bench/answers.py                      # every set, both splits
    .venv/bin/python bench/answers.py --split dev --set r  # tune on dev only; held is reported apart
    .venv/bin/python bench/answers.py --retrieval          # hit@1 / hit@5 / MRR and key facts found, no model
    .venv/bin/python bench/answers.py --split held --budget 1200   # 1,200 passage tokens in every prompt
    .venv/bin/python bench/answers.py --split held --speed 300     # the budget an 8-core laptop gets
    .venv/bin/python bench/answers.py --retrieval --set debian-de --model all-MiniLM-L6-v2  # one model forced

The dev set is bench/answers-{r,octave,debian}.jsonl, and for other languages
bench/answers-debian-{de,es,fr,it,ja,pt}.jsonl (bench/answer_set.py: its format and check).
Each set is ingested into a collection of its own under .cache/answers-home/<hash of ingest/>, so a
change to ingestion re-ingests. Hearth's own llama.cpp server (Qwen2.5-Coder-1.5B) answers through
the same Answerer the app and `hearth ask` use, with the default settings. Reported per split:

- correct: answers holding every key fact (what the user is shown: the lead quote and the answer);
  also the model's own text alone
- caught: of the answers missing a key fact, those with at least one sentence marked unsupported
  (or the visible "did not match the documents" note)
- flagged: of the sentences of correct answers, those marked unsupported; apart for answers whose
  passages held every key fact (evidence shown: these should carry no flag) and the others (written
  from the model's own knowledge: a flag there is honest)
- first token and total time, medians; the lead quote's time (what appears first on screen)
- the same marks with words alone (no model judge), from the same answers: each sentence's word
  score is recorded, so the judge's worth is measured on the same text
- second attempts (HEARTH_RETRY_UNSUPPORTED): how many answers were retried, correct before and after
  them; caught and flagged read the marks of the attempt an answer ends with

Every answer is written to .cache/answers-results/<time>.jsonl for reading.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from answer_set import SETS, facts_met, load  # noqa: E402
from machine import describe  # noqa: E402

from ingest.libraries import open_library  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from ingest.settings import load_settings  # noqa: E402
from rag.evaluate import evaluate  # noqa: E402
from rag.support import THRESHOLD, YES  # noqa: E402

RESULTS = ROOT / ".cache/answers-results"


def ingest_home() -> Path:
    """A home per version of the ingestion code: a change there re-ingests, nothing else does."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "ingest").rglob("*.py")):
        digest.update(path.read_bytes())
    return ROOT / ".cache/answers-home" / digest.hexdigest()[:12]


def libraries(names: list[str], model: str = "auto", home_suffix: str = "", **overrides) -> tuple:
    """Each set's collection, built with `model` (auto: the one its documents' language calls for).
    The English sets share a home, each other language has its own, one per model: the keyword
    index's word counts are those of its home's collections, so nothing else may change them.
    `home_suffix` names a home apart (e.g. "-int8": another embedder variant's store, see bench/int8_retrieval.py)."""
    libs = {}
    for name in names:
        group = name if name.startswith("debian-") else "en"
        settings = load_settings(home=ingest_home() / f"{group}-{model}{home_suffix}", llm_engine="llamacpp", embed_model=model,
                                 **overrides)
        lib = open_library(settings, f"answers-{name}")
        t = time.perf_counter()
        report = Ingestor(lib).sync(SETS[name])
        took = time.perf_counter() - t
        if took > 2:
            print(f"ingested {name}: {len(report.results)} files, {report.chunks_added} passages in {took:.0f} s")
        print(f"{name}: {lib.embed_model}")
        libs[name] = lib
    return settings, libs


def retrieval(libs: dict, rows: list[dict], k: int = 5) -> None:
    print(f"\nRetrieval (hit@1 / hit@{k} / MRR; a hit holds 8 consecutive words of an evidence string)")
    print("| set | split | n | hybrid | dense | keyword |")
    print("| --- | --- | ---: | --- | --- | --- |")
    for split in ("dev", "held"):
        for name in [*libs, "all"]:
            chosen = [r for r in rows if r["split"] == split and (name == "all" or r["set"] == name)]
            if not chosen:
                continue
            if name == "all":
                tables = [evaluate(libs[s], [r for r in chosen if r["set"] == s], k) for s in libs
                          if any(r["set"] == s for r in chosen)]
                counts = [sum(r["set"] == s for r in chosen) for s in libs if any(r["set"] == s for r in chosen)]
                table = {m: {key: sum(t[m][key] * c for t, c in zip(tables, counts)) / sum(counts)
                             for key in tables[0][m]} for m in tables[0]}
            else:
                table = evaluate(libs[name], chosen, k)
            cells = [" / ".join(f"{v:.3f}" for v in table[m].values()) for m in ("hybrid", "dense", "keyword")]
            print(f"| {name} | {split} | {len(chosen)} | {' | '.join(cells)} |")


FACT_DEPTHS = (1, 3, 5, 10)
FACT_BUDGETS = (300, 1200)  # the 2-core default, and what an 8-core laptop reads in 5 s


def fact_recall(libs: dict, rows: list[dict]) -> None:
    """How often every key fact stands in the hybrid search's first 1 / 3 / 5 / 10 passages, and in
    the passages the model is given (rag/retrieval.assemble of what passes HEARTH_MIN_SCORE) at each
    budget of FACT_BUDGETS: the retriever's share of a wrong answer, per split and kind."""
    from rag.retrieval import assemble, search

    print("\nKey facts found (every key fact of a question in the text; hybrid): "
          f"top {' / '.join(map(str, FACT_DEPTHS))} | given at {' / '.join(map(str, FACT_BUDGETS))} tokens "
          "(passages given, mean) | search ms, median")
    table = defaultdict(list)
    for row in rows:
        lib = libs[row["set"]]
        t = time.perf_counter()
        hits = search(lib, row["question"], max(FACT_DEPTHS))
        took = 1000 * (time.perf_counter() - t)
        found = [all(facts_met(" ".join(h.text for h in hits[:d]), row["facts"])) for d in FACT_DEPTHS]
        kept = [h for h in hits if h.score >= lib.settings.min_score]
        given = [assemble(lib, kept, b) for b in FACT_BUDGETS]
        found += [all(facts_met(" ".join(h.text for h in g), row["facts"])) for g in given]
        for key in (row["split"], f"{row['split']} {row['kind']}"):
            table[key].append((found, [len(g) for g in given], took))
    for key in sorted(table, key=lambda k: (k.split()[0] != "dev", " " in k, k)):
        got = table[key]
        shares = [100 * sum(f[i] for f, _, _ in got) / len(got) for i in range(len(FACT_DEPTHS) + len(FACT_BUDGETS))]
        counts = [statistics.mean(n[i] for _, n, _ in got) for i in range(len(FACT_BUDGETS))]
        depth = " / ".join(f"{x:.0f}" for x in shares[: len(FACT_DEPTHS)])
        budget = " / ".join(f"{x:.0f}" for x in shares[len(FACT_DEPTHS):])
        print(f"  {key:<14} n={len(got):<3} top {depth} % | given {budget} % "
              f"({' / '.join(f'{c:.1f}' for c in counts)}) | {statistics.median(t for _, _, t in got):.0f} ms")


def leads(settings, libs: dict, rows: list[dict]) -> None:
    """The lead quote alone (no model): how often it holds every key fact, per split."""
    from rag.answer import Answerer

    print("\nLead quote (the passage span shown before the model's answer): holds every key fact / any")
    for split in ("dev", "held"):
        chosen = [r for r in rows if r["split"] == split]
        if not chosen:
            continue
        every = some = 0
        for row in chosen:
            stream = Answerer(libs[row["set"]], None).ask(row["question"])
            lead = stream.lead()
            met = facts_met(lead.quote if lead else "", row["facts"])
            every, some = every + all(met), some + any(met)
        print(f"  {split}: {every}/{len(chosen)} every fact, {some}/{len(chosen)} at least one")


def relevance_probe(settings, libs: dict, rows: list[dict]) -> None:
    """The model asked, after an answer's own prompt, whether its passages answer the question
    (rag/answer.Answerer.relevance), for the first passages and for the next ones (those a second
    attempt would get): how well P(Yes) tells passages holding every key fact from the others, and
    what choosing the next passages when the first get a low P(Yes) would give and cost."""
    from rag import llm_server
    from rag.answer import Answerer, as_dicts, build_messages, new_fence
    from rag.retrieval import assemble

    server = llm_server.start(settings)
    probes = []
    try:
        answerers = {name: Answerer(lib, server) for name, lib in libs.items()}
        next(iter(answerers.values())).ask("What is this about?").collect()  # warm the server
        for i, row in enumerate(rows, 1):
            answerer = answerers[row["set"]]
            stream = answerer.ask(row["question"])
            sides = []
            for passages in (stream.passages, assemble(answerer.library, stream.next_hits, stream.budget)):
                if not passages:
                    sides.append(None)
                    continue
                messages = build_messages(stream.result.query, passages, new_fence())
                t = time.perf_counter()
                p = answerer.relevance(messages)
                asked = time.perf_counter() - t
                t = time.perf_counter()  # the answer's first token after the check: the cached prefix
                answerer._client().chat.completions.create(
                    model=server.model or "local", max_tokens=1, temperature=0.0,
                    messages=as_dicts(messages))
                sides.append({"p": p, "facts": all(facts_met(" ".join(h.text for h in passages), row["facts"])),
                              "check_s": asked, "answer_after_s": time.perf_counter() - t})
            probes.append({"id": row["id"], "split": row["split"], "kind": row["kind"], "sides": sides})
            first, second = sides
            print(f"[{i}/{len(rows)}] {row['id']} first p={first['p'] if first else None} facts={first and first['facts']} "
                  f"check {first['check_s'] if first else 0:.1f}s then {first['answer_after_s'] if first else 0:.2f}s | "
                  f"next p={second['p'] if second else None} facts={second and second['facts']}", flush=True)
    finally:
        llm_server.stop(settings)
    print("\nRelevance check (P(Yes) after the answer's own prompt)")
    for split in ("dev", "held"):
        got = [x for x in probes if x["split"] == split and x["sides"][0] and x["sides"][0]["p"] is not None]
        if not got:
            continue
        firsts = [x["sides"][0] for x in got]
        with_facts = [s["p"] for s in firsts if s["facts"]]
        without = [s["p"] for s in firsts if not s["facts"]]
        pairs = [(a, b) for a in with_facts for b in without]
        auc = sum((a > b) + 0.5 * (a == b) for a, b in pairs) / max(len(pairs), 1)
        print(f"  {split}: n={len(got)}; first passages hold every key fact {len(with_facts)}; P(Yes) median "
              f"{statistics.median(with_facts or [0]):.2f} with them, {statistics.median(without or [0]):.2f} without; "
              f"AUC {auc:.2f}; check {statistics.median(s['check_s'] for s in firsts):.2f} s, the answer's first "
              f"token after it {statistics.median(s['answer_after_s'] for s in firsts):.2f} s (medians)")
        for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
            facts = switched = 0
            for x in got:
                first, second = x["sides"]
                move = second is not None and second["p"] is not None and first["p"] < t and second["p"] > first["p"]
                switched += move
                facts += (second if move else first)["facts"]
            print(f"    move to the next passages when P(Yes) < {t:.1f} and theirs is higher: every key fact given "
                  f"{100 * facts / len(got):.0f} % (first passages {100 * len(with_facts) / len(got):.0f} %), "
                  f"moved {switched} of {len(got)}")


def shown_text(answer) -> str:
    return answer.shown_text


def score(rows: list[dict]) -> dict:
    """The figures of a list of answered rows (see the module's doc)."""
    correct = [r for r in rows if r["correct"]]
    wrong = [r for r in rows if not r["correct"]]
    right_sentences = [s for r in correct for s in r["sentences"] if s["supported"] is not None]
    words_mark = lambda s: s["score"] < THRESHOLD  # noqa: E731 (unsupported by words alone)
    return {
        "n": len(rows),
        "correct": len(correct) / max(len(rows), 1),
        "model_correct": sum(r["model_correct"] for r in rows) / max(len(rows), 1),
        "caught": sum(r["caught"] for r in wrong) / max(len(wrong), 1),
        "wrong": len(wrong),
        "flagged": sum(s["supported"] is False for s in right_sentences) / max(len(right_sentences), 1),
        "right_sentences": len(right_sentences),
        **{f"flagged_{name}": (sum(s["supported"] is False for s in group) / max(len(group), 1), len(group))
           for name, group in (("shown", [s for r in correct if r.get("evidence_shown") for s in r["sentences"]
                                          if s["supported"] is not None]),
                               ("unshown", [s for r in correct if r.get("evidence_shown") is False
                                            for s in r["sentences"] if s["supported"] is not None]))},
        "caught_words": sum(any(s["supported"] is not None and words_mark(s) for s in r["sentences"]) or r["mismatch"]
                            for r in wrong) / max(len(wrong), 1),
        "flagged_words": sum(words_mark(s) for s in right_sentences) / max(len(right_sentences), 1),
        "first_token": statistics.median([r["first_token_s"] for r in rows if r["first_token_s"] is not None] or [0]),
        "lead": statistics.median([r["lead_s"] for r in rows if r["lead_s"] is not None] or [0]),
        "total": statistics.median([r["total_s"] for r in rows] or [0]),
    }


def answer_all(settings, libs: dict, rows: list[dict], speed: float = 0) -> list[dict]:
    """Every question answered and scored; `speed`: prompt tokens/s to size the budget from instead of
    the server's own (the first-token figures stay this machine's)."""
    from rag import llm_server
    from rag.answer import Answerer

    server = llm_server.start(settings)
    if speed:
        server = dataclasses.replace(server, prompt_tokens_per_s=speed)
    from rag.api import passage_budget

    print(f"model server: {server.model}; {passage_budget(settings, server, measure=False).describe()}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / time.strftime("%Y%m%d-%H%M%S.jsonl")
    done = []
    try:
        answerers = {name: Answerer(lib, server) for name, lib in libs.items()}
        next(iter(answerers.values())).ask("What is this about?").collect()  # warm the server
        with out_path.open("w") as fh:
            for i, row in enumerate(rows, 1):
                t = time.perf_counter()
                answer = answerers[row["set"]].ask(row["question"]).collect()
                text = shown_text(answer)
                met = facts_met(text, row["facts"])
                final = answer.retry or answer  # a second attempt's marks are the ones the answer ends with
                sentences = [x.to_json() for x in final.sentences]
                mismatch = final.mismatch
                record = {
                    "id": row["id"], "set": row["set"], "split": row["split"], "kind": row["kind"],
                    "question": row["question"], "facts": row["facts"], "met": met,
                    "correct": all(met), "model_correct": all(facts_met(answer.answer + (" " + answer.retry.answer if answer.retry else ""), row["facts"])),
                    "caught": mismatch or any(s["supported"] is False for s in sentences), "mismatch": mismatch,
                    "lead": answer.lead_text, "answer": answer.answer, "error": answer.error,
                    "retried": answer.retry is not None, "first_correct": all(facts_met(
                        "\n".join(x for x in (answer.lead_text, answer.answer) if x), row["facts"])),
                    "retry_answer": answer.retry.answer if answer.retry else None,
                    # the second attempt alone (its lead quote and answer): "correct" reads both attempts'
                    # text together, which a longer text passes more easily
                    "retry_correct": bool(answer.retry) and all(facts_met(answer.retry.shown_text, row["facts"])),
                    "sentences": sentences,
                    # every key fact in the passages of the attempt the marks come from: a right answer
                    # written from them should carry no flag; one written without them is the model's
                    # own knowledge, and a flag there is honest
                    "evidence_shown": all(facts_met(" ".join(h.text for h in final.passages), row["facts"])),
                    "sources": [f"{Path(h.source).name} p{h.page} {h.score:.2f}" for h in answer.passages],
                    # what the marks were checked against, so bench/judge.py can replay another check
                    "passages": [h.text for h in final.passages], "query": final.query,
                    "first_token_s": answer.timings.get("first_token_ms", 0) / 1000 or None,
                    "lead_s": answer.timings["lead_ms"] / 1000 if "lead_ms" in answer.timings else None,
                    "total_s": time.perf_counter() - t,
                }
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                done.append(record)
                mark = "ok " if record["correct"] else ("CAUGHT" if record["caught"] else "WRONG ")
                print(f"[{i}/{len(rows)}] {mark} {row['id']} {record['total_s']:.1f}s {row['question'][:70]}", flush=True)
    finally:
        llm_server.stop(settings)
    print(f"answers written to {out_path}")
    return done


def report(done: list[dict]) -> None:
    print("\nAnswers (Qwen2.5-Coder-1.5B on llama.cpp; correct = every key fact in what the user is shown)")
    print("| split | set | n | correct | model's text correct | wrong caught | right sentences flagged "
          "(evidence shown / not shown) | words alone: caught / flagged | first token | lead quote | total |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    groups = defaultdict(list)
    for r in done:
        groups[(r["split"], r["set"])].append(r)
        groups[(r["split"], "all")].append(r)
    for (split, name), rows in sorted(groups.items(), key=lambda kv: (kv[0][0] != "dev", kv[0][1] == "all", kv[0][1])):
        s = score(rows)
        print(f"| {split} | {name} | {s['n']} | {100 * s['correct']:.1f} % | {100 * s['model_correct']:.1f} % | "
              f"{100 * s['caught']:.0f} % of {s['wrong']} | {100 * s['flagged']:.1f} % of {s['right_sentences']} "
              f"({100 * s['flagged_shown'][0]:.1f} % of {s['flagged_shown'][1]} / "
              f"{100 * s['flagged_unshown'][0]:.1f} % of {s['flagged_unshown'][1]}) | "
              f"{100 * s['caught_words']:.0f} % / {100 * s['flagged_words']:.1f} % | {s['first_token']:.2f} s | "
              f"{s['lead']:.2f} s | {s['total']:.1f} s |")
    judged = [s for r in done for s in r["sentences"] if s.get("p_yes") is not None]
    if judged:  # the judge's threshold (rag/support.py YES), read on these same answers
        print(f"\nModel judge: {len(judged)} sentences judged; caught / flagged by its threshold (default {YES}):")
        for t in (0.3, 0.4, 0.5, YES, 0.8):
            marked = [{**r, "sentences": [{**s, "supported": s["p_yes"] >= t} if s.get("p_yes") is not None else s
                                          for s in r["sentences"]]} for r in done]
            for r in marked:  # mismatch as rag.answer.mismatch_of decides it, on the new marks
                claims = [s["supported"] for s in r["sentences"] if s["supported"] is not None]
                r["mismatch"] = bool(claims) and (claims[0] is False or 2 * claims.count(False) >= len(claims))
                r["caught"] = r["mismatch"] or False in claims
            f = score(marked)
            print(f"  YES {t:.2f}: caught {100 * f['caught']:.0f} %, flagged {100 * f['flagged']:.1f} %")
    for split in ("dev", "held"):
        rows = [r for r in done if r["split"] == split]
        retried = [r for r in rows if r.get("retried")]
        if rows:
            either = sum(r["first_correct"] or r.get("retry_correct", False) for r in rows)
            print(f"Second attempts ({split}): {len(retried)} of {len(rows)} answers retried; correct before them "
                  f"{100 * sum(r['first_correct'] for r in rows) / len(rows):.1f} %, after {100 * sum(r['correct'] for r in rows) / len(rows):.1f} % "
                  f"(one attempt alone holding every key fact: {100 * either / len(rows):.1f} %) "
                  f"(retried and then right: {sum(r['correct'] and not r['first_correct'] for r in retried)}; "
                  f"right at first and retried: {sum(r['first_correct'] for r in retried)})")
    kinds = defaultdict(list)
    for r in done:
        kinds[(r["split"], r["kind"])].append(r)
    print("\nBy kind: " + "; ".join(f"{split} {kind} {100 * score(rows)['correct']:.0f} % of {len(rows)}"
                                   for (split, kind), rows in sorted(kinds.items())))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), action="append")
    parser.add_argument("--split", choices=("dev", "held", "all"), default="all")
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions (0: all)")
    parser.add_argument("--every", type=int, default=1, help="every Nth question of the split (a quicker A/B)")
    parser.add_argument("--retrieval", action="store_true", help="retrieval figures only, no model")
    parser.add_argument("--relevance", action="store_true", help="probe the model's relevance check "
                        "(P(Yes) that the passages answer, first and next passages), no answers")
    parser.add_argument("--no-lead", action="store_true", help="skip the lead-quote figures")
    parser.add_argument("--weights", help="hybrid weights keyword,heading[,heading share] to try (default: rag/retrieval.py's "
                        "KEYWORD_WEIGHT or KEYWORD_WEIGHTS' per model, HEADING_WEIGHT, HEADING_MIN_SHARE); the keyword weight "
                        "given holds for every model")
    parser.add_argument("--prompt", help="a file holding a system prompt to try instead of rag/answer.py's "
                        "(with {fence} where the passages' fence mark goes)")
    parser.add_argument("--ids", help="comma-separated question ids to ask (for reading single answers)")
    parser.add_argument("--model", default="auto", help="embedding model of every set's collection: auto (the "
                        "default: by the documents' language), all-MiniLM-L6-v2 or multilingual-e5-small")
    parser.add_argument("--home-suffix", default="", help="appended to each home's name, so a run with another "
                        "embedder (HEARTH_EMBED_PRECISION, HEARTH_EMBED_BACKEND) keeps its own store, e.g. --home-suffix=-fp32")
    parser.add_argument("--speed", type=float, default=0, help="prompt tokens/s to size the budget from, as "
                        "if the server had measured it (300: an 8-core laptop); the engine's limits apply")
    parser.add_argument("--budget", type=int, default=0, help="passage tokens for every answer (HEARTH_CONTEXT_TOKENS; "
                        "0: the default, sized from the model server's measured prompt speed); 1200 is what an "
                        "8-core laptop reads in 5 s")
    parser.add_argument("--param", action="append", default=[], metavar="MODULE.NAME=VALUE",
                        help="set a module constant for this run, e.g. rag.retrieval.WINDOW_WEIGHT=0 (an A/B arm)")
    args = parser.parse_args()
    print(describe())
    for assignment in args.param:
        import ast
        import importlib

        target, value = assignment.split("=", 1)
        module, name = target.rsplit(".", 1)
        setattr(importlib.import_module(module), name, ast.literal_eval(value))
        print(f"{target} = {value}")
    if args.weights:
        from rag import retrieval as retrieval_module

        keyword, heading, *share = [float(x) for x in args.weights.split(",")]
        retrieval_module.KEYWORD_WEIGHT, retrieval_module.HEADING_WEIGHT = keyword, heading
        retrieval_module.KEYWORD_WEIGHTS = {}  # the weight tried holds for every embedding model
        if share:
            retrieval_module.HEADING_MIN_SHARE = share[0]
        print(f"hybrid weights: keyword {keyword}, heading {heading}, heading share {retrieval_module.HEADING_MIN_SHARE}")
    if args.prompt:
        from rag import answer as answer_module

        answer_module.SYSTEM_PROMPT = open(args.prompt, encoding="utf-8").read().strip()
        print(f"system prompt: {answer_module.SYSTEM_PROMPT!r}")
    names = args.set or sorted(SETS)
    rows = [r for name in names for r in load(name) if args.split in ("all", r["split"])]
    if args.ids:
        rows = [r for r in rows if r["id"] in args.ids.split(",")]
    rows = rows[:: args.every]
    rows = rows[: args.limit] if args.limit else rows
    settings, libs = libraries(names, args.model, args.home_suffix,
                               **({"context_tokens": args.budget} if args.budget else {}))
    try:
        retrieval(libs, rows)
        fact_recall(libs, rows)
        if not args.no_lead:
            leads(settings, libs, rows)
        if args.relevance:
            relevance_probe(settings, libs, rows)
        elif not args.retrieval:
            report(answer_all(settings, libs, rows, args.speed))
    finally:
        for lib in libs.values():
            lib.close()


if __name__ == "__main__":
    main()
