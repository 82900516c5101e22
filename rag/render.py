"""Text for the app's Markdown, rendered as text: document passages, model answers, file names.

Nothing a document or a model writes may make the browser (or a Markdown viewer opening an export)
fetch anything: no image, link, autolink, raw HTML, CSS, math (`\\href`), Streamlit directive
(`:red[...]`, `:material/...:`) or emoji shortcode. So every ASCII punctuation mark in their text is
backslash-escaped, which CommonMark defines as "show this character literally". Streamlit (like
GitHub) also turns URLs and e-mail addresses in plain text into links after parsing, escapes or not,
so a word joiner (U+2060, invisible) goes after "http", "www" and the like and before "@": the text
reads the same and links nowhere.

A model's answer keeps only formatting that cannot reach anything: emphasis (`*`, `_`), list and
heading markers at the start of a line, inline code and fenced code blocks. Those are found here,
line by line, and re-emitted with delimiters chosen so that nothing inside can close them early (an
unclosed fence ends with the answer; a backtick run with no partner is plain text). Nothing here
uses unsafe_allow_html.
"""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_BACKTICKS = re.compile(r"`+")
_BLOCK_MARK = re.compile(r"^([ \t]*)(?:(#{1,6})[ \t]+|((?:(?:[-*+]|\d{1,9}[.)])[ \t]+)+))")
_KEEP = re.compile(r"\\([*_])")  # emphasis markers, escaped by _plain, put back
_LINKISH = re.compile(r"(?i)\b(https?|ftps?|file|mailto|data|javascript|vbscript|wss?|tel|sms|blob)(?=:)|\b(www)(?=\.)|(?=@)")
_JOINER = "\u2060"


def printable(s: str, keep: str = "\n\t") -> str:
    """For a terminal: control and format characters (ANSI escapes, bidi overrides that make
    "txt.exe" read "exe.txt") shown as escapes, never sent raw. `keep` lists those left alone."""
    return "".join(c if c in keep or unicodedata.category(c) not in ("Cc", "Cf") else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in s)


def unlinked(s: str) -> str:
    """The text with a word joiner where a viewer would start a link (see above)."""
    return _LINKISH.sub(lambda m: (m.group(1) or m.group(2) or "") + _JOINER, s)


def text(s: str) -> str:
    """Any text (a passage, a file name, an error) as Markdown that displays exactly that text."""
    return _PUNCT.sub(r"\\\1", unlinked(" ".join(s.split())))


_MARK, _BACKED = "\ue000", "\ue001"  # private-use characters: where a mark goes, replaced after escaping
UNSUPPORTED = ":orange-badge[unsupported]"  # the app's marks (Streamlit directives of ours, not the model's)
BACKED = ":green-badge[✓]"


def answer(s: str, marks: list[int] = (), mark: str = UNSUPPORTED, backed: list[int] = (), backed_mark: str = BACKED) -> str:
    """A model's answer as Markdown: emphasis, lists, headings and code kept, nothing else. `marks`:
    offsets in `s` (ends of unsupported sentences) after which `mark` is shown; `backed`: ends of
    supported ones, after which `backed_mark` is shown."""
    s = s.replace(_MARK, "").replace(_BACKED, "")
    for at, char in sorted({(at, _MARK) for at in marks} | {(at, _BACKED) for at in backed}, reverse=True):
        s = s[:at] + char + s[at:]
    return _answer(s).replace(_MARK, " " + mark).replace(_BACKED, " " + backed_mark)


def _answer(s: str) -> str:
    out: list[str] = []
    fence, code = "", []
    for line in s.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence) \
                    and not opening.group(2).strip():
                out.append(_code_block(code))
                fence, code = "", []
            else:
                code.append(line)
        elif opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = opening.group(1)
        else:
            out.append(_answer_line(line))
    if fence:  # unclosed: CommonMark runs it to the end, and so does this
        out.append(_code_block(code))
    return "\n".join(out)


def _answer_line(line: str) -> str:
    mark = _BLOCK_MARK.match(line)
    lead = ""
    if mark:  # "## " or "  - 1. ": rebuilt from known-safe characters, nesting kept
        indent, heading, items = mark.groups()
        lead = heading + " " if heading else (
            "   " * min(len(indent.expandtabs(4)) // 2, 3) + "".join(m + " " for m in re.findall(r"[-*+]|\d+[.)]", items)))
        line = line[mark.end():]
    return lead + _inline(line.strip())


def _inline(line: str) -> str:
    """Code spans (a backtick run closed by a run of the same length on this line) kept as code;
    everything else escaped, emphasis markers put back."""
    out, pos = [], 0
    while True:
        run = _BACKTICKS.search(line, pos)
        if run is None:
            break
        close = next((m for m in _BACKTICKS.finditer(line, run.end()) if len(m.group()) == len(run.group())), None)
        if close is None:
            break  # no partner: the rest is text, backticks included
        out.append(_plain(line[pos:run.start()]) + _code_span(line[run.end():close.start()]))
        pos = close.end()
    out.append(_plain(line[pos:]))
    return "".join(out)


def _plain(piece: str) -> str:
    return _KEEP.sub(r"\1", _PUNCT.sub(r"\\\1", unlinked(piece)))


def _code_span(content: str) -> str:
    if not content.strip():
        return _plain(content)
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", content)), default=0) + 1)
    pad = " " if content[0] in "` " or content[-1] in "` " else ""
    return f"{ticks}{pad}{content}{pad}{ticks}"


def _code_block(lines: list[str]) -> str:
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", "\n".join(lines))), default=0) + 1)
    return "\n".join([fence, *lines, fence])


def passage(passage_text: str, spans: list[tuple[int, int]] = ()) -> str:
    """A passage as Markdown, the characters of `spans` (offsets in passage_text: what supports the
    answer's sentences) on a highlighted background."""
    out, pos = [], 0
    for a, b in sorted(set(spans)):
        a = max(a, pos)
        if b <= a:
            continue
        if a > pos:
            out.append(_spaced(" ".join(passage_text[pos:a].split()) + (" " if passage_text[a - 1].isspace() else "")))
        out.append(f":orange-background[{text(passage_text[a:b])}]")
        pos = b
    if pos < len(passage_text):
        rest = passage_text[pos:]
        out.append(_spaced((" " if rest[:1].isspace() else "") + " ".join(rest.split())))
    return "".join(out).strip()


def _spaced(piece: str) -> str:
    """Escape a piece but keep the single spaces at its ends (they separate it from its neighbours)."""
    lead = " " if piece[:1].isspace() else ""
    trail = " " if piece[-1:].isspace() else ""
    return lead + text(piece) + trail
