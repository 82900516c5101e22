"""Word spaces in OCR (issue 32): a scanned PDF, a real manual page rendered at 150 dpi in greyscale
with light noise and saved as an image-only PDF, read through the PDF loader, keeps its words apart.
RapidOCR's own decoding got half the words of such a page wrong, most of them run together;
ocr._SpacedDecode reads a space where the recogniser gives one a probability of ocr.SPACE_PROB or more."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest

from ingest import loaders
from ingest.loaders import ocr

ASCII = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "−": "-"})


def words(text: str) -> list[str]:
    return unicodedata.normalize("NFKC", text).translate(ASCII).split()


def word_error_rate(reference: list[str], read: list[str]) -> float:
    row = list(range(len(read) + 1))
    for i, word in enumerate(reference, 1):
        last, row[0] = row[0], i
        for j, other in enumerate(read, 1):
            last, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, last + (word != other))
    return row[-1] / len(reference)


def noisy_scan(manual, index: int, path):
    """Page `index` of `manual` as a scanner gives it: 150 dpi greyscale, noise, in an image-only PDF
    (PIL writes the page as a JPEG); and the page's text layer."""
    import pypdfium2
    from PIL import Image

    doc = pypdfium2.PdfDocument(str(manual))
    try:
        page = doc[index]
        # pdfium marks a word hyphenated at a line end with U+FFFE and drops the line end
        reference = page.get_textpage().get_text_range().replace("\ufffe", "- ")
        grey = np.asarray(page.render(scale=150 / 72).to_pil().convert("L"), dtype=np.float32)
    finally:
        doc.close()
    grey += np.random.default_rng(index).normal(0, 12, grey.shape)
    Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L").save(path, resolution=150)
    return path, reference


@pytest.mark.slow
def test_a_noisy_scanned_pdf_keeps_its_word_spaces(tmp_path, manuals):
    pdf, reference = noisy_scan(manuals / "R-intro.pdf", 11, tmp_path / "scan.pdf")
    loaded = loaders.load(pdf)
    assert [(s.page, s.ocr) for s in loaded.sections] == [(1, True)]
    read = words(loaded.sections[0].text)
    letters = [run for w in read for run in re.findall(r"[^\W\d_]+", w)]
    long = [w for w in letters if len(w) > 18]
    wer = word_error_rate(words(reference), read)
    # RapidOCR's own decoding: 0.51 of the words wrong, 12 of 323 letter runs over 18 letters
    # ("forworkinginteractivelywithR"); with the space read where it is likely: 0.04, none of 429
    assert len(long) <= 2 and wer < 0.15, (wer, long)
    assert "Emacs Speaks Statistics) for working interactively with R." in " ".join(read)


class _Decode:
    character = ["blank", "a", "b", " "]


def test_a_likely_space_between_letters_is_read_and_an_unlikely_one_is_not():
    """Columns: a, blank (space 0.3: a word gap), b, blank (space 0.01: inside a word), b, b, a."""
    blank, a, b, space = np.eye(4)
    columns = [0.9 * a + 0.1 * blank, 0.7 * blank + 0.3 * space, 0.8 * b + 0.2 * blank,
               0.99 * blank + 0.01 * space, b, b, a]
    preds = np.array([columns], dtype=np.float32)
    [(text, score)] = ocr._SpacedDecode(_Decode())(preds)
    assert text == "a bba"
    assert score == pytest.approx(np.mean([0.9, 0.8, 1.0, 1.0]))  # the letters RapidOCR reads, as it scores them


def test_the_engine_decodes_with_likely_spaces():
    assert isinstance(ocr.engine().text_rec.postprocess_op, ocr._SpacedDecode)
