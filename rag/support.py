"""Claim-level support: each sentence of an answer checked against the passages it cites.

    sentences = check_support(answer_text, passages, embedder)
    sentences[0].supported   # True, False, or None for a sentence that claims nothing ("the documents
                             # don't say")
    sentences[0].span        # (start, end): the supporting characters in the cited passage's text

A sentence is split into candidate spans per cited passage: each sentence of the passage and each two
neighbouring ones. Each candidate is scored against the claim (the sentence less its citation marks):

    coverage     the share of the claim's content words (lower-case, crude suffixes off) in the candidate
    similarity   the cosine of their embeddings (the library's own embedding model, already loaded)
    mismatches   a number the candidate lacks, a different count of negations, a restricting word
                 ("only", "always") it lacks: the cheap ways a claim goes wrong while its words stay
    novel        the claim's specific terms (code, names, upper-case words) found in none of the cited
                 passages nor the question: where a made-up claim usually differs ("Python" for "R")

    support = WEIGHT * coverage + (1 - WEIGHT) * similarity - MISMATCH_COST * mismatches
              - NOVEL_COST * min(novel, 2) - PAIR_COST (for two sentences)
    supported = the best candidate's support >= THRESHOLD, unless it lies between LOW and HIGH:
                then the model server judges (verify), as far as it can be reached

The constants were calibrated on bench/support-set.jsonl (249 sentences from the R FAQ dev set: right
citations, swapped ones, falsified claims and the model's own mistakes, read by hand), the mismatch
cost raised from the fitted 0.0 to 0.3 because the set has few changed numbers and an answer that
changes one must not pass. bench/support.py gives precision and recall of the "unsupported" mark,
held out by two-fold cross-validation, and the cost per answer. Everything here runs after the
answer has streamed, so it never delays the first token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

WEIGHT = 0.6
THRESHOLD = 0.59
PAIR_COST = 0.05
# The second stage: a support between LOW and HIGH is for the model server to judge, given the span
# and its surroundings (CONTEXT_CHARS each side); it says "supported" when P(Yes) >= YES. Calibrated
# on the same set with Qwen2.5-Coder-1.5B judging (bench/support.py): 42% of its sentences fall in
# this band, and held out (YES cross-validated) the two stages mark unsupported sentences with
# precision 0.911 and recall 0.950, against 0.837 and 0.866 for words and embeddings alone.
LOW, HIGH, YES = 0.15, 0.90, 0.64
CONTEXT_CHARS = 300
MISMATCH_COST = 0.3
NOVEL_COST = 0.5
_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# A sentence ends at . ! ? followed by space (citation marks after the stop stay with it), or a line.
_BOUNDARY = re.compile(r"(?<=[.!?])(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*\s+(?=\S)|\n+")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.#-]*[A-Za-z0-9+#]|[A-Za-z0-9]")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)*\b|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                     r"twenty|thirty|forty|fifty|hundred|thousand|million|billion|first|second|third|half|once|"
                     r"twice|daily|weekly|monthly|yearly|annually)\b", re.I)
_NEGATION = re.compile(r"\b(not|no|never|cannot|can't|isn't|doesn't|don't|won't|without|none|neither|nor)\b", re.I)
_REFUSAL = re.compile(r"(documents?|passages?|sources?|context)\s+(do(es)?\s*n[o']t|does not|do not)\s+(say|mention|"
                      r"contain|cover|answer|provide)|I found nothing|cannot answer|can't answer|no information",
                      re.I)
# Tokens of a claim that name something specific: code (digits, _ ( ) $ / . # +), capitalised names
# after the first word, upper-case words; and words that restrict a statement.
_TOKEN = re.compile(r"[A-Za-z0-9_$/.()#+-]*[A-Za-z0-9_)#+]")
_CODELIKE = re.compile(r"[0-9_()$/#+]|\w\.\w")
RESTRICTIVE = frozenset("only always never every all none solely exclusively".split())
STOPWORDS = frozenset(
    "a an and are as at be been but by can could do does for from has have how i if in into is it its may "
    "me might must my of on or our should so such than that the their them then there these they this to "
    "us was we were what when where which who why will with would you your also any all more most other "
    "some one use used using".split()
)


@dataclass
class Sentence:
    text: str  # as the answer has it, citation marks included
    start: int  # its character offsets in the answer
    end: int
    citations: list[int]  # the passage numbers it cites (valid ones only)
    supported: bool | None  # None: it claims nothing (the documents don't say)
    score: float = 0.0
    n: int | None = None  # the cited passage holding the support
    span: tuple[int, int] | None = None  # the supporting characters in that passage's text
    quote: str = ""  # those characters
    judged_by: str = ""  # "words" (coverage and embeddings) or "model" (the model server, see LOW/HIGH)

    def to_json(self) -> dict:
        return {"text": self.text, "citations": self.citations, "supported": self.supported,
                "score": round(self.score, 3), "passage": self.n, "span": list(self.span) if self.span else None,
                "quote": self.quote, "judged_by": self.judged_by}


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, trailing citation marks kept with their sentence."""
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        end = m.start() + len(m.group().rstrip())
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    # a line that is only citation marks belongs to the sentence before it
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and not _CITE.sub("", text[s:e]).strip(" .,;:"):
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return [(s + len(text[s:e]) - len(text[s:e].lstrip()), e) for s, e in merged]


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in STOPWORDS}


def _terms(text: str) -> str:
    return " ".join(text.split()).lower()


def novel_terms(claim: str, sources: list[str]) -> list[str]:
    """The claim's specific terms (code, names, upper-case words: see _TOKEN) that none of `sources`
    (its cited passages, and the question) contains: where a made-up claim usually differs."""
    haystack = _terms(" ".join(sources))
    out = []
    for i, m in enumerate(_TOKEN.finditer(claim)):
        token = m.group().strip(".-()")
        if len(token) < 2 or token.lower() in STOPWORDS:
            continue
        specific = bool(_CODELIKE.search(token)) or (i > 0 and token[0].isupper()) or token.isupper()
        if specific and token.lower() not in haystack:
            out.append(token)
    return out


def mismatches(claim: str, candidate: str) -> int:
    """Cheap ways a claim differs from a span whose words it shares: a number the span lacks, a
    different count of negations, a restricting word ("only", "always") the span lacks."""
    numbers = {n.lower() for n in _NUMBER.findall(claim)} - {n.lower() for n in _NUMBER.findall(candidate)}
    negation = len(_NEGATION.findall(claim)) != len(_NEGATION.findall(candidate))
    words = set(_WORD.findall(candidate.lower()))
    restrictive = any(w in RESTRICTIVE and w not in words for w in _WORD.findall(claim.lower()))
    return bool(numbers) + negation + restrictive


def _coverage(claim_words: set[str], candidate_words: set[str]) -> float:
    return len(claim_words & candidate_words) / len(claim_words) if claim_words else 0.0


def candidates(text: str) -> list[tuple[tuple[int, int], bool]]:
    """The spans of a passage a claim may rest on: each sentence, and each two neighbouring ones
    (flagged True: a pair must do better by PAIR_COST, or the quote would grow for nothing)."""
    sentences = split_sentences(text)
    return [(s, False) for s in sentences] + [((a[0], b[1]), True) for a, b in zip(sentences, sentences[1:])]


def claim_text(sentence: str) -> str:
    return " ".join(_CITE.sub(" ", sentence).split())


def check_support(answer: str, passages: list, embedder, question: str = "", verify=None) -> list[Sentence]:
    """Every sentence of `answer` with what supports it among the passages (Hit objects) it cites.
    `embedder` has .embed(list[str]) -> unit vectors (ingest.embedding.Embedder); `question`: what
    was asked (its words are not new when an answer repeats them); `verify(context, claim)`: P(the
    context says the claim) from the model server, or None when it can't say (then words decide)."""
    sentences = []
    for s, e in split_sentences(answer):
        text = answer[s:e]
        cited = list(dict.fromkeys(n for m in _CITE.finditer(text) for n in _numbers(m) if 1 <= n <= len(passages)))
        claim = claim_text(text)
        refusal = bool(_REFUSAL.search(claim)) or not content_words(claim)
        sentences.append(Sentence(text, s, e, cited, None if refusal else False))
    todo = [x for x in sentences if x.supported is not None and x.citations]
    scored = features([claim_text(x.text) for x in todo],
                      [[passages[n - 1].text for n in x.citations] for x in todo], embedder, question)
    for sentence, rows in zip(todo, scored):
        best = max(rows, key=lambda r: combine(*r[2:]), default=None)
        if best is None:
            continue
        i, span = best[:2]
        sentence.n, sentence.span = sentence.citations[i], span
        sentence.score = combine(*best[2:])
        text = passages[sentence.n - 1].text
        sentence.quote = " ".join(text[span[0]: span[1]].split())
        sentence.supported, sentence.judged_by = sentence.score >= THRESHOLD, "words"
        if verify is not None and LOW <= sentence.score <= HIGH:
            context = " ".join(text[max(0, span[0] - CONTEXT_CHARS): span[1] + CONTEXT_CHARS].split())
            p_yes = verify(context, claim_text(sentence.text))
            if p_yes is None:
                verify = None  # unreachable or unable: words decide the rest too, without waiting again
            else:
                sentence.supported, sentence.judged_by = p_yes >= YES, "model"
    return sentences


def combine(coverage: float, similarity: float, pair: bool = False, mismatched: int = 0, novel: int = 0,
            weight: float | None = None, mismatch_cost: float | None = None, novel_cost: float | None = None) -> float:
    """A candidate span's support for a claim (the constants above unless given: bench/support.py)."""
    weight = WEIGHT if weight is None else weight
    mismatch_cost = MISMATCH_COST if mismatch_cost is None else mismatch_cost
    novel_cost = NOVEL_COST if novel_cost is None else novel_cost
    return (weight * coverage + (1 - weight) * similarity - (PAIR_COST if pair else 0.0)
            - mismatch_cost * mismatched - novel_cost * min(novel, 2))


def features(claims: list[str], cited: list[list[str]], embedder, question: str = "") -> list[list[tuple]]:
    """For each claim and each candidate span of the passage texts it cites: (which of its passages,
    (start, end) in that text, coverage, similarity, is a pair, mismatches, novel terms). All texts
    are embedded in one batch."""
    spans = {text: candidates(text) for texts in cited for text in texts}
    order = list(dict.fromkeys((text, span) for texts in cited for text in texts for span, _ in spans[text]))
    if not claims or not order:
        return [[] for _ in claims]
    pieces = [" ".join(text[a:b].split()) for text, (a, b) in order]
    piece_words = [content_words(piece) for piece in pieces]  # once, however many claims cite it
    vectors = np.asarray(embedder.embed(list(claims) + pieces), dtype="float32")
    at = {key: len(claims) + i for i, key in enumerate(order)}
    out = []
    for row, (claim, texts) in enumerate(zip(claims, cited)):
        words = content_words(claim)
        novel = len(novel_terms(claim, [*texts, question]))
        scored = []
        for i, text in enumerate(texts):
            for span, pair in spans[text]:
                col = at[(text, span)]
                piece = pieces[col - len(claims)]
                scored.append((i, span, _coverage(words, piece_words[col - len(claims)]),
                               float(vectors[row] @ vectors[col]), pair,
                               mismatches(claim, piece), novel))
        out.append(scored)
    return out


def _numbers(match: re.Match) -> list[int]:
    return [int(x) for x in re.split(r"\s*[,;]\s*", match.group(1))]
