"""Build the retrieval dev set from the R FAQ (Debian's r-doc-pdf, not in this repository).

    .venv/bin/python bench/devset.py [R-FAQ.pdf]   # writes .cache/devset/rfaq-verbatim.jsonl

Each question heading of the FAQ (from the PDF outline, e.g. "2.10 What is CRAN?") becomes a line
{"question", "answer"} whose answer is the text between that heading and the next one, as pypdf
reads it. The hand-written questions, in a user's own words, are in bench/rfaq-handwritten.jsonl
(their answers are spans of the same FAQ text). `hearth eval` scores a collection holding the PDF
itself against either file.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

from ingest.loaders import pdf  # noqa: E402

FAQ = ROOT / ".cache/testdata/root/usr/share/R/doc/manual/R-FAQ.pdf"
OUT = ROOT / ".cache/devset"


def faq_pairs(path: Path) -> list[dict]:
    import pypdf

    starts, titles = pdf._outline_headings(pypdf.PdfReader(str(path)))
    page_at, text = {}, ""
    for section in pdf.load(path).sections:
        page_at.setdefault(section.page, len(text))
        text += " ".join(section.text.split()) + " "
    found = []  # (position of the heading, end of the heading, title) in reading order
    cursor = 0
    for start, title in zip(starts, titles):
        words = [re.escape(w) for w in title.split()]
        # from the heading's own page on: the table of contents repeats every heading
        m = re.compile(r"\s*".join(words)).search(text, max(cursor, page_at.get(start + 1, 0)))
        if m:
            found.append((m.start(), m.end(), title))
            cursor = m.end()
    pairs = []
    for (_, end, title), nxt in zip(found, found[1:] + [(len(text), 0, "")]):
        answer = text[end: nxt[0]].strip()
        answer = re.sub(r"\s\d+(\.\d+)+$", "", answer)  # the next heading's number
        if title.endswith("?") and len(answer.split()) >= 5:
            pairs.append({"question": re.sub(r"^\d+(\.\d+)*\s+", "", title), "answer": answer})
    return pairs


HANDWRITTEN = ROOT / "bench/rfaq-handwritten.jsonl"  # {"question": in a user's words, "faq": the heading}


def main(path: Path):
    print(describe(), flush=True)
    pairs = faq_pairs(path)
    OUT.mkdir(parents=True, exist_ok=True)
    answers = {p["question"]: p["answer"] for p in pairs}
    handwritten = []
    for line in HANDWRITTEN.read_text().splitlines():
        q = json.loads(line)
        handwritten.append({"question": q["question"], "answer": answers[q["faq"]]})
    for name, rows in (("rfaq-verbatim.jsonl", pairs), ("rfaq-handwritten.jsonl", handwritten)):
        (OUT / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{len(rows)} questions -> {OUT / name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else FAQ)
