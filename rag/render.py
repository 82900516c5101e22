"""Text for the app's Markdown, rendered as text: document passages, model answers, file names.

Streamlit renders Markdown with extras (LaTeX between `$`, `:color[...]` directives, emoji
shortcodes), so a passage of R code ("df$x ... y$z") or a document holding HTML would otherwise
be re-interpreted. Document text has every ASCII punctuation mark backslash-escaped, which
CommonMark defines as "show this character literally"; model answers keep their Markdown
(lists, bold, code) but not HTML, math or directives. Nothing here uses unsafe_allow_html.
"""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_CODE = re.compile(r"(```[\s\S]*?(?:```|$)|`[^`\n]*`)")  # fenced blocks and inline code spans
_ANSWER_SPECIAL = re.compile(r"([$<>:\\])")
_WORD = re.compile(r"[A-Za-z0-9]+")
_SENTENCE = re.compile(r"[^.!?;\n]+(?:[.!?;]+|$)")
_STOPWORDS = frozenset(
    "the a an and or of to in on for is are was were be by with as at it its this that from can you your "
    "use used using which not no if then than into also may will".split()
)


def printable(s: str, keep: str = "\n\t") -> str:
    """For a terminal: control and format characters (ANSI escapes, bidi overrides that make
    "txt.exe" read "exe.txt") shown as escapes, never sent raw. `keep` lists those left alone."""
    return "".join(c if c in keep or unicodedata.category(c) not in ("Cc", "Cf") else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in s)


def text(s: str) -> str:
    """Any text (a passage, a file name, an error) as Markdown that displays exactly that text."""
    return _PUNCT.sub(r"\\\1", " ".join(s.split()))


def answer(s: str) -> str:
    """A model's answer as Markdown: its own formatting kept; HTML, `$` math and directives shown as typed."""
    parts = _CODE.split(s)
    return "".join(p if i % 2 else _ANSWER_SPECIAL.sub(r"\\\1", p) for i, p in enumerate(parts))


def _content_words(s: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(s)) if len(w) > 2 and w not in _STOPWORDS}


def claims_citing(answer_text: str, n: int) -> list[str]:
    """The sentences of an answer that cite passage [n]."""
    # "... six years. [1]" and "... six years [1]." both cite [1] for that sentence
    moved = re.sub(r"([.!?])((?:\s*\[\d+\])+)", r"\2\1", answer_text.replace("][", "] ["))
    return [m.group() for m in _SENTENCE.finditer(moved) if f"[{n}]" in m.group()]


def cited_segments(passage: str, claims: list[str]) -> list[tuple[str, bool]]:
    """The passage cut into (text, cited) pieces: for each claim, the passage sentence sharing the most
    content words with it (at least two) is marked as the cited text."""
    passage = " ".join(passage.split())
    sentences = [m for m in _SENTENCE.finditer(passage) if m.group().strip()]
    marked: set[int] = set()
    for claim in claims:
        words = _content_words(re.sub(r"\[\d+\]", " ", claim))
        scored = [(len(words & _content_words(m.group())), i) for i, m in enumerate(sentences)]
        best = max(scored, default=(0, -1))
        if best[0] >= 2:
            marked.add(best[1])
    segments: list[tuple[str, bool]] = []
    pos = 0
    for i in sorted(marked):
        m = sentences[i]
        start = m.start() + len(m.group()) - len(m.group().lstrip())
        if start > pos:
            segments.append((passage[pos:start], False))
        segments.append((passage[start : m.end()], True))
        pos = m.end()
    if pos < len(passage):
        segments.append((passage[pos:], False))
    return segments


def passage(passage_text: str, claims: list[str]) -> str:
    """A passage as Markdown, its cited sentences on a highlighted background."""
    out = []
    for piece, cited in cited_segments(passage_text, claims):
        out.append(f":orange-background[{text(piece)}]" if cited else _spaced(piece))
    return "".join(out)


def _spaced(piece: str) -> str:
    """Escape a piece but keep the single spaces at its ends (they separate it from its neighbours)."""
    lead = " " if piece[:1].isspace() else ""
    trail = " " if piece[-1:].isspace() else ""
    return lead + text(piece) + trail
