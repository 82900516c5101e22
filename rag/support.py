"""Claim-level support: each sentence of an answer attributed to the passage shown that supports it,
then checked (a sentence nothing shown supports is marked unsupported).

    sentences = check_support(answer_text, passages, embedder)
    sentences[0].supported   # True, False, or None for a sentence that claims nothing ("the documents
                             # don't say")
    sentences[0].span        # (start, end): the supporting characters in the cited passage's text

Sentences are split so that code blocks, list items, abbreviations ("e.g.") and URLs stay whole. Each
passage shown is split into candidate spans: each of its sentences and each two neighbouring ones.
Each candidate is scored against the claim (the sentence less its citation marks):

    coverage     the share of the claim's content words (lower-case, crude suffixes off) in the candidate
    similarity   the cosine of their embeddings (the library's own embedding model, already loaded)
    mismatches   a number the candidate lacks, a different count of negations, a restricting word
                 ("only", "always") it lacks: the cheap ways a claim goes wrong while its words stay
    novel        the claim's specific terms (code, names, upper-case words) found in none of the
                 passages shown nor the question: where a made-up claim usually differs ("Python" for "R")

    support = WEIGHT * coverage + (1 - WEIGHT) * similarity - MISMATCH_COST * mismatches
              - NOVEL_COST * min(novel, 2) - PAIR_COST (for two sentences)
    supported = the best candidate's support >= THRESHOLD (a passage the sentence cites first, then
                any other shown: that one becomes its citation), unless it lies between LOW and HIGH:
                then the model server judges (verify), as far as it can be reached
A fenced code block is one unit: supported when most of the names it uses are in one passage.

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

from ingest import language

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
LEAD_RANK_COST = 0.02  # per place down the passage list: the retriever's order counts a little
NOVEL_COST = 0.5
_NUMBERS = r"\d+(?:\s*[,;]\s*\d+)*"  # the numbers inside a citation mark: "1", "2, 4", "1;3"
CITATION = re.compile(rf"\[({_NUMBERS})\]")  # an answer's citation mark, [1] or [2, 4]: the one grammar (answer.py too)
# A sentence ends at . ! ? and any closing quotes or brackets, before white space and a character that
# is not lower case (citation marks after the stop stay with it), unless the word before the stop is
# an abbreviation ("e.g.", "etc.", "Fig.") or an initial; a URL or a name like read.csv has no space
# after its dots and stays whole. Each line is a sentence of its own (list items, paragraphs), except a
# fenced code block, which is one unit whatever it holds (its lines are not claims of their own).
_STOP = re.compile(rf"(?<=[.!?])[\"')\]\u201d\u2019]*(?:\s*\[{_NUMBERS}\])*(?=\s+[^a-z\s])"
                   rf"|(?<=[\u3002\uff01\uff1f])[\u300d\u300f\uff09]*(?:\s*\[{_NUMBERS}\])*")  # 。！？: no space after
_FENCE = re.compile(r"^[ \t]*(```|~~~).*?(?:^[ \t]*\1[ \t]*$|\Z)", re.S | re.M)
ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf al approx incl resp fig figs no nos sec ch p pp vol eq eqs mr mrs ms dr st jr sr "
    "ca viz esp dept est min max".split())
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.#-]*[A-Za-z0-9+#]|[A-Za-z0-9]")
# Content words in any script: a word of letters and digits (accents kept), or in Chinese and Japanese,
# which put no spaces between words, each two neighbouring characters (as the keyword index does).
_ANY_WORD = re.compile(r"[^\W_][\w+.#-]*(?:[^\W_]|[+#])|[^\W_]")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)*\b|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                     r"twenty|thirty|forty|fifty|hundred|thousand|million|billion|first|second|third|half|once|"
                     r"twice|daily|weekly|monthly|yearly|annually)\b", re.I)
_DIGITS = re.compile(r"\b\d+(?:[.,]\d+)*\b")
_NEGATION = re.compile(r"\b(not|no|never|cannot|can't|isn't|doesn't|don't|won't|without|none|neither|nor)\b", re.I)
_REFUSAL = re.compile(r"(documents?|passages?|sources?|context)\s+(do(es)?\s*n[o']t|does not|do not)\s+(say|mention|"
                      r"contain|cover|answer|provide)|I found nothing|cannot answer|can't answer|no information",
                      re.I)
# Sentences about the passages or the prompt rather than the subject ("The passage that provides this
# information is [1].", the instructions echoed back): a small model writes them after a third of its
# answers on the dev set (bench/answers.py). They claim nothing about the documents: not marked.
_META = re.compile(r"^(?:the|this|that|these)\s+(?:passage|information|source)s?\b[^.]*\b(?:is|are|can be found in|"
                   r"comes? from)\s*(?:in\s+)?(?:passage\s*)?(?:\[\d+\](?:,?\s*\[\d+\])*)?\s*\.?$|"
                   r"\bin two or three short sentences\b|end each sentence with the number", re.I)
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
) | frozenset(  # the most common words of the Debian Reference's other Latin-script languages (German,
    # French, Spanish, Italian, Portuguese): as in English, they would make any two sentences look alike
    "der das den dem des ein eine einen einem einer und oder ist sind wird werden mit von zu zur zum im "
    "in auf für nicht sie es ich wie was wenn dass auch als an bei kann können sich so um aus "
    "le la les un une des de et ou est sont pour par sur dans avec ce cette qui que ne pas vous il elle "
    "on se au aux en comme "
    "el los las unos unas del es por para en que se lo su sus al como más este esta "
    "il lo gli di sono su nel della delle che non si più questo questa "
    "os as um uma do dos das são com em que não se ao como mais este esta".split())


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
    attributed: str = ""  # "added": it cited nothing, "moved": it cited another passage; n is its citation now
    p_yes: float | None = None  # the model judge's P(supported), when it was asked (bench/answers.py calibrates YES)

    def to_json(self) -> dict:
        return {"text": self.text, "citations": self.citations, "supported": self.supported,
                "score": round(self.score, 3), "passage": self.n, "span": list(self.span) if self.span else None,
                "quote": self.quote, "judged_by": self.judged_by, "attributed": self.attributed,
                "p_yes": None if self.p_yes is None else round(self.p_yes, 3)}


def refusal(answer: str) -> bool:
    """True when an answer opens by saying the passages don't answer ("The documents don't say …")."""
    spans = split_sentences(answer)[:2]
    return any(_REFUSAL.search(answer[a:b]) for a, b in spans)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, trailing citation marks kept with their sentence; a
    fenced code block is one piece."""
    spans: list[tuple[int, int]] = []
    at = 0
    for fence in _FENCE.finditer(text):
        spans += _prose_spans(text, at, fence.start())
        spans.append((fence.start(), fence.end()))
        at = fence.end()
    spans += _prose_spans(text, at, len(text))
    # a line that is only citation marks belongs to the sentence before it
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and not CITATION.sub("", text[s:e]).strip(" .,;:"):
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return [(s + len(text[s:e]) - len(text[s:e].lstrip()), s + len(text[s:e].rstrip())) for s, e in merged
            if text[s:e].strip()]


def _prose_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of text[start:end]: at each line break, and at each stop that ends a sentence."""
    spans = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        a, b = start + line.start(), start + line.end()
        cut = a
        for m in _STOP.finditer(text, a, b):
            word = re.search(r"([\w.]+)[.!?]$", text[cut:m.start()] if text[m.start() - 1:m.start()] in ".!?"
                             else text[cut:m.start()].rstrip("\"')]\u201d\u2019"))
            before = word.group(1).lower().rstrip(".") if word else ""
            if (before in ABBREVIATIONS or (len(before) == 1 and before.isalpha())
                    or re.fullmatch(r"[-*+]?\s*\(?\w{1,3}[.)]", text[cut:m.start()].strip())):
                continue  # "e.g. Excel", "J. Smith", a list's "1.": not an end
            spans.append((cut, m.end()))
            cut = m.end()
        spans.append((cut, b))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed words less stopwords. A dotted word ("na.strings") also gives its parts: the model
    often glues a word to a dotted name ("no.Rprofile" for the passage's "no .Rprofile")."""
    words = set()
    for w in (m.group().lower() for m in _ANY_WORD.finditer(language.cjk_bigrams(text))):
        parts = [x for x in w.split(".") if len(x) > 1] if "." in w else []
        words.update(_stem(x) for x in [w, *parts] if x not in STOPWORDS)
    return words


def _terms(text: str) -> str:
    return " ".join(text.split()).lower()


def novel_terms(claim: str, sources: list[str], names: bool = True) -> list[str]:
    """The claim's specific terms (code, names, upper-case words: see _TOKEN) that none of `sources`
    (its cited passages, and the question) contains: where a made-up claim usually differs. names:
    count capitalised words as names (English only: German capitalises every noun, and a sentence in
    one language names few things with the words of a passage in another)."""
    haystack = _terms(" ".join(sources))
    glued = "".join(haystack.split())  # "no.rprofile" is the passage's "no .rprofile" less a space
    out = []
    for i, m in enumerate(_TOKEN.finditer(claim)):
        token = m.group().strip(".-()")
        if len(token) < 2 or token.lower() in STOPWORDS:
            continue
        specific = bool(_CODELIKE.search(token)) or (names and ((i > 0 and token[0].isupper()) or token.isupper()))
        if specific and token.lower() not in haystack and token.lower() not in glued:
            out.append(token)
    return out


def mismatches(claim: str, candidate: str, english: bool = True) -> int:
    """Cheap ways a claim differs from a span whose words it shares: a number the span lacks, a
    different count of negations, a restricting word ("only", "always") the span lacks. Not both in
    English: numbers in digits only (the words and negations listed are English ones)."""
    if not english:
        return bool(set(_DIGITS.findall(claim)) - set(_DIGITS.findall(candidate)))
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
    return " ".join(CITATION.sub(" ", sentence).split())


def check_support(answer: str, passages: list, embedder, question: str = "", verify=None) -> list[Sentence]:
    """Every sentence of `answer` attributed to the passage (Hit objects) that supports it, then marked.

    A sentence is scored against every passage shown, not only those it cites: the model often cites
    once at the end of a paragraph, or the wrong number. Supported by a passage it cites: kept so.
    Else supported by another shown passage: that one becomes its citation ("moved", or "added" for a
    sentence without one; attribute() writes it into the answer). Else it is marked unsupported, its
    best span still given. `embedder` has .embed(list[str]) -> unit vectors; `question`: what was
    asked (its words are not new when an answer repeats them); `verify(context, claim)`: P(the
    context says the claim) from the model server, or None when it can't say (then words decide)."""
    sentences = []
    for s, e in split_sentences(answer):
        text = answer[s:e]
        cited = list(dict.fromkeys(n for m in CITATION.finditer(text) for n in numbers_of(m) if 1 <= n <= len(passages)))
        claim = claim_text(text)
        refusal = bool(_REFUSAL.search(claim)) or bool(_META.search(CITATION.sub("", text).strip())) or not content_words(claim)
        sentences.append(Sentence(text, s, e, cited, None if refusal else False))
    claims = [x for x in sentences if x.supported is not None]
    if not claims or not passages:
        return sentences
    texts = [p.text for p in passages]
    prose = [x for x in claims if not is_code(x.text)]
    for sentence in claims:
        if is_code(sentence.text):
            _check_code(sentence, texts)
    scored = features([claim_text(x.text) for x in prose], [texts] * len(prose), embedder, question)
    judge = [verify]  # dropped after the first time it can't say: words decide the rest, without waiting again
    told = [language.detect(text) for text in texts]
    for sentence, rows in zip(prose, scored):
        said_in = language.of_short(claim_text(sentence.text))
        across = {i for i, lang in enumerate(told) if said_in and lang and lang != said_in}
        _decide(sentence, rows, texts, judge, across)
    return sentences


def _decide(sentence: Sentence, rows: list[tuple], texts: list[str], judge: list, across=frozenset()) -> None:
    """Pick the span a sentence rests on (its own citations first) and mark it (see check_support).
    A sentence resting on a passage in another language (`across`: their indexes) is not judged by
    the model: on German sentences over English passages the 1.5B judge marked right ones wrong
    (precision 0.705 against 0.756 without it) and took 13 s a sentence (docs/decisions.md)."""
    if not rows:
        return
    support = lambda r: combine(*r[2:])  # noqa: E731
    own = [r for r in rows if r[0] + 1 in sentence.citations]
    best_own = max(own, key=support, default=None)
    best_any = max(rows, key=support)
    if best_own is not None and support(best_own) >= THRESHOLD:
        best = best_own
    elif support(best_any) >= THRESHOLD:
        best = best_any
    else:
        best = best_own or best_any
    i, span = best[:2]
    sentence.n, sentence.span, sentence.score = i + 1, span, support(best)
    sentence.quote = " ".join(texts[i][span[0]: span[1]].split())
    sentence.supported, sentence.judged_by = sentence.score >= THRESHOLD, "words"
    if judge[0] is not None and LOW <= sentence.score <= HIGH and i not in across:
        context = " ".join(texts[i][max(0, span[0] - CONTEXT_CHARS): span[1] + CONTEXT_CHARS].split())
        p_yes = judge[0](context, claim_text(sentence.text))
        if p_yes is None:
            judge[0] = None
        else:
            sentence.supported, sentence.judged_by, sentence.p_yes = p_yes >= YES, "model", p_yes
    _cite_support(sentence)


def _cite_support(sentence: Sentence) -> None:
    """A supported sentence cites the passage that supports it: "added" if it cited nothing,
    "moved" if it cited another."""
    if sentence.supported and sentence.n not in sentence.citations:
        sentence.attributed = "moved" if sentence.citations else "added"
        sentence.citations = [sentence.n]


def best_span(question: str, passages: list, embedder) -> Sentence | None:
    """The span of the passages shown (a sentence, or two neighbouring ones) closest to the question
    by the same coverage and similarity as a claim, earlier passages winning ties: the quote shown
    before the model's answer. None when nothing shares a content word with the question."""
    texts = [p.text for p in passages]
    rows = features([question], [texts], embedder)[0] if texts else []
    rows = [r for r in rows if r[2] > 0]  # shares at least one content word with the question
    if not rows:
        return None
    rank = lambda r: combine(r[2], r[3], r[4]) - LEAD_RANK_COST * r[0]  # noqa: E731
    best = max(rows, key=rank)
    i, span = best[:2]
    quote = " ".join(texts[i][span[0]: span[1]].split())
    return Sentence(quote, 0, len(quote), [i + 1], True, combine(*best[2:5]), i + 1, span, quote, "words")


def is_code(text: str) -> bool:
    return text.lstrip().startswith(("```", "~~~"))


_CODE_NAME = re.compile(r"[A-Za-z_][\w.]*[\w]")
CODE_KEYWORDS = frozenset(
    "if else elif for while in do done then fi function return print def end endif endfor endwhile true "
    "false null none and or not library require import from with let var const echo sudo".split())


def _check_code(sentence: Sentence, texts: list[str]) -> None:
    """A code block claims the names it uses: supported when most of its names (functions, commands,
    options) are in one shown passage; with no names to check it claims nothing."""
    names = {m.group().lower() for m in _CODE_NAME.finditer(sentence.text.strip("`~ \n"))} - CODE_KEYWORDS
    names = {n for n in names if len(n) >= 3 and n not in ("python", "bash", "octave", "shell", "console")}
    if not names:
        sentence.supported = None
        return
    shares = [sum(n in text.lower() for n in names) / len(names) for text in texts]
    best = max(range(len(texts)), key=lambda i: (shares[i], i + 1 in sentence.citations))
    sentence.n, sentence.score, sentence.judged_by = best + 1, shares[best], "words"
    sentence.supported = shares[best] >= 0.5
    _cite_support(sentence)


def attribute(answer: str, sentences: list[Sentence]) -> str:
    """The answer with the citations check_support attributed written in: "[n]" added to a sentence
    that had none, or put in place of the marks of one that cited the wrong passage. Offsets of the
    sentences follow. Code blocks are left as written (their citation is in the sentence's record)."""
    out, at, shift = [], 0, 0
    for x in sentences:
        text = x.text
        if x.attributed and not is_code(text):
            bare = " ".join(CITATION.sub(" ", text).split()) if x.attributed == "moved" else text.rstrip()
            bare = re.sub(r"\s+([.,;:!?])", r"\1", bare)
            stop = re.search(r"[.!?]+[\"')\u201d\u2019]*$", bare)
            cut = stop.start() if stop else len(bare)
            text = f"{bare[:cut]} [{x.n}]{bare[cut:]}"
        out.append(answer[at:x.start])
        at = x.end
        x.start += shift
        shift += len(text) - len(x.text)
        x.text, x.end = text, x.start + len(text)
        out.append(text)
    out.append(answer[at:])
    return "".join(out)


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
    # Cosines on the scale the constants above were calibrated on (MiniLM's; e5's are compressed).
    slope, offset = getattr(embedder, "similarity_scale", (1.0, 0.0))
    at = {key: len(claims) + i for i, key in enumerate(order)}
    told = {text: language.detect(text) for text in spans}
    out = []
    for row, (claim, texts) in enumerate(zip(claims, cited)):
        words = content_words(claim)
        said_in = language.of_short(claim)
        english = said_in in ("", "en")
        novel = len(novel_terms(claim, [*texts, question], names=english))
        scored = []
        for i, text in enumerate(texts):
            # A sentence in another language than its passage shares no words with it: its meaning
            # (the multilingual model's vectors) stands for its words.
            across = bool(said_in and told[text] and said_in != told[text])
            for span, pair in spans[text]:
                col = at[(text, span)]
                piece = pieces[col - len(claims)]
                similarity = min(1.0, max(-1.0, slope * float(vectors[row] @ vectors[col]) + offset))
                coverage = similarity if across else _coverage(words, piece_words[col - len(claims)])
                scored.append((i, span, coverage, similarity, pair,
                               mismatches(claim, piece, english and not across), novel))
        out.append(scored)
    return out


def numbers_of(match: re.Match) -> list[int]:
    """The passage numbers of one CITATION match."""
    return [int(x) for x in re.split(r"\s*[,;]\s*", match.group(1))]
