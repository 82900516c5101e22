"""PDF, page by page with pypdf; pages whose words came out glued are re-read with pdfium.

pypdf decides where a space goes from the gap between glyphs and the font's space width. Fonts with
an odd space width (common in TeX output) defeat that and give "thepackagemaintenancesystem". Such a
page has most of its letters in implausibly long runs; for those pages (only) we ask pdfium, which
places spaces from glyph positions, and keep its text when it finds clearly more words.
The outline (bookmarks), where present, gives each page its nearest section heading.
"""

from __future__ import annotations

import bisect
import logging
import re
from pathlib import Path

from . import LoadError, Loaded, Section

_LETTER_RUN = re.compile(r"[^\W\d_]+")
GLUE_RUN = 20  # letters: English words this long are rare, glued runs are common
GLUE_SHARE = 0.25  # a page is suspect when this share of its letters sits in such runs


def glued_share(text: str) -> float:
    """Share of letters in runs of GLUE_RUN or more letters."""
    runs = _LETTER_RUN.findall(text)
    letters = sum(map(len, runs))
    if letters < 200:
        return 0.0
    return sum(len(r) for r in runs if len(r) >= GLUE_RUN) / letters


def _pdfium_text(path: Path, cache: dict, index: int) -> str:
    if "doc" not in cache:
        import pypdfium2

        cache["doc"] = pypdfium2.PdfDocument(str(path))
    page = cache["doc"][index]
    try:
        return page.get_textpage().get_text_range().replace("\r\n", "\n").replace("\r", "\n")
    finally:
        page.close()


def _outline_headings(reader) -> tuple[list[int], list[str]]:
    """(sorted 0-based start pages, titles) from the PDF outline; empty when there is none."""
    marks: list[tuple[int, str]] = []

    def walk(items):
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            if page is not None and page >= 0 and getattr(item, "title", None):
                marks.append((page, " ".join(str(item.title).split())))

    try:
        walk(reader.outline)
    except Exception:  # a broken outline must not cost us the text
        return [], []
    marks.sort(key=lambda m: m[0])  # stable: within a page, outline order is kept
    return [m[0] for m in marks], [m[1] for m in marks]


PAGES_PER_PART = 32  # pages handed to a sink at a time (see loaders.load)


def _page_sections(text: str, index: int, starts: list[int], titles: list[str]) -> list[Section]:
    """A page's text cut where the outline's headings for this page begin in it, so that a heading
    starts its passage instead of ending the one before (the R FAQ's questions are such headings).
    The text before the first of them keeps the heading in force from earlier pages."""
    before = bisect.bisect_left(starts, index) - 1
    cuts, cursor = [], 0
    for j in range(before + 1, bisect.bisect_right(starts, index)):
        words = [re.escape(w) for w in titles[j].split()]
        found = re.compile(r"\s*".join(words)).search(text, cursor) if words else None
        if found:
            number = re.search(r"(?:^|\s)(\d+(?:\.\d+)*\s*)$", text[cursor:found.start()])  # "2.5.1 " before it
            cuts.append((found.start() - (len(number.group(1)) if number else 0), titles[j]))
            cursor = found.end()
    heading = titles[before] if before >= 0 else None
    if not cuts:
        return [Section(text, page=index + 1, heading=titles[bisect.bisect_right(starts, index) - 1]
                        if bisect.bisect_right(starts, index) > 0 else None)]
    out = [Section(text[: cuts[0][0]], page=index + 1, heading=heading)] if text[: cuts[0][0]].strip() else []
    pending = None  # a heading with no text of its own ("2.5 How can R be installed?" before 2.5.1)
    for (at, title), (end, _) in zip(cuts, cuts[1:] + [(len(text), None)]):
        start = pending if pending is not None else at
        if end < len(text) and len(text[at:end].split()) <= len(title.split()) + 1:
            pending = start
            continue
        out.append(Section(text[start:end], page=index + 1, heading=title, start=start))
        pending = None
    return out


def load(path: Path, sink=None) -> Loaded:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on odd PDFs are noise to users
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            # Many PDFs are encrypted with an empty user password (only printing/copying restricted).
            if not reader.decrypt(""):
                raise LoadError("encrypted PDF; needs a password")
        n_pages = len(reader.pages)
    except LoadError:
        raise
    except (FileNotDecryptedError, DependencyError):
        raise LoadError("encrypted PDF; needs a password") from None
    except LimitReachedError:  # e.g. a page tree listing the same page a billion times
        raise LoadError("PDF claims more pages or objects than any real document has (pypdf's safety "
                        "limit); not read") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        # pdfium rebuilds some damaged files (broken xref table, page tree) that pypdf gives up on.
        return _load_damaged(path, f"{type(exc).__name__}: {str(exc)[:120]}")

    starts, titles = _outline_headings(reader)
    sections, pdfium, notes, streamed = [], {}, [], 0
    reextracted, failed = [], []
    for index in range(n_pages):
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception:
            text = None
        if text is None or glued_share(text) > GLUE_SHARE:
            try:
                alt = _pdfium_text(path, pdfium, index)
            except Exception:
                alt = ""
            if text is None or len(alt.split()) > 1.2 * len(text.split()):
                (failed if text is None else reextracted).append(index + 1)
                text = alt
        if not text.strip():
            continue
        sections += _page_sections(text, index, starts, titles)
        if sink is not None and len(sections) >= PAGES_PER_PART:
            sink(sections)
            streamed, sections = streamed + len(sections), []
    if "doc" in pdfium:
        pdfium["doc"].close()
    if reextracted:
        notes.append(f"{len(reextracted)} page(s) had glued words; re-read with pdfium: {_pages(reextracted)}")
    if failed:
        notes.append(f"pypdf failed on {len(failed)} page(s), read with pdfium: {_pages(failed)}")
    if not sections and not streamed:
        if n_pages == 0:
            raise LoadError("PDF has no pages")
        raise LoadError("no text layer; needs OCR (scanned or image-only PDF)")
    return Loaded(sections, pages=n_pages, notes=notes, streamed=streamed)


def _load_damaged(path: Path, why: str) -> Loaded:
    import pypdfium2

    try:
        doc = pypdfium2.PdfDocument(str(path))
    except Exception:
        raise LoadError(f"corrupt or unreadable PDF ({why})") from None
    try:
        cache = {"doc": doc}
        sections = [Section(text, page=i + 1) for i in range(len(doc)) if (text := _pdfium_text(path, cache, i)).strip()]
    except pypdfium2.PdfiumError as exc:
        raise LoadError(f"corrupt or unreadable PDF ({why}; pdfium: {exc})") from None
    else:
        if not sections:
            raise LoadError(f"corrupt or unreadable PDF ({why})")
        return Loaded(sections, pages=len(doc), notes=[f"damaged PDF ({why}); read with pdfium"])
    finally:
        doc.close()


def _pages(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
