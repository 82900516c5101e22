"""Generators for test documents: real file formats written by real libraries, no mocks."""

from __future__ import annotations

from pathlib import Path

# Three pages of household facts: the answer tests ask about them (page 2 holds the receipts rule).
HOUSEHOLD = [
    "Household paperwork. The tax return for 2025 is due on the 31st of July 2026. "
    "Late returns pay a penalty of 100 euros.",
    "Receipts and bank statements must be kept for six years after the tax year ends. "
    "Scan them and store the scans in the folder called Archive.",
    "The boiler is serviced every October by Northside Heating. The service costs 95 euros.",
]


def text_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    """A PDF with one string of text per page (fpdf2, core Helvetica font), with an outline entry per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for i, text in enumerate(pages, 1):
        pdf.add_page()
        pdf.start_section(f"{title or 'Part'} {i}")
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def glued_pdf(path: Path, sentence: str, repeat: int = 12) -> Path:
    """A PDF whose font declares a very wide space glyph, as some TeX fonts do: pypdf then loses
    every space between words ("thepackagemaintenancesystem") while pdfium keeps them."""
    import pypdf
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, StreamObject

    writer = pypdf.PdfWriter()
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/CMR10"), NameObject("/FirstChar"): NumberObject(32),
        NameObject("/LastChar"): NumberObject(122),
        NameObject("/Widths"): ArrayObject([NumberObject(1000)] + [NumberObject(500)] * 90),
    })
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
    lines = []
    for i in range(repeat):
        words = sentence.split()
        tj = b"-333".join(b"(" + w.encode() + b")" for w in words)
        lines.append(b"BT /F1 9 Tf 40 %d Td [%s] TJ ET" % (750 - 14 * i, tj))
    stream = StreamObject()
    stream.set_data(b"\n".join(lines))
    page[NameObject("/Contents")] = writer._add_object(stream)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def encrypted_pdf(path: Path, user_password: str, text: str = "Secret quarterly numbers.") -> Path:
    import pypdf

    plain = text_pdf(path.with_suffix(".plain.pdf"), [text])
    writer = pypdf.PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with open(path, "wb") as fh:
        writer.write(fh)
    plain.unlink()
    return path


def image_only_pdf(path: Path) -> Path:
    """A 'scan': pages with drawings and no text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.set_fill_color(40, 40, 40)
        for i in range(20):
            pdf.rect(10 + i * 8, 20 + i * 5, 6, 100, style="F")
    pdf.output(str(path))
    return path


def docx_file(path: Path, sections: list[tuple[str, list[str]]], table: list[list[str]] | None = None) -> Path:
    import docx

    document = docx.Document()
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for p in paragraphs:
            document.add_paragraph(p)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    document.save(str(path))
    return path


def corrupt_pdf(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\n" + bytes(range(256)) * 8)
    return path


def truncated_copy(src: Path, dst: Path, fraction: float = 0.3) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def damaged_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF whose cross-reference table is destroyed: pypdf gives up, pdfium rebuilds it."""
    good = text_pdf(path.with_suffix(".tmp.pdf"), pages)
    path.write_bytes(good.read_bytes().replace(b"xref", b"xxxx"))
    good.unlink()
    return path


# --- documents people have (issue 19): scans, tables, slides, sheets, e-books, mail -------------
def page_images(pdf: Path, pages: list[int], dpi: int = 150) -> list:
    """Pages of a real PDF rendered as greyscale PIL images: what a scanner would give."""
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        return [doc[i].render(scale=dpi / 72).to_pil().convert("L") for i in pages]
    finally:
        doc.close()


def scanned_pdf(path: Path, images: list, text_pages: list[str] = ()) -> Path:
    """A PDF of `text_pages` (a text layer) followed by one page per image (no text layer)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in text_pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    for image in images:
        pdf.add_page()
        pdf.image(image, x=0, y=0, w=pdf.w, h=pdf.h)
    pdf.output(str(path))
    return path


def table_pdf(path: Path, intro: str, rows: list[list[str]]) -> Path:
    """A PDF page with a paragraph and a ruled table (fpdf2's table, every cell bordered)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.multi_cell(0, 6, intro)
    pdf.ln(4)
    with pdf.table() as table:
        for row in rows:
            line = table.row()
            for cell in row:
                line.cell(cell)
    pdf.output(str(path))
    return path


def xlsx_file(path: Path, sheets: dict[str, list[list]]) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(str(path))
    return path


def pptx_file(path: Path, slides: list[tuple[str, str, str]], table: list[list[str]] | None = None) -> Path:
    """Slides of (title, body, speaker notes); `table` goes on the last slide."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        slide.notes_slide.notes_text_frame.text = notes
    if table:
        shape = slide.shapes.add_table(len(table), len(table[0]), Inches(1), Inches(4), Inches(6), Inches(2))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                shape.table.cell(r, c).text = cell
    deck.save(str(path))
    return path


_ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2"')


def _odf(path: Path, mimetype: str, body: str) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)  # stored first and uncompressed, as ODF requires
        z.writestr("META-INF/manifest.xml", '<?xml version="1.0"?><manifest:manifest xmlns:manifest='
                   '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" '
                   f'manifest:media-type="{mimetype}"/><manifest:file-entry manifest:full-path="content.xml" '
                   'manifest:media-type="text/xml"/></manifest:manifest>', zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS}>'
                   f"<office:body>{body}</office:body></office:document-content>", zipfile.ZIP_DEFLATED)
    return path


def _odf_table(name: str, rows: list[list[str]]) -> str:
    from xml.sax.saxutils import escape

    cells = lambda row: "".join(  # noqa: E731
        f'<table:table-cell office:value-type="string"><text:p>{escape(str(c))}</text:p></table:table-cell>' for c in row)
    return (f'<table:table table:name="{escape(name)}">' + "".join(f"<table:table-row>{cells(r)}</table:table-row>" for r in rows)
            # what LibreOffice writes after the last row: an empty row repeated to the end of the sheet
            + '<table:table-row table:number-rows-repeated="1048000"><table:table-cell table:number-columns-repeated="1024"/>'
            "</table:table-row></table:table>")


def odt_file(path: Path, sections: list[tuple[str, list[str]]], table: list[list[str]] | None = None) -> Path:
    from xml.sax.saxutils import escape

    body = "".join(f'<text:h text:outline-level="1">{escape(h)}</text:h>' + "".join(f"<text:p>{escape(p)}</text:p>" for p in ps)
                   for h, ps in sections)
    return _odf(path, "application/vnd.oasis.opendocument.text",
                f"<office:text>{body}{_odf_table('Table1', table) if table else ''}</office:text>")


def ods_file(path: Path, sheets: dict[str, list[list[str]]]) -> Path:
    return _odf(path, "application/vnd.oasis.opendocument.spreadsheet",
                "<office:spreadsheet>" + "".join(_odf_table(n, r) for n, r in sheets.items()) + "</office:spreadsheet>")


def epub_file(path: Path, chapters: list[tuple[str, str]]) -> Path:
    """An EPUB 3 book of (title, XHTML body) chapters, in reading order."""
    import zipfile
    from xml.sax.saxutils import escape

    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        z.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" '
                   'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile '
                   'full-path="OEBPS/book.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
        manifest = "".join(f'<item id="c{i}" href="text/c{i}.xhtml" media-type="application/xhtml+xml"/>'
                           for i in range(len(chapters)))
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        z.writestr("OEBPS/book.opf", '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
                   '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Test book</dc:title></metadata>'
                   f"<manifest>{manifest}</manifest><spine>{spine}</spine></package>")
        for i, (title, body) in enumerate(chapters):
            z.writestr(f"OEBPS/text/c{i}.xhtml", '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
                       f"<head><title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>")
    return path


def mail_message(subject: str, body: str, sender: str = "Ada <ada@example.org>", attachments=()) -> bytes:
    """An RFC 5322 message (stdlib email), with (filename, bytes) attachments."""
    import mimetypes
    from email.message import EmailMessage
    from email.utils import format_datetime
    from datetime import datetime, timezone

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "Bob <bob@example.org>", subject
    message["Date"] = format_datetime(datetime(2026, 3, 4, 9, 30, tzinfo=timezone.utc))
    message.set_content(body)
    for name, data in attachments:
        kind = (mimetypes.guess_type(name)[0] or "application/octet-stream").split("/")
        message.add_attachment(data, maintype=kind[0], subtype=kind[1], filename=name)
    return bytes(message)


def mbox_file(path: Path, messages: list[bytes]) -> Path:
    import mailbox

    box = mailbox.mbox(str(path))
    for raw in messages:
        box.add(raw)
    box.flush()
    box.close()
    return path
