"""PDF, page by page: pdfium's text first, pypdf's where pdfium gives none or glued words.

pdfium reads a page 14x faster than pypdf (0.9 vs 13.3 ms a page of the R manuals, so the file
reader no longer takes a core from the embedder) and places spaces from glyph positions, where pypdf
decides from the font's space width: fonts with an odd one (common in TeX output) give pypdf
"thepackagemaintenancesystem". The two agree on 97 % of a page's words (median); where they differ
pdfium is the better one (it splits "is,Rprofile.site," and joins words hyphenated at a line end).
pypdf stays for what pdfium does not do for us: the encryption check, its safety limits, the outline,
and any page that pdfium fails on or reads as glued letters (kept when it finds clearly more words).
The outline (bookmarks), where present, gives each page its nearest section heading.
A page with no text but an image on it (a scan) is rendered by pdfium and read by OCR (ocr.py);
pages that have text are never OCR'd. A page drawn with enough lines to hold a ruled table is
searched for tables by pdfplumber: each becomes a table passage (tables.py), and the page's text is
then what lies outside them.
"""

from __future__ import annotations

import bisect
import logging
import re
from pathlib import Path

from . import LoadError, Loaded, Section, ocr
from .tables import table_section

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


def _pdfium_page(path: Path, cache: dict, index: int):
    if "doc" not in cache:
        import pypdfium2

        cache["doc"] = pypdfium2.PdfDocument(str(path))
    return cache["doc"][index]


def _pdfium_text(path: Path, cache: dict, index: int) -> str:
    page = _pdfium_page(path, cache, index)
    try:
        text = page.get_textpage().get_text_range()
    finally:
        page.close()
    # pdfium joins a word hyphenated at a line end and marks the join with U+FFFE: "pack\ufffeages".
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufffe", "")


def _pypdf_text(reader, index: int) -> str | None:
    try:
        return reader.pages[index].extract_text() or ""
    except Exception:
        return None


def pick_text(first: str | None, second: str | None) -> tuple[str, bool]:
    """(the page's text, whether `second` was taken): `first` unless it is missing, blank or glued
    and `second` finds clearly more words."""
    if first is not None and first.strip() and glued_share(first) <= GLUE_SHARE:
        return first, False
    if second is not None and (first is None or len(second.split()) > 1.2 * len(first.split())):
        return second, True
    return first or "", False


def _ocr_text(path: Path, cache: dict, index: int) -> str | None:
    """The OCR'd text of a page that shows an image (None: it shows none, so it is blank)."""
    import pypdfium2.raw as pdfium_c

    page = _pdfium_page(path, cache, index)
    try:
        if next(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3), None) is None:
            return None
        width, height = page.get_size()
        scale = min(ocr.DPI / 72, ocr.MAX_SIDE / max(width, height, 1))
        return ocr.read(page.render(scale=scale).to_pil())
    finally:
        page.close()


MIN_RULES = 8  # drawn paths on a page before it is worth searching for a ruled table


def _may_hold_table(path: Path, cache: dict, index: int) -> bool:
    """Whether the page draws at least MIN_RULES paths (lines, rectangles): a cheap count in pdfium,
    so that pdfplumber (slow) sees only the pages that could hold a ruled table."""
    import pypdfium2.raw as pdfium_c

    page = _pdfium_page(path, cache, index)
    try:
        raw, paths = page.raw, 0
        for i in range(pdfium_c.FPDFPage_CountObjects(raw)):
            if pdfium_c.FPDFPageObj_GetType(pdfium_c.FPDFPage_GetObject(raw, i)) == pdfium_c.FPDF_PAGEOBJ_PATH:
                paths += 1
                if paths >= MIN_RULES:
                    return True
        return False
    finally:
        page.close()


def _tables(path: Path, cache: dict, index: int, heading: str | None) -> tuple[str | None, list[Section]]:
    """(the page's text outside its tables, the tables as sections); (None, []) when it has none."""
    import pdfplumber

    if "plumber" not in cache:
        cache["plumber"] = pdfplumber.open(str(path))
    page = cache["plumber"].pages[index]
    try:
        found = [(t.bbox, t.extract()) for t in page.find_tables()]
        found = [(box, rows) for box, rows in found if len(rows) >= 2 and max(len(r) for r in rows) >= 2]
        if not found:
            return None, []
        boxes = [box for box, _ in found]

        def outside(obj) -> bool:
            middle_x, middle_y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
            return not any(x0 <= middle_x <= x1 and top <= middle_y <= bottom for x0, top, x1, bottom in boxes)

        text = page.filter(lambda obj: obj.get("object_type") != "char" or outside(obj)).extract_text() or ""
        sections = [t for _, rows in found if (t := table_section(rows, page=index + 1, heading=heading))]
        return text, sections
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
OCR_PAGES_PER_PART = 4  # OCR'd pages: so that a long scan shows progress and its passages are embedded as it goes


def _heading_at(index: int, starts: list[int], titles: list[str]) -> str | None:
    at = bisect.bisect_right(starts, index) - 1
    return titles[at] if at >= 0 else None


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
        return [Section(text, page=index + 1, heading=_heading_at(index, starts, titles))]
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
    reread, failed, scanned, unread, table_pages, ocr_failed = [], [], [], 0, [], []
    since_sink = 0  # OCR'd pages not yet handed to the sink (each takes seconds: hand them on soon)
    for index in range(n_pages):
        try:
            text = _pdfium_text(path, pdfium, index)
        except Exception:
            text = None
        if text is None or not text.strip() or glued_share(text) > GLUE_SHARE:
            pdfium_failed = text is None
            text, took_pypdf = pick_text(text, _pypdf_text(reader, index))
            if took_pypdf and text.strip():
                (failed if pdfium_failed else reread).append(index + 1)
        if not text.strip():
            if ocr.out_of_time():
                unread += 1
                continue
            try:
                read = _ocr_text(path, pdfium, index)
            except Exception:  # an image pdfium cannot render, or OCR out of memory: said in a note
                read = None
                ocr_failed.append(index + 1)
            if read is None:
                continue
            scanned.append(index + 1)
            since_sink += 1
            if read.strip():
                sections.append(Section(read, page=index + 1, heading=_heading_at(index, starts, titles), ocr=True))
        else:
            tables: list[Section] = []
            if _may_hold_table(path, pdfium, index):
                try:
                    outside, tables = _tables(path, pdfium, index, _heading_at(index, starts, titles))
                except Exception:  # pdfplumber failing on a page costs its tables, not its text
                    outside, tables = None, []
                if tables:
                    text = outside
                    table_pages.append(index + 1)
            if text.strip():
                sections += _page_sections(text, index, starts, titles)
            sections += tables
        if sink is not None and sections and (len(sections) >= PAGES_PER_PART or since_sink >= OCR_PAGES_PER_PART):
            sink(sections)
            streamed, sections, since_sink = streamed + len(sections), [], 0
    if "plumber" in pdfium:
        pdfium["plumber"].close()
    if "doc" in pdfium:
        pdfium["doc"].close()
    if reread:
        notes.append(f"{len(reread)} page(s) had no or glued words in pdfium; read with pypdf: {_pages(reread)}")
    if failed:
        notes.append(f"pdfium failed on {len(failed)} page(s), read with pypdf: {_pages(failed)}")
    if scanned:
        notes.append(f"{len(scanned)} page(s) read by OCR: {_pages(scanned)}")
    if ocr_failed:
        notes.append(f"{len(ocr_failed)} page(s) showing an image could not be rendered or read by OCR (not "
                     f"searchable; HEARTH_PARSE_MEMORY_MB may be too low): {_pages(ocr_failed)}")
    if table_pages:
        notes.append(f"tables read as tables on {len(table_pages)} page(s): {_pages(table_pages)}")
    if unread:
        notes.append(ocr.stopped_note(len(scanned), len(scanned) + unread))
    if not sections and not streamed:
        if n_pages == 0:
            raise LoadError("PDF has no pages")
        if unread:
            raise LoadError(f"scanned PDF: OCR found no text in the {len(scanned)} page(s) it read before the time "
                            f"limit, of {len(scanned) + unread} (HEARTH_PARSE_TIMEOUT)")
        if scanned:
            raise LoadError(f"scanned PDF: OCR found no text on its {len(scanned)} page(s)")
        raise LoadError("no text found in the PDF (its pages are blank)")
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
