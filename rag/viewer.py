"""The source viewer: a cited passage shown where it stands, its supporting span highlighted.

    page_image(path, page, quote)   # PDF: the page rendered by pdfium, the span's character boxes
                                    # painted over; PNG bytes and the boxes (in image pixels)
    image_page(path, page)          # an image file (OCR'd): the image itself, PNG bytes
    in_context(text, start, end)    # other files: the text around the span, and where the span is

A span's offsets are those of the page's text as ingested (pdfium's, or pypdf's on the pages pdfium
read badly, with line ends and hyphenation marks changed), so the quote is found again in pdfium's raw
text by its words (any whitespace between them, U+FFFE hyphenation marks skipped), and the boxes are
those of its characters, merged per line.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

SCALE = 1.5  # 108 dpi: a page fits a column and its text stays legible
# A page is never rendered larger than this (a poster-sized PDF page at 1.5x would take gigabytes in
# the app's own process); about an A4 page at 200 dpi. Images are cut to IMAGE_SIDE across, and one
# whose header claims more than MAX_IMAGE_PIXELS is not decoded at all.
MAX_PIXELS = 4_000_000
MAX_IMAGE_PIXELS = 100_000_000
HIGHLIGHT = (255, 210, 0, 110)  # translucent yellow
CONTEXT_CHARS = 1500


def find_words(haystack: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` occurs in `haystack`, matching its words in order with any whitespace between
    (and a line-end hyphen inside a word); None when it is not there."""
    words = re.findall(r"\S+", quote)
    if not words:
        return None
    joiner = r"(?:\s+|-\s*\r?\n\s*|\s*)"
    pattern = joiner.join(re.escape(w) for w in words[:60])
    found = re.search(pattern, haystack)
    return (found.start(), found.end()) if found else None


def page_image(path: str | Path, page: int, quote: str) -> tuple[bytes, list[tuple[float, float, float, float]]]:
    """PNG of PDF page `page` (1-based) with the characters of `quote` highlighted, and the highlighted
    boxes as (left, top, right, bottom) in the image's pixels (empty when the quote is not found)."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    doc = pdfium.PdfDocument(str(path))
    try:
        pdf_page = doc[page - 1]
        width, height = pdf_page.get_size()
        scale = min(SCALE, (MAX_PIXELS / max(width * height, 1.0)) ** 0.5)
        image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
        text_page = pdf_page.get_textpage()
        raw = text_page.get_text_range()
        kept = [i for i, ch in enumerate(raw) if ch != "\ufffe"]  # pdfium's mark of a word joined at a line end
        text = "".join(raw[i] for i in kept)
        boxes = []
        where = find_words(text, quote) if quote else None
        if where:
            lines: dict[int, list[float]] = {}
            for i in kept[where[0]:where[1]]:
                if text[i].isspace():
                    continue
                left, bottom, right, top = text_page.get_charbox(i)
                key = round(bottom / 4)  # characters of one line share a baseline (in 4-point bands)
                box = lines.setdefault(key, [left, bottom, right, top])
                box[0], box[1], box[2], box[3] = min(box[0], left), min(box[1], bottom), max(box[2], right), max(box[3], top)
            # PDF points (origin bottom left) to image pixels (origin top left)
            boxes = [(x0 * scale, (height - t) * scale, r * scale, (height - b) * scale) for x0, b, r, t in lines.values()]
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for left, top, right, bottom in boxes:
            draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=HIGHLIGHT)
        out = io.BytesIO()
        Image.alpha_composite(image, overlay).convert("RGB").save(out, format="PNG")
        return out.getvalue(), boxes
    finally:
        doc.close()


def image_page(path: str | Path, page: int = 1, side: int = 1600) -> bytes:
    """PNG of an image file's page `page` (a multi-page TIFF's frame), at most `side` pixels across."""
    from PIL import Image

    with Image.open(path) as image:
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise ValueError(f"the image is {image.width} x {image.height} pixels, too large to show")
        image.draft("RGB", (side, side))  # a JPEG is decoded at a fraction of its size
        image.seek(min(max(page - 1, 0), getattr(image, "n_frames", 1) - 1))
        frame = image.convert("RGB")
    frame.thumbnail((side, side))
    out = io.BytesIO()
    frame.save(out, format="PNG")
    return out.getvalue()


def in_context(text: str, start: int, end: int, chars: int = CONTEXT_CHARS) -> tuple[str, tuple[int, int]]:
    """The document text around [start, end) (about `chars` each side, cut at line breaks where
    possible) and the span's offsets in it."""
    lo = max(0, start - chars)
    hi = min(len(text), end + chars)
    if lo > 0 and "\n" in text[lo:start]:
        lo = text.index("\n", lo) + 1
    if hi < len(text) and "\n" in text[end:hi]:
        hi = text.rindex("\n", end, hi)
    return text[lo:hi], (start - lo, end - lo)
