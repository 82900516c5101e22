"""The answer-quality dev set: questions in users' own words over real document sets.

    .venv/bin/python bench/answer_set.py            # check every set, print its make-up
    .venv/bin/python bench/answer_set.py --set r    # one set (r, octave, debian, debian-de ... debian-pt)

Each set is a JSONL file `bench/answers-<set>.jsonl`, one question a line:

    {"id": "r-07", "question": "how do I get data out of an excel file",
     "facts": [["read.xls", "read_excel", "readxl"], ["ODBC"]],
     "evidence": ["a run of at least eight words copied from the document where the answer is"],
     "kind": "fact"}

- facts: what a correct answer must contain, each a list of alternatives; an answer is correct when
  every fact has one alternative in it (lower case, spaces collapsed, matched at word edges; in
  Japanese, written without spaces, a fact matches anywhere in a run of kana and kanji, and line
  breaks between them are dropped). Every alternative is checked to occur in the documents, so a fact
  is the documents' own words.
- evidence: where the answer is (one string per passage needed); retrieval counts a passage as a hit
  when it holds eight consecutive words of an evidence string (rag/evaluate.py's rule; in Japanese
  sixteen characters, each kana or kanji counting as a word).
- kind: "fact" (one passage), "two" (needs two passages), "no" (the answer is "no" or "not as
  such": a fact then names the negation, e.g. ["not", "no", "cannot"]).
- split: "held" for a third of the questions, by a hash of the id (never chosen by looking at the
  results); everything is tuned on "dev" only, "held" is reported apart.

The documents: R-intro and R-data (data/), Octave's manual (octave.pdf from Debian's octave-doc) and
the Debian Reference in HTML (debian-reference-en), and its translations (debian-reference-de, -es,
-fr, -it, -ja, -pt: sets debian-de ... debian-pt, questions in that language); `make testdata` fetches
them from Debian.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.evaluate import _CJK, CJK, RUN, run_of, words  # noqa: E402

TESTDATA = ROOT / ".cache/testdata/root/usr/share"
SETS = {
    "r": [ROOT / "data/R-intro.pdf", ROOT / "data/R-data.pdf"],
    "octave": [TESTDATA / "doc/octave/octave.pdf"],
    "debian": sorted((TESTDATA / "debian-reference").glob("*.en.html")),
    **{f"debian-{lang}": sorted((TESTDATA / "debian-reference").glob(f"*.{lang}.html"))
       for lang in ("de", "es", "fr", "it", "ja", "pt")},
}
KINDS = ("fact", "two", "no")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " ", "\u2010": "-"})


# Text written without spaces (kana, kanji and their punctuation): a line break between two of its
# characters is no space, and a word starting or ending in one of them has no edge to match at.
_UNSPACED = _CJK + "\u3000-\u303f\uff00-\uffef"
_JOINED = re.compile(f"(?<=[{_UNSPACED}]) (?=[{_UNSPACED}])")
_LETTER = f"[^\\W_{_CJK}]"  # a letter or digit of a spaced script, accented ones included


def normal(text: str) -> str:
    """Lower case, typographic quotes and dashes plain, whitespace collapsed (and dropped between
    kana and kanji): how facts are matched."""
    text = " ".join(unicodedata.normalize("NFC", text).translate(_QUOTES).lower().split())
    return _JOINED.sub("", text) if CJK.search(text) else text


def contains(text: str, phrase: str) -> bool:
    """`phrase` in `text` (both normal()), not inside a longer word where the phrase starts or ends
    with a letter or digit ("no" does not match "know", "sé" not "usé"); kana and kanji have no
    word edges ("削除" matches in "パッケージを削除する")."""
    phrase = normal(phrase)
    if not phrase:
        return False
    left = f"(?<!{_LETTER})" if re.match(_LETTER, phrase[0]) else ""
    right = f"(?!{_LETTER})" if re.match(_LETTER, phrase[-1]) else ""
    return re.search(left + re.escape(phrase) + right, normal(text)) is not None


def too_short(evidence: str) -> bool:
    """Under eight words (under sixteen characters' worth where it holds kana or kanji: rag/evaluate.py)."""
    if CJK.search(evidence):
        return len(words(evidence)) < run_of(evidence)
    return len(evidence.split()) < RUN


def facts_met(answer: str, facts: list[list[str]]) -> list[bool]:
    return [any(contains(answer, alt) for alt in alts) for alts in facts]


def split_of(qid: str) -> str:
    return "held" if int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 3 == 0 else "dev"


def load(name: str) -> list[dict]:
    rows = []
    path = ROOT / f"bench/answers-{name}.jsonl"
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            row["set"], row["split"] = name, split_of(row["id"])
            row["answer"] = " ".join(row["evidence"])  # rag/evaluate.py's gold text
            rows.append(row)
    return rows


def document_text(paths: list[Path]) -> str:
    """The documents' text as Hearth reads it (its own loaders), one string."""
    from ingest.loaders import load as load_file

    return "\n".join(s.text for p in paths for s in load_file(p).sections)


def check(name: str) -> list[str]:
    """What is wrong with a set: missing fields, facts or evidence not in the documents, repeats."""
    rows = load(name)
    missing = [p for p in SETS[name] if not p.exists()]
    if missing or not SETS[name]:
        return [f"{name}: documents missing ({', '.join(map(str, missing)) or 'none found'}): run `make testdata`"]
    text = normal(document_text(SETS[name]))
    problems, seen = [], Counter(r["id"] for r in rows)
    for row in rows:
        where = f"{name} {row.get('id')}"
        if seen[row["id"]] > 1:
            problems.append(f"{where}: id used {seen[row['id']]} times")
        if row.get("kind") not in KINDS:
            problems.append(f"{where}: kind must be one of {KINDS}")
        if not row.get("question") or not row.get("facts") or not row.get("evidence"):
            problems.append(f"{where}: needs question, facts and evidence")
            continue
        for alts in row["facts"]:
            if not isinstance(alts, list) or not alts:
                problems.append(f"{where}: a fact must be a non-empty list of alternatives")
            elif not any(contains(text, a) for a in alts):
                problems.append(f"{where}: no alternative of fact {alts} occurs in the documents")
            else:
                absent = [a for a in alts if not contains(text, a)]
                if absent:
                    problems.append(f"{where}: alternatives {absent} of fact {alts} do not occur in the documents")
        for ev in row["evidence"]:
            if too_short(ev):
                problems.append(f"{where}: evidence needs at least eight words (sixteen kana or kanji): {ev!r}")
            elif normal(ev) not in text:
                problems.append(f"{where}: evidence not found in the documents: {ev[:80]!r}")
        if row["kind"] == "two" and len(row["evidence"]) < 2:
            problems.append(f"{where}: a 'two' question needs two evidence strings")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), action="append")
    args = parser.parse_args()
    bad = 0
    for name in args.set or sorted(SETS):
        rows = load(name)
        problems = check(name)
        bad += len(problems)
        kinds = Counter(r["kind"] for r in rows)
        splits = Counter(r["split"] for r in rows)
        print(f"{name}: {len(rows)} questions ({', '.join(f'{k} {kinds[k]}' for k in KINDS)}; "
              f"dev {splits['dev']}, held {splits['held']}): {len(problems)} problems")
        for p in problems:
            print("  " + p)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
