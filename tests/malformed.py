"""A corpus of malformed and hostile files, generated (no binary fixtures in the repo).

`malformed_corpus(root, manuals)` writes them and returns {file name: the reason expected for it}.
`good_neighbours(root)` writes files that must be ingested beside them, some with odd names.
"""

from __future__ import annotations

import gzip
import os
import zlib
import zipfile
from pathlib import Path

from make_files import (corrupt_pdf, docx_file, encrypted_pdf, epub_file, image_only_pdf, pptx_file, text_pdf,
                        truncated_copy, xlsx_file)

CORRUPT = "corrupt or unreadable PDF"
LIMITS = "took longer than|memory limit|crashed the file reader|too deeply nested|corrupt or unreadable"


def _raw_pdf(path: Path, objects: list[bytes], root: int = 1) -> Path:
    """A PDF written by hand: numbered objects, a correct xref table and trailer."""
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    path.write_bytes(bytes(out))
    return path


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def page_bomb_pdf(path: Path, fanout: int = 1000, levels: int = 3) -> Path:
    """A page tree whose nodes list the same child `fanout` times: fanout**levels pages on paper."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" 3 0 R" * fanout, fanout**levels))
    for level in range(1, levels):
        kid = len(objects) + 2
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" %d 0 R" % kid * fanout, fanout ** (levels - level)))
    font = len(objects) + 3
    objects.append(b"<< /Type /Page /MediaBox [0 0 612 792] /Contents %d 0 R "
                   b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (len(objects) + 2, font))
    objects.append(_stream(b"BT /F1 12 Tf 72 700 Td (Page) Tj ET"))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return _raw_pdf(path, objects)


def _one_page_pdf(path: Path, data: bytes) -> Path:
    """One page whose content stream is `data`, Flate-compressed."""
    return _raw_pdf(path, [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def slow_pdf(path: Path, operations: int = 200_000) -> Path:
    """Half a megabyte whose one page holds 200,000 text operations, each a run of 26 letters: pdfium
    reads it at once, but as glued words, so pypdf is asked too (~12 s here)."""
    content = b"".join(b"BT /F1 1 Tf %d %d Td (abcdefghijklmnopqrstuvwxyz) Tj ET\n" % (i % 600, i % 700)
                       for i in range(operations))
    return _one_page_pdf(path, zlib.compress(content, 9))


def flate_bomb_pdf(path: Path, expanded_mb: int = 2000) -> Path:
    """Two megabytes whose page content inflates to `expanded_mb` MB."""
    packer = zlib.compressobj(9)
    parts = [packer.compress(b"BT /F1 12 Tf 72 700 Td (Bomb) Tj ET\n")]
    block = b" " * 2**20
    parts += [packer.compress(block) for _ in range(expanded_mb)]
    return _one_page_pdf(path, b"".join(parts) + packer.flush())


def nested_pdf(path: Path, depth: int = 200_000) -> Path:
    """One page whose content stream holds arrays nested `depth` deep."""
    content = b"BT /F1 12 Tf 72 700 Td " + b"[" * depth + b"(x)" + b"]" * depth + b" TJ ET"
    return _one_page_pdf(path, zlib.compress(content, 9))


def looping_pdf(path: Path) -> Path:
    """A page tree whose only node lists itself as its own child."""
    return _raw_pdf(path, [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
    ])


def zip_bomb_docx(path: Path, expanded_mb: int = 400) -> Path:
    """A real .docx whose document.xml expands from well under 1 MB to `expanded_mb` MB."""
    docx_file(path, [("Title", ["text"])])
    with zipfile.ZipFile(path) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for name, data in parts.items():
            if name != "word/document.xml":
                dst.writestr(name, data)
        with dst.open("word/document.xml", "w") as fh:
            head, tail = parts["word/document.xml"].split(b"</w:body>")
            fh.write(head)
            block = b"<w:p><w:r><w:t>" + b"A" * (1 << 20) + b"</w:t></w:r></w:p>"
            for _ in range(expanded_mb):
                fh.write(block)
            fh.write(b"</w:body>" + tail)
    return path


def zip_bomb(path: Path, member: str, head: bytes, block: bytes, tail: bytes, expanded_mb: int = 400) -> Path:
    """The zip archive at `path` with `member` rewritten to expand to `expanded_mb` MB of `block`."""
    with zipfile.ZipFile(path) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for name, data in parts.items():
            if name != member:
                dst.writestr(name, data)
        with dst.open(member, "w") as fh:
            fh.write(head)
            for _ in range(expanded_mb * 2**20 // len(block)):
                fh.write(block)
            fh.write(tail)
    return path


def pixel_bomb_png(path: Path, side: int = 30_000) -> Path:
    """A PNG of side x side pixels (900 megapixels) that is a few hundred kB on disk."""
    import struct

    row = b"\x00" + b"\x00" * (side // 8)  # filter byte, then one bit per pixel
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def blank_scan_pdf(path: Path, pages: int = 10_000) -> Path:
    """A 'scan' of `pages` blank pages: one small image, drawn on every page (a few hundred kB)."""
    from fpdf import FPDF
    from PIL import Image

    image = Image.new("L", (200, 280), 255)
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.image(image, x=0, y=0, w=pdf.w, h=pdf.h)
    pdf.output(str(path))
    return path


def malformed_corpus(root: Path, manuals: Path) -> dict[str, str]:
    """Write the bad files; returns {name: a regular expression the reported reason must match}."""
    root.mkdir(parents=True, exist_ok=True)
    expected = {}

    def bad(name: str, reason: str) -> Path:
        expected[name] = reason
        return root / name

    # PDFs
    corrupt_pdf(bad("corrupt.pdf", CORRUPT))
    truncated_copy(manuals / "R-data.pdf", bad("truncated.pdf", CORRUPT))
    encrypted_pdf(bad("locked.pdf", "encrypted PDF; needs a password"), user_password="hunter2")
    image_only_pdf(bad("drawings-only.pdf", "no text found in the PDF"))
    blank_scan_pdf(bad("blank-10000-page-scan.pdf", "OCR found no text .*of 10000|took longer than"))
    bad("header-only.pdf", CORRUPT).write_bytes(b"%PDF-1.4\n")
    bad("webpage.pdf", CORRUPT).write_bytes(b"<!doctype html><html><body>Not found</body></html>\n" * 20)
    bad("zero.pdf", "empty file").write_bytes(b"")
    page_bomb_pdf(bad("page-bomb.pdf", "more pages or objects than any real document"))
    nested_pdf(bad("nested.pdf", LIMITS + "|no text"))
    looping_pdf(bad("looping.pdf", CORRUPT))
    slow_pdf(bad("slow.pdf", "took longer than"))
    flate_bomb_pdf(bad("inflates-to-2gb.pdf", LIMITS))
    # Text
    bad("empty.txt", "empty file").write_bytes(b"")
    bad("blank.md", "no text found").write_text("   \n\n\t\n")
    bad("binary.txt", "binary content, not text").write_bytes(os.urandom(4096) + b"\x00" * 64)
    bad("gzip.txt", "binary content|undecodable").write_bytes(gzip.compress(os.urandom(3000)))
    bad("elf.md", "binary content|undecodable").write_bytes(Path(os.sys.executable).resolve().read_bytes()[:20000])
    bad("undecodable.txt", "undecodable text").write_bytes(bytes(range(0x80, 0x100)) * 40)
    bad("controls.txt", "binary content").write_text("\x01\x02\x03\x04\x05\x06" * 500)
    with open(bad("sparse-2gb.txt", "MB limit"), "wb") as fh:  # sparse: 2 GB on paper, no disk used
        fh.truncate(2 * 2**30)
    # Web pages and Word
    bad("script-only.html", "no text found").write_text(
        "<html><head><script>" + "var x = 1;\n" * 300_000 + "</script></head><body></body></html>")
    bad("fake.docx", "not a valid .docx file").write_bytes(b"this is not a zip archive at all")
    bad("zero.docx", "empty file").write_bytes(b"")
    with zipfile.ZipFile(bad("plain-zip.docx", "not a valid .docx file"), "w") as z:
        z.writestr("readme.txt", "a zip, but no Word document inside")
    bad("legacy-or-locked.docx", "password-protected or an old Word").write_bytes(
        bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 4088)
    zip_bomb_docx(bad("zip-bomb.docx", "expands to .* MB .a zip bomb"))
    good = docx_file(root / "cut.tmpdocx", [("Heading", ["Some text. " * 200])])
    truncated_copy(good, bad("truncated.docx", "not a valid .docx file"), 0.5)
    good.unlink()
    # Office, OpenDocument, e-books, mail, spreadsheets
    for kind, ext, make in (("Excel", "xlsx", lambda p: xlsx_file(p, {"S": [["a", "b"], ["1", "2"]] * 200})),
                            ("PowerPoint", "pptx", lambda p: pptx_file(p, [("Title", "Body text. " * 200, "Notes")]))):
        bad(f"locked.{ext}", f"password-protected or an old {kind}").write_bytes(
            bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 4088)
        truncated_copy(make(root / f"cut.tmp{ext}"), bad(f"truncated.{ext}", f"not a valid .{ext} file"), 0.5)
        (root / f"cut.tmp{ext}").unlink()
        bad(f"fake.{ext}", f"not a valid .{ext} file").write_bytes(b"PK\x03\x04 but not really a zip archive")
    zip_bomb(xlsx_file(bad("zip-bomb.xlsx", "expands to .* MB .a zip bomb"), {"S": [["a"]]}), "xl/worksheets/sheet1.xml",
             b"<worksheet><sheetData>", b"<row><c><v>1</v></c></row>" * 1000, b"</sheetData></worksheet>")
    zip_bomb(epub_file(bad("zip-bomb.epub", "expands to .* MB .a zip bomb"), [("One", "<p>x</p>")]), "OEBPS/text/c0.xhtml",
             b"<html><body>", b"<p>spam</p>" * 1000, b"</body></html>")
    with zipfile.ZipFile(bad("no-container.epub", "damaged e-book|container.xml is missing"), "w") as z:
        z.writestr("mimetype", "application/epub+zip")
    bad("broken.ods", "damaged .ods file").write_bytes(_odf_broken())
    bad("not-mail.eml", "not an e-mail message").write_bytes(b"\n\n just some words, no headers")
    bad("not-mail.mbox", "no messages found").write_bytes(b"Dear diary, no From line here.\n" * 20)
    # Images
    pixel_bomb_png(bad("pixel-bomb.png", "larger than .* pixels .a decompression bomb"))
    bad("noise.png", "not a readable image").write_bytes(os.urandom(5000))
    bad("html.jpg", "not a readable image").write_bytes(b"<html>not an image</html>" * 40)
    from PIL import Image

    Image.new("L", (800, 600), 255).save(root / "whole.tmppng", format="PNG")
    truncated_copy(root / "whole.tmppng", bad("truncated.png", "not a readable image|no text"), 0.5)
    (root / "whole.tmppng").unlink()
    Image.new("RGB", (640, 480), (255, 255, 255)).save(bad("blank.jpg", "OCR found no text in the image"))
    return expected


def _odf_broken() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content><unclosed>")
    return buffer.getvalue()


def good_neighbours(root: Path) -> dict[str, str]:
    """Files that must be ingested beside the bad ones: {name: a phrase searchable afterwards}."""
    files = {
        "good.pdf": "Invoices are paid within thirty days.",
        "good.txt": "The boiler is serviced every October.",
        "line\nbreak in name.md": "The greenhouse roof was repaired in spring.",
        "ｒésumé \u202etxt.exe\u202c ünïcödé.txt": "The cellar key hangs behind the pantry door.",
        "utf16-no-bom.txt": "The chimney sweep visits every second November.",
        "mostly-utf8.txt": "The bicycle tyres are pumped to four bar.",
        "long-line.txt": "The attic ladder folds into the hatch.",
        "scripts-and-text.html": "The piano is tuned once a year by Mrs Alder.",
    }
    text_pdf(root / "good.pdf", [files["good.pdf"]])
    (root / "good.txt").write_text(files["good.txt"])
    (root / "line\nbreak in name.md").write_text("# Notes\n\n" + files["line\nbreak in name.md"])
    (root / "ｒésumé \u202etxt.exe\u202c ünïcödé.txt").write_text(files["ｒésumé \u202etxt.exe\u202c ünïcödé.txt"])
    (root / "utf16-no-bom.txt").write_bytes((files["utf16-no-bom.txt"] + " Soot is swept into the yard.\n" * 20)
                                            .encode("utf-16-le"))
    (root / "mostly-utf8.txt").write_bytes(files["mostly-utf8.txt"].encode() + b" \xff\xfe stray bytes. " * 2)
    (root / "long-line.txt").write_text(files["long-line.txt"] + " " + "x" * 1_500_000)
    (root / "scripts-and-text.html").write_text(
        "<html><head><script>" + "alert(1);\n" * 250_000 + "</script><style>" + "p{}" * 100_000
        + f"</style></head><body><p>{files['scripts-and-text.html']}</p></body></html>")
    return files
