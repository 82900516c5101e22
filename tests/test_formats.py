"""Documents people have (issue 19): scans and photos read by OCR, tables kept as tables, slides,
spreadsheets, e-books, OpenDocument and mail. Real files written by real libraries (make_files.py),
real pages of Debian's R manuals, the real OCR engine, embedder and Chroma store."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import OCTAVE, run_hearth, store_snapshot
from ingest import loaders, reader, write
from ingest.chunking import Chunker
from ingest.loaders import sheets
from ingest.pipeline import Ingestor
from ingest.settings import load_settings
from make_files import (epub_file, mail_message, mbox_file, odt_file, ods_file, page_images, pptx_file,
                        scanned_pdf, table_pdf, text_pdf, xlsx_file)
from rag.retrieval import search

PRICES = [["Item", "Supplier", "Price"], ["Boiler service", "Northside Heating", "95 euros"],
          ["Chimney sweep", "Ash and Sons", "60 euros"], ["Window cleaning", "Clearview", "40 euros"]]


def words(text: str) -> str:
    return " ".join(text.split())


def test_a_scanned_pdf_is_read_by_ocr_and_its_text_pages_are_not(tmp_path, manuals):
    scan = page_images(manuals / "R-intro.pdf", [11])  # page 12 of R-intro: "The recall and editing capabilities ..."
    pdf = scanned_pdf(tmp_path / "mixed.pdf", scan, text_pages=["The text page says the meter is read in May."])
    loaded = loaders.load(pdf)
    assert [(s.page, s.ocr) for s in loaded.sections] == [(1, False), (2, True)]
    assert "The recall and editing capabilities under UNIX are highly customizable" in words(loaded.sections[1].text)
    assert any("1 page(s) read by OCR: 2" in n for n in loaded.notes)


_READ_IN_THE_READER = """
import sys
from ingest import reader
from ingest.loaders import ocr
reader.limit_and_load(float(sys.argv[1]))
text = ocr.read(ocr.fit(__import__("PIL.Image").Image.open(sys.argv[2])))
print(type(ocr.engine().text_rec.session).__name__, " ".join(text.split()))
"""


def test_ocr_runs_on_openvino_within_the_readers_memory_limit_and_on_onnx_runtime_below(tmp_path, manuals):
    """OpenVINO reserves more address space than it uses: the reader's default limit leaves room for it,
    and a user's lower limit keeps OCR working on ONNX Runtime instead of failing every page."""
    page_images(manuals / "R-intro.pdf", [11])[0].save(tmp_path / "page.png")
    for limit, runtime in ((load_settings().parse_memory_mb, "_OpenVINO"), (1536, "OrtInferSession")):
        got = subprocess.run([sys.executable, "-P", "-c", _READ_IN_THE_READER, str(limit), str(tmp_path / "page.png")],
                             env=reader.child_env(), capture_output=True, text=True, timeout=300)
        assert got.returncode == 0, got.stderr[-2000:]
        assert got.stdout.startswith(runtime) and "recall and editing capabilities under UNIX" in got.stdout, got.stdout


def test_a_scan_is_searchable_as_it_is_read_and_read_again_whole_when_cut_short(tmp_path, manuals, open_library,
                                                                                 embedder, monkeypatch):
    monkeypatch.setattr(write, "SCAN_RECORD_S", 0.0)  # each part of OCR'd pages (4) recorded as it comes
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf = scanned_pdf(docs / "scan.pdf", page_images(manuals / "R-intro.pdf", [11, 12, 13, 14, 15]))
    # A collection whose model is chosen (a new one left to choose waits for its first documents' languages)
    lib = open_library(embed_model=embedder.name)
    phrase = "recall and editing capabilities under UNIX"  # the scan's first page

    class Killed(Exception):
        pass

    def progress(path, done, total, chunks, pages):
        if pages == 5 and not done:  # the fifth page read; the first four are written and recorded
            rec = lib.files.get(str(pdf))
            assert rec.notes == "being read: 4 page(s) so far" and rec.chunks == lib.collection.count()
            hit = search(lib, phrase, k=1)[0]
            assert hit.source == str(pdf) and hit.page == 1 and hit.ocr
            raise Killed  # as a kill would: the rest is never written

    with pytest.raises(Killed):
        Ingestor(lib, progress).sync([docs])
    again = Ingestor(open_library(embed_model=embedder.name)).sync([docs])  # the partial record is a changed file: read again whole
    assert [(r.path, r.status) for r in again.results] == [(str(pdf), "updated")]
    got = store_snapshot(lib)
    assert got["journal"] == [] and got["orphans"] == [] and len(got["documents"]) == 1
    rec = lib.files.get(str(pdf))
    assert rec.notes == "5 page(s) read by OCR: 1, 2, 3, 4, 5" and rec.chunks == lib.collection.count()
    rows = {(path, chunk) for path, chunk, _ in got["keywords"]}  # the partial document's rows gone with it
    assert len(rows) == len(got["keywords"]) <= rec.chunks and {path for path, _ in rows} == {str(pdf)}
    assert search(lib, phrase, k=1)[0].page == 1


def test_images_are_read_by_ocr_multi_page_tiff_page_by_page(tmp_path, manuals):
    first, second = page_images(manuals / "R-intro.pdf", [11, 12])
    first.save(tmp_path / "page.png")
    first.convert("RGB").save(tmp_path / "photo.jpg", quality=80)
    first.save(tmp_path / "both.tiff", save_all=True, append_images=[second])
    assert "highly customizable" in words(loaders.load(tmp_path / "photo.jpg").sections[0].text)
    tiff = loaders.load(tmp_path / "both.tiff")
    assert tiff.pages == 2 and [s.page for s in tiff.sections] == [1, 2] and all(s.ocr for s in tiff.sections)
    for ext in ("webp", "bmp"):
        first.save(tmp_path / f"page.{ext}")
        assert "highly customizable" in words(loaders.load(tmp_path / f"page.{ext}").sections[0].text)


def test_tables_keep_their_header_in_every_chunk(embedder):
    rows = [["Town", "Population", "Mayor"]] + [[f"Town {i}", str(1000 + i), f"Mayor number {i}"] for i in range(300)]
    table = loaders.tables.table_section(rows, page=1, heading="Towns")
    chunks = Chunker(120, 20, embedder.tokenize).chunk([table])
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text.startswith("| Town | Population | Mayor |\n| --- | --- | --- |\n")
        assert len(embedder.tokenize(chunk.text)) <= 120
    body = [line for c in chunks for line in c.text.split("\n")[2:]]
    assert body == table.text.split("\n")[2:]  # every row once, in order, none cut


def test_tables_in_pdf_word_html_and_sheets_stay_tables(tmp_path):
    from make_files import docx_file

    pdf = table_pdf(tmp_path / "costs.pdf", "What the house costs each year.", PRICES)
    found = [s for s in loaders.load(pdf).sections if s.header]
    assert found and found[0].header.startswith("| Item | Supplier | Price |")
    assert "| Chimney sweep | Ash and Sons | 60 euros |" in found[0].text
    page_text = [s for s in loaders.load(pdf).sections if not s.header][0].text
    assert "What the house costs" in page_text and "Ash and Sons" not in page_text  # not read twice
    docx = docx_file(tmp_path / "costs.docx", [("Costs", ["What the house costs."])], table=PRICES)
    assert "| Chimney sweep | Ash and Sons | 60 euros |" in [s for s in loaders.load(docx).sections if s.header][0].text
    html = tmp_path / "costs.html"
    html.write_text("<h2>Costs</h2><table><tr><th>Item</th><th>Supplier</th><th>Price</th></tr>"
                    + "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in PRICES[1:]) + "</table>")
    table = [s for s in loaders.load(html).sections if s.header][0]
    assert table.heading == "Costs" and "| Window cleaning | Clearview | 40 euros |" in table.text


def test_a_real_html_table_from_debians_octave_manual():
    page = OCTAVE / "octave.html" / "Keywords.html"
    if not page.is_file():
        pytest.fail("run `make testdata` (octave-doc)")
    tables = [s for s in loaders.load(page).sections if s.header]
    assert tables and all(s.text.count("\n") >= 3 for s in tables)
    assert any("endfunction" in s.text for s in tables)


def test_slides_sheets_ebooks_and_opendocument(tmp_path):
    deck = loaders.load(pptx_file(tmp_path / "talk.pptx", [
        ("Budget", "We spend less on heating this year.", "Mention the new boiler."),
        ("Suppliers", "Three firms look after the house.", "Ask about the sweep.")], table=PRICES))
    assert deck.pages == 2 and [s.page for s in deck.sections if not s.header] == [1, 2]
    assert deck.sections[0].heading == "Slide 1: Budget" and "Speaker notes: Mention the new boiler." in deck.sections[0].text
    assert any(s.header and s.page == 2 and "Ash and Sons" in s.text for s in deck.sections)

    book = loaders.load(xlsx_file(tmp_path / "house.xlsx", {"Costs": PRICES, "Readings": [["Month", "kWh"], ["May", 312.0]]}))
    assert [(s.page, s.heading) for s in book.sections] == [(1, "Costs"), (2, "Readings")]
    assert "| May | 312 |" in book.sections[1].text
    (tmp_path / "costs.csv").write_text("\n".join(";".join(r) for r in PRICES), encoding="cp1252")
    assert "| Boiler service | Northside Heating | 95 euros |" in loaders.load(tmp_path / "costs.csv").sections[0].text
    ods = loaders.load(ods_file(tmp_path / "house.ods", {"Costs": PRICES}))
    assert ods.sections[0].heading == "Costs" and ods.sections[0].text.count("\n") == len(PRICES)  # repeats not expanded

    odt = loaders.load(odt_file(tmp_path / "notes.odt", [("Heating", ["The boiler is serviced in October."]),
                                                         ("Garden", ["The hedge is cut in June."])], table=PRICES))
    assert [s.heading for s in odt.sections if not s.header and s.text] == ["Heating", "Garden"]
    assert any(s.header and "Clearview" in s.text for s in odt.sections)

    epub = loaders.load(epub_file(tmp_path / "book.epub", [
        ("The Old House", "<p>The house was built in 1902.</p>"),
        ("The Garden", "<p>Roses grow by the south wall.</p><table><tr><th>Plant</th><th>Month</th></tr>"
                       "<tr><td>Roses</td><td>June</td></tr></table>")]))
    chapters = [s for s in epub.sections if not s.header]
    assert [s.heading for s in chapters] == ["The Old House", "The Garden"] and "built in 1902" in chapters[0].text
    assert any(s.header and "| Roses | June |" in s.text for s in epub.sections)


def test_mail_messages_with_sender_date_subject_and_attachments(tmp_path):
    sheet = xlsx_file(tmp_path / "readings.xlsx", {"Meter": [["Month", "kWh"], ["April", 298]]})
    eml = tmp_path / "one.eml"
    eml.write_bytes(mail_message("Meter readings", "Here are this spring's readings.",
                                 attachments=[("readings.xlsx", sheet.read_bytes()), ("tool.exe", b"MZ\x90\x00")]))
    loaded = loaders.load(eml)
    first = loaded.sections[0]
    assert first.heading == "Meter readings"
    assert first.text.startswith("From: Ada <ada@example.org>\nTo: Bob <bob@example.org>\nDate: Wed, 04 Mar 2026")
    assert "Subject: Meter readings" in first.text and "this spring's readings" in first.text
    attached = loaded.sections[1]
    assert attached.heading == "Meter readings — readings.xlsx — Meter" and "| April | 298 |" in attached.text
    box = loaders.load(mbox_file(tmp_path / "archive.mbox", [
        mail_message("Sweep booked", "The sweep comes on Friday."),
        mail_message("Roof", "The roofer quoted 800 euros.", sender="Cy <cy@example.org>")]))
    assert [s.heading for s in box.sections] == ["Sweep booked", "Roof"] and "From: Cy" in box.sections[1].text


def test_huge_sheets_are_capped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(sheets, "MAX_ROWS", 1000)
    (tmp_path / "big.csv").write_text("id,value\n" + "".join(f"{i},{i * 2}\n" for i in range(5000)))
    loaded = loaders.load(tmp_path / "big.csv")
    assert loaded.sections[0].text.count("\n") == 1000 and loaded.notes == [
        "the file has 5,001 rows; only the first 1,000 were read"]


@pytest.mark.slow
def test_every_format_is_ingested_and_a_row_question_finds_its_row(tmp_path, home, open_library, manuals):
    folder = tmp_path / "docs"
    folder.mkdir()
    scanned_pdf(folder / "scan.pdf", page_images(manuals / "R-intro.pdf", [11]))
    page_images(manuals / "R-intro.pdf", [12])[0].save(folder / "photo.png")
    table_pdf(folder / "costs.pdf", "What the house costs each year.", PRICES)
    rows = [["Plant", "Bed", "Sown"]] + [[f"plant {i}", f"bed {i % 7}", f"week {i % 52}"] for i in range(200)]
    rows[150] = ["Blue poppy", "north bed", "week 11"]
    xlsx_file(folder / "garden.xlsx", {"Sowing": rows})
    pptx_file(folder / "talk.pptx", [("Budget", "We spend less on heating.", "Mention the boiler.")])
    ods_file(folder / "house.ods", {"Costs": PRICES})
    (folder / "costs.csv").write_text("\n".join(",".join(r) for r in PRICES))
    odt_file(folder / "notes.odt", [("Garden", ["The hedge is cut in June."])])
    epub_file(folder / "book.epub", [("The Old House", "<p>The house was built in 1902.</p>")])
    (folder / "one.eml").write_bytes(mail_message("Roof", "The roofer quoted 800 euros."))
    mbox_file(folder / "archive.mbox", [mail_message("Sweep booked", "The sweep comes on Friday.")])
    text_pdf(folder / "plain.pdf", ["Invoices are paid within thirty days."])
    lib = open_library()
    report = Ingestor(lib).sync([folder])
    assert not report.failures, [(r.path, r.reason) for r in report.failures]
    assert report.count("added") == 12
    hit = search(lib, "which bed is the blue poppy sown in", k=3)
    assert any("| Blue poppy | north bed | week 11 |" in h.text and h.text.startswith("| Plant | Bed | Sown |")
               for h in hit), hit
    scan = search(lib, "recall and editing capabilities under UNIX", k=1)[0]
    assert scan.source.endswith("scan.pdf") and scan.page == 1
    meta = lib.chunks([scan.chunk_id])[scan.chunk_id][1]
    assert meta.get("ocr") is True
    record = {r.path: r for r in lib.documents()}[str(folder / "scan.pdf")]
    assert re.search(r"read by OCR: 1", record.notes or ""), record.notes
    lib.close()
    listed = run_hearth(home, "docs", "--json")
    docs = {d["path"]: d for d in json.loads(listed.stdout)["documents"]}
    assert "1 page(s) read by OCR: 1" in docs[str(folder / "scan.pdf")]["notes"]
    assert "tables read as tables on 1 page(s): 1" in docs[str(folder / "costs.pdf")]["notes"]
    shown = run_hearth(home, "search", "recall and editing capabilities under UNIX", "-k", "1")
    assert "scan.pdf, page 1 (read by OCR)" in " ".join(shown.stdout.split()), shown.stdout


def test_the_source_viewer_shows_a_slide_a_sheet_and_a_scanned_image(tmp_path, home, embedder, manuals):
    from rag.api import Hearth, load_settings
    from rag.retrieval import Hit

    deck = pptx_file(tmp_path / "talk.pptx", [("Budget", "We spend less on heating.", "Mention the boiler."),
                                              ("Suppliers", "Three firms look after the house.", "Ask about the sweep.")])
    book = xlsx_file(tmp_path / "house.xlsx", {"Costs": PRICES, "Readings": [["Month", "kWh"], ["May", 312]]})
    page_images(manuals / "R-intro.pdf", [11])[0].save(tmp_path / "scan.png")
    with Hearth(load_settings(), embedder=embedder) as h:
        h.sync([deck, book])  # the viewer shows what was stored: a slide's text and notes, a sheet's rows
        stored = {(hit.source, hit.page): hit for doc in (deck, book) for hit in h.passages_of(str(doc))}
        slide = h.view(stored[(str(deck), 2)], "Three firms look after the house.")
        assert slide["kind"] == "text" and "Ask about the sweep" in slide["text"] and "heating" not in slide["text"]
        start, end = slide["span"]
        assert slide["text"][start:end] == "Three firms look after the house."
        sheet = h.view(stored[(str(book), 2)], quote="| May | 312 |")
        assert sheet["kind"] == "text" and "| Month | kWh |" in sheet["text"] and "Northside" not in sheet["text"]
        scan = h.view(Hit("The recall and editing", str(tmp_path / "scan.png"), 1, 0.0, "d:3", None, 0, ocr=True))
        assert scan["kind"] == "page" and scan["png"].startswith(b"\x89PNG")


def test_uploads_and_the_watcher_take_every_new_type(tmp_path):
    from rag import uploads

    for ext in (".pptx", ".xlsx", ".ods", ".csv", ".epub", ".odt", ".eml", ".mbox", ".png", ".jpg", ".jpeg",
                ".tif", ".tiff", ".webp", ".bmp"):
        assert loaders.is_supported(f"a/b/file{ext.upper()}")  # what the watcher and scans ask
        saved = uploads.save(tmp_path, f"upload{ext}", b"bytes", 10)
        assert saved.suffix == ext and saved.read_bytes() == b"bytes"
