"""Loaders on generated files of every format and on real TeX-made PDFs."""

from __future__ import annotations

import re

import pytest

from ingest import loaders
from ingest.chunking import Chunker, split_sentences
from ingest.loaders.pdf import GLUE_SHARE, glued_share
from make_files import damaged_pdf, docx_file, glued_pdf, text_pdf

SENTENCE = "the package maintenance system keeps track of installed software on every machine"


def test_pdf_pages_and_outline_headings(tmp_path):
    pdf = text_pdf(tmp_path / "a.pdf", ["Alpha page talks about apples.", "", "Gamma page talks about grapes."], title="Chapter")
    loaded = loaders.load(pdf)
    assert loaded.pages == 3
    assert [(s.page, s.heading) for s in loaded.sections] == [(1, "Chapter 1"), (3, "Chapter 3")]
    assert "grapes" in loaded.sections[1].text


def test_font_with_odd_space_width_reads_with_its_spaces(tmp_path):
    import pypdf

    pdf = glued_pdf(tmp_path / "glued.pdf", SENTENCE)
    raw = pypdf.PdfReader(str(pdf)).pages[0].extract_text()
    assert "packagemaintenancesystem" in raw  # the defect is real in pypdf: pdfium is read first
    assert glued_share(raw) > GLUE_SHARE
    loaded = loaders.load(pdf)
    assert "the package maintenance system keeps track" in " ".join(loaded.sections[0].text.split())
    assert loaded.notes == []


def test_pypdf_reads_the_pages_pdfium_cannot():
    from ingest.loaders.pdf import pick_text

    glued = "thepackagemaintenancesystemkeepstrackofeverything " * 20
    spaced = "the package maintenance system keeps track of everything " * 20
    assert pick_text(spaced, None) == (spaced, False)  # pdfium's good text: pypdf never asked
    assert pick_text(glued, spaced) == (spaced, True)
    assert pick_text(None, spaced) == (spaced, True)  # pdfium failed on the page
    assert pick_text("", spaced) == (spaced, True)
    assert pick_text(glued, glued) == (glued, False)  # no better: pdfium's stays
    assert pick_text(None, None) == ("", False)  # neither: blank, so OCR gets its turn


def test_hyphenation_marks_are_joined(manuals):
    """pdfium marks a word split at a line end with U+FFFE; the text has the whole word."""
    loaded = loaders.load(manuals / "R-intro.pdf")
    text = " ".join(s.text for s in loaded.sections)
    assert "\ufffe" not in text and " packages supplied" in text


def test_damaged_pdf_that_pypdf_rejects_is_rebuilt_by_pdfium(tmp_path):
    loaded = loaders.load(damaged_pdf(tmp_path / "damaged.pdf", ["Damaged but readable.", "Page two survives."]))
    assert [(s.page, s.text.strip()) for s in loaded.sections] == [(1, "Damaged but readable."), (2, "Page two survives.")]
    assert "damaged PDF" in loaded.notes[0]


def test_glue_detector_quiet_on_real_pdfs(manuals):
    """No false alarms on real manuals full of code and long identifiers (sample of pages)."""
    import pypdf

    for name in ("R-intro.pdf", "R-exts.pdf", "refman.pdf"):
        reader = pypdf.PdfReader(str(manuals / name))
        for index in range(0, len(reader.pages), 7):
            share = glued_share(reader.pages[index].extract_text() or "")
            assert share < GLUE_SHARE, (name, index + 1, share)


def test_real_pdf_sections_pages_and_headings(manuals):
    loaded = loaders.load(manuals / "R-FAQ.pdf")
    assert loaded.pages == 52 and loaded.notes == []
    by_page = {s.page: s for s in loaded.sections}
    assert by_page[13].heading == "What is CRAN?"
    assert "Comprehensive R Archive Network" in by_page[13].text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le", "cp1252"])
def test_text_encodings(tmp_path, encoding):
    text = "Crème brûlée recipe: heat the cream, whisk the yolks; naïve façade.\n" * 30
    path = tmp_path / f"note-{encoding}.txt"
    path.write_bytes(text.encode(encoding))
    got = loaders.load(path).sections[0].text
    assert "heat the cream" in got and "whisk the yolks" in got
    if encoding not in ("latin-1", "cp1252"):  # single-byte code pages are a best guess
        assert "Crème brûlée" in got


def test_markdown_headings_ignore_code_fences(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n```sh\n# not a heading\nmake\n```\n\n### Linux\n\nUse apt.\n")
    sections = loaders.load(path).sections
    assert [s.heading for s in sections] == ["Guide", "Guide > Install", "Guide > Install > Linux"]
    text = path.read_text()
    for s in sections:
        assert text[s.start : s.start + len(s.text)] == s.text


def test_rst_headings(tmp_path):
    path = tmp_path / "doc.rst"
    path.write_text("Title\n=====\n\nIntro text.\n\nUsage\n-----\n\nCall the function.\n")
    sections = loaders.load(path).sections
    assert [s.heading for s in sections] == ["Title", "Usage"]


def test_html_visible_text_only(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>T</title><style>body{color:red}</style><script>var secret=1;</script></head>"
        "<body><h1>Orchard</h1><p>Apples &amp; pears grow here.</p><noscript>enable js</noscript>"
        "<h2>Care</h2><p>Prune in <b>winter</b>.</p><script>alert('x')</script></body></html>"
    )
    sections = loaders.load(path).sections
    text = "\n".join(s.text for s in sections)
    assert "Apples & pears grow here." in text and "Prune in winter." in text
    assert "secret" not in text and "alert" not in text and "color" not in text and "enable js" not in text
    assert [s.heading for s in sections if "Prune" in s.text] == ["Care"]


def test_docx_headings_and_tables(tmp_path):
    path = docx_file(tmp_path / "report.docx", [("Summary", ["Sales rose."]), ("Costs", ["Rent fell."])],
                     table=[["item", "euros"], ["rent", "900"]])
    sections = loaders.load(path).sections
    assert [s.heading for s in sections if s.text.strip()] == ["Summary", "Costs", "Costs"]
    assert sections[-1].header == "| item | euros |\n| --- | --- |" and "| rent | 900 |" in sections[-1].text


def _epub_with_encoded_hrefs(path):
    """An EPUB whose package names its chapters by URL (spaces as %20, as Sigil and Calibre write them),
    with one chapter of the reading order missing from the archive."""
    import zipfile

    chapter = ('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>{0}</title></head>'
               "<body><h1>{0}</h1><p>{1}</p></body></html>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        z.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" '
                   'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile '
                   'full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
        items = [("c1", "Text/Chapter%201.xhtml"), ("c2", "Text/Caf%C3%A9%20%26%20Bar.xhtml"), ("c3", "Text/Lost.xhtml")]
        z.writestr("OEBPS/content.opf", '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
                   '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Lighthouses</dc:title></metadata><manifest>'
                   + "".join(f'<item id="{i}" href="{h}" media-type="application/xhtml+xml"/>' for i, h in items)
                   + "</manifest><spine>" + "".join(f'<itemref idref="{i}"/>' for i, _ in items) + "</spine></package>")
        z.writestr("OEBPS/Text/Chapter 1.xhtml", chapter.format("The Keeper", "The keeper trimmed the wick at dusk."))
        z.writestr("OEBPS/Text/Café & Bar.xhtml", chapter.format("The Café", "Fishermen met in the café by the quay."))
    return path


def test_epub_chapters_named_by_percent_encoded_hrefs(tmp_path, ingest, library):
    book = _epub_with_encoded_hrefs(tmp_path / "lighthouses.epub")
    loaded = loaders.load(book)
    assert [s.heading for s in loaded.sections] == ["The Keeper", "The Café"]
    assert "trimmed the wick" in loaded.sections[0].text and "by the quay" in loaded.sections[1].text
    assert loaded.notes == ["1 chapter of its reading order is not in the archive, not read: OEBPS/Text/Lost.xhtml"]
    report = ingest(book)
    assert [r.status for r in report.results] == ["added"]
    assert library.documents()[0].notes == loaded.notes[0]  # told in `hearth docs`, not silent
    assert "Fishermen met in the café by the quay." in " ".join(library.texts(
        library.collection.get(where={"source": str(book)}, include=[])["ids"]).values())


def test_chunks_fit_the_model_and_offsets_point_into_the_page(embedder, manuals):
    loaded = loaders.load(manuals / "R-data.pdf")
    chunks = Chunker(192, 24, embedder.tokenize).chunk(loaded.sections)
    assert len(chunks) > len(loaded.sections)
    pages: dict[int, str] = {}  # each page's text, rebuilt from its sections and their offsets
    for sec in loaded.sections:
        text = pages.get(sec.page, "")
        pages[sec.page] = text.ljust(sec.start) + sec.text
    for c in chunks:
        assert len(embedder.tokenize(c.text)) <= 192
        assert pages[c.page][c.start : c.end] == c.text
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_sentences_split_where_a_sentence_ends_and_keep_every_character():
    text = ('It works. See e.g. the manual (Section 2.1!) and "quoted." Then? Fig. 3 shows it.\n'
            "Next line  after two spaces. und.\tTab")
    pieces = split_sentences(text)
    assert "".join(pieces) == text  # offsets of chunks depend on it
    assert pieces == ["It works. ", "See e.g. the manual (Section 2.1!) and \"quoted.\" ", "Then? ", "Fig. ",
                      "3 shows it.\n", "Next line  after two spaces. und.\t", "Tab"]
    assert split_sentences("") == [] and split_sentences("no end") == ["no end"]


def test_a_heading_starts_its_passage_and_a_section_that_fits_is_one(embedder, manuals):
    """The R FAQ's questions are outline headings: each starts a section (with its number), so no
    passage ends with the next question, and a short question-and-answer is one passage."""
    import pypdf

    from ingest.loaders import pdf

    loaded = loaders.load(manuals / "R-FAQ.pdf")
    _, titles = pdf._outline_headings(pypdf.PdfReader(str(manuals / "R-FAQ.pdf")))
    starting = [s for s in loaded.sections if s.start > 0]
    def unnumbered(text):
        return re.sub(r"^\d+(\.\d+)*\s+", "", " ".join(text.split()))

    assert len(starting) > 60
    # each starts with its heading (or with the bare heading above it, "2.5 How can R be installed?")
    assert all(" ".join(s.heading.split()) in unnumbered(s.text)[:200] for s in starting)
    chunks = Chunker(192, 24, embedder.tokenize).chunk(loaded.sections)
    for c in chunks:
        last_line = c.text.strip().split("\n")[-1].strip()
        assert not any(last_line.endswith(t) for t in titles if len(t) > 12), last_line
    cran = [c for c in chunks if c.heading == "What is CRAN?"]
    assert cran[0].text.startswith("2.10 What is CRAN?")
    assert len([c for c in chunks if c.heading == "Why is R named R?"]) == 1  # it fits: one passage
