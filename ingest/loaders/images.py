"""Images (png, jpg, tiff including multi-page, webp, bmp), read by OCR (ocr.py); each frame of a
multi-page TIFF is a page. Pillow decodes them; an image claiming more than ocr.MAX_PIXELS pixels
(a decompression bomb, or a poster no page of text needs) is refused before it is decoded."""

from __future__ import annotations

from pathlib import Path

from . import LoadError, Loaded, Section, ocr

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def load(path: Path) -> Loaded:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = ocr.MAX_PIXELS  # Pillow's own guard, for frames opened after the first
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise LoadError("not a readable image (damaged, or not in an image format Pillow reads)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise LoadError(f"not a readable image ({_why(exc)})") from None
    except Image.DecompressionBombError:
        raise LoadError(f"image larger than {ocr.MAX_PIXELS:,} pixels (a decompression bomb?); not read") from None
    sections, pages, unread, damaged = [], 0, 0, False
    with image:
        try:
            for frame in ImageSequence.Iterator(image):
                pages += 1
                width, height = frame.size
                if width * height > ocr.MAX_PIXELS:
                    raise LoadError(f"image of {width:,} × {height:,} pixels, larger than {ocr.MAX_PIXELS:,} "
                                    "(a decompression bomb?); not read")
                if ocr.out_of_time():
                    unread += 1
                    continue
                frame.load()
                text = ocr.read(ocr.fit(frame))
                if text.strip():
                    sections.append(Section(text, page=pages, ocr=True))
        except Image.DecompressionBombError:
            raise LoadError(f"image larger than {ocr.MAX_PIXELS:,} pixels (a decompression bomb?); not read") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            if not sections:
                raise LoadError(f"not a readable image ({_why(exc)})") from None
            damaged = True  # a damaged later frame of a TIFF: the frames before it are kept
    notes = [f"read by OCR ({pages} page{'s' if pages != 1 else ''})"]
    if unread:
        notes.append(ocr.stopped_note(pages - unread, pages))
    if damaged:
        notes.append(f"page {pages} is damaged; the pages before it were read")
    if not sections:
        raise LoadError("OCR found no text in the image")
    return Loaded(sections, pages=pages, notes=notes)


def _why(exc: Exception) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__
