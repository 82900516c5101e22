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
