"""Retrieval quality on a QA set: hit@1, hit@k and MRR for each retrieval mode, side by side.

A QA file has one JSON object per line: {"question": ..., "answer": ...}. A retrieved passage is a hit
when it contains a run of RUN consecutive words of the gold answer (fewer if the answer is shorter),
compared as lower-case words, so punctuation and line breaks do not matter. Scripts written without
spaces (Chinese, Japanese) have no words to count: each of their characters is a word of its own, and
a gold answer holding any of them needs a run of CJK_RUN words instead (16 characters, about the
eight words' worth of text).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ingest.library import Library

from .retrieval import MODES, search

RUN = 8
CJK_RUN = 16
_CJK = "\u3005-\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"  # kana, kanji, hanzi
CJK = re.compile(f"[{_CJK}]")
_WORD = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")  # a CJK character, or a run of other word characters


def words(text: str) -> list[str]:
    """The lower-case words of `text` as the hit rule counts them."""
    return _WORD.findall(text.lower())


def run_of(text: str) -> int:
    """How many consecutive words of a gold answer make a hit: RUN, or CJK_RUN where it holds CJK."""
    return CJK_RUN if CJK.search(text) else RUN


def load_qa(path: str | Path) -> list[dict]:
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not row.get("question") or not row.get("answer"):
                raise ValueError(f"{path}:{n}: each line needs a question and an answer")
            rows.append(row)
    return rows


def _grams(text: str) -> tuple[set, int]:
    gold = words(text)
    n = min(run_of(text), len(gold))
    return {tuple(gold[i:i + n]) for i in range(len(gold) - n + 1)}, n


def is_hit(passage: str, gold: tuple[set, int]) -> bool:
    grams, n = gold
    seen = words(passage)
    return any(tuple(seen[i:i + n]) in grams for i in range(len(seen) - n + 1))


def evaluate(library: Library, qa: list[dict], k: int = 5, modes=MODES) -> dict[str, dict]:
    """{mode: {"hit@1", "hit@k", "mrr"}} over the QA set."""
    golds = [_grams(row["answer"]) for row in qa]
    table = {}
    for mode in modes:
        hit1 = hitk = rr = 0.0
        for row, gold in zip(qa, golds):
            hits = search(library, row["question"], k, mode=mode)
            rank = next((i for i, h in enumerate(hits) if is_hit(h.text, gold)), None)
            if rank is not None:
                hit1 += rank == 0
                hitk += 1
                rr += 1 / (rank + 1)
        n = max(len(qa), 1)
        table[mode] = {"hit@1": hit1 / n, f"hit@{k}": hitk / n, "mrr": rr / n}
    return table


def citations_resolve(answerer, qa: list[dict], limit: int) -> tuple[int, int]:
    """(answers whose citations all name a passage it was given, answers asked), asked through
    `answerer` (an answer.Answerer with its model server)."""
    from .answer import cited_numbers

    good, asked = 0, 0
    for row in qa[:limit]:
        stream = answerer.ask(row["question"])
        raw = "".join(stream)
        if stream.result.error and not raw:
            raise RuntimeError(stream.result.error)
        numbers = cited_numbers(raw)
        asked += 1
        good += bool(numbers) and all(1 <= x <= len(stream.passages) for x in numbers)
    return good, asked
