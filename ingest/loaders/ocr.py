"""OCR of page images with RapidOCR: PaddleOCR's PP-OCRv4 detection and recognition models run by
ONNX Runtime. The models ship in the rapidocr-onnxruntime wheel, so `make setup` installs them from
PyPI and nothing is fetched at run time. (Tesseract, compared in bench/ocr.py, needs Debian
packages and root to install; see docs/performance.md for the comparison.)

It runs in the reader child (reader.py), under the file's time and memory limits. RapidOCR gives
text boxes; they are put back into lines (boxes whose vertical middles fall within half a line
height of each other, left to right) and paragraphs (a gap of more than a line between lines).

Word spaces (issue 32): the recogniser reads a line in columns of 8 pixels at 48 pixels high, two to
three columns a letter at 150 dpi, and a word space is about one column. RapidOCR decodes greedily
(each column's likeliest token), and on a noisy scanned PDF page (a JPEG in the PDF, resampled again
when pdfium renders it: both soften the gaps) the space often came second to CTC's "blank" (nothing
here) at probabilities of 0.05-0.5, so words ran together ("EmacsSpeaksStatistics"). _SpacedDecode reads such
a column as a space (bench/ocr.py, noisy scanned PDFs of two manuals: 54-55 % of words wrong before,
5-6 % after, the glyphs as before; docs/performance.md).
"""

from __future__ import annotations

import re
import time
import unicodedata

from ..settings import usable_cpus

DPI = 150  # pages are rendered at this resolution for OCR: 10 pt text is ~20 px high, enough for PP-OCR
MAX_PIXELS = 60_000_000  # larger images are refused (PIL's decompression-bomb guard is at 179 MP)

_engine = None
# Lines recognised at a time, each batch padded to its widest: RapidOCR's 6 padded short lines to long
# ones' width (ONNX Runtime 1.5x slower a page than with 2, and a few more words wrong: docs/decisions.md).
REC_BATCH = 2


def engine():
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR

        threads = min(4, usable_cpus())
        # No text-direction classifier: pages are upright, and it turned some upright lines by 180
        # degrees, which garbled them (4.0 % characters wrong with it, 1.5 % without; docs/performance.md).
        _engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, use_cls=False,
                           det_box_thresh=0.3,  # fainter boxes kept: fewer lines missed (1.5 % -> 1.0 %)
                           rec_batch_num=REC_BATCH)
        rec = _engine.text_rec
        try:  # the same two models run by OpenVINO: a page in 1.1 s (bf16) or 1.8 s (f32) instead of 3.0 here
            if not OPENVINO or MEMORY_MB < OPENVINO_MEMORY_MB:
                raise MemoryError("OpenVINO is off, or the reader's memory limit too low for it")
            det = _OpenVINO(_engine.text_det.infer.session._model_path, threads)
            rec_model = _OpenVINO(rec.session.session._model_path, threads, REC_WIDTH_STEP)
        except Exception:  # noqa: BLE001 (OpenVINO cannot compile them on this machine: ONNX Runtime reads)
            pass
        else:  # ONNX Runtime's sessions let go: their memory is the reader's
            _engine.text_det.infer, rec.session = det, rec_model
        if getattr(getattr(rec, "postprocess_op", None), "character", [None])[-1:] == [" "]:
            rec.postprocess_op = _SpacedDecode(rec.postprocess_op)
    return _engine


# auto: bf16 where the CPU multiplies it (AMX, AVX-512 BF16), f32 elsewhere, as the embedder. bf16 read
# a page in 1.1 s instead of 1.8 here, with 0.3 points more words wrong (docs/decisions.md).
OPENVINO_PRECISION = "auto"


# The reader's memory (HEARTH_PARSE_MEMORY_MB, resident) OCR on OpenVINO needs: 60 scanned pages took
# 1.3 GB resident (and ~3.5 GB of address space, reader.ADDRESS_SPACE_EXTRA_MB); ONNX Runtime 0.9 GB.
# Under it OCR stays on ONNX Runtime.
OPENVINO_MEMORY_MB = 2048
MEMORY_MB = float("inf")  # the reader's, set by reader.limit_and_load
# Lines are recognised at widths rounded up to this many pixels (zeros on the right, as RapidOCR pads a
# batch): OpenVINO keeps kernels per input shape, and with every line width a shape of its own the reader
# grew by 80 MB resident (400 MB of address space) a page; rounded, it stops growing after a few pages,
# and reads faster (docs/decisions.md).
REC_WIDTH_STEP = 32
OPENVINO = True  # False: ONNX Runtime only (bench/ocr.py --runtime onnxruntime, for an A/B)


class _OpenVINO:
    """One of RapidOCR's models compiled by OpenVINO, called as RapidOCR calls its ONNX Runtime session
    (an input array in, a list holding the output back). Should OpenVINO fail to allocate a page's
    buffers within the reader's memory limit (it reserves more address space than ONNX Runtime), the
    page and the rest are read by ONNX Runtime, as before."""

    def __init__(self, model_path: str, threads: int, width_step: int = 0):
        from ..openvino_encoder import compile_on_cpu

        self.model_path, self.threads, self.onnx, self.width_step = model_path, threads, None, width_step
        self.model = compile_on_cpu(model_path, OPENVINO_PRECISION, threads)
        self.request, self.output = self.model.create_infer_request(), self.model.output(0)

    def __call__(self, array):
        if self.onnx is None:
            if self.width_step and (extra := -array.shape[-1] % self.width_step):
                import numpy as np  # padded as RapidOCR pads the narrower lines of a batch: zeros on the right

                array = np.pad(array, [(0, 0)] * (array.ndim - 1) + [(0, extra)])
            try:
                return [self.request.infer({0: array})[self.output]]
            except RuntimeError:  # "Failed to allocate": its memory let go before ONNX Runtime's is taken
                from rapidocr_onnxruntime.utils.infer_engine import OrtInferSession

                self.model = self.request = None
                self.onnx = OrtInferSession({"model_path": self.model_path, "intra_op_num_threads": self.threads,
                                             "inter_op_num_threads": 1})
        return self.onnx(array)


SPACE_PROB = 0.05  # a column the recogniser thinks blank but gives a space this likely reads as a space
# (word error rate on 4 noisy scanned pages, R-intro and Octave: 0.53 as RapidOCR decodes, 0.07 at
# 0.1, 0.04 at 0.05, 0.05 at 0.02, 0.06 at 0.01: lower thresholds start splitting words)


def _ctc_kept(tokens):
    """Which of a row's tokens CTC keeps: the first of each run, not the blank (token 0)."""
    kept = tokens != 0
    kept[1:] &= tokens[1:] != tokens[:-1]
    return kept


class _SpacedDecode:
    """RapidOCR's CTC decoding (its rapidocr_onnxruntime.ch_ppocr_rec.utils.CTCLabelDecode: each column's
    likeliest token, repeats merged, blanks dropped), except that a blank column giving the space a
    probability of SPACE_PROB or more reads as a space. The score, which decides whether a box is kept,
    is RapidOCR's own (the mean probability of the tokens it would have read)."""

    def __init__(self, decode):
        self.decode = decode
        self.character = decode.character  # 0: CTC's blank; the last: the space
        self.space = len(self.character) - 1

    def __call__(self, preds, return_word_box: bool = False, **kwargs):
        import numpy as np

        if return_word_box:  # Hearth does not ask for word boxes
            return self.decode(preds, return_word_box, **kwargs)
        tokens, probs = preds.argmax(axis=2), preds.max(axis=2)
        spaced = np.where((tokens == 0) & (preds[:, :, self.space] >= SPACE_PROB), self.space, tokens)
        out = []
        for row, row_probs, row_spaced in zip(tokens, probs, spaced):
            read = _ctc_kept(row)
            score = float(row_probs[read].astype(np.float64).mean()) if read.any() else 0.0
            text = "".join(self.character[t] for t in row_spaced[_ctc_kept(row_spaced)])
            out.append((re.sub(" {2,}", " ", text), score))
        return out


def read(image) -> str:
    """The text of a PIL image, in reading order ('' when none is found)."""
    import numpy as np

    global _last_page_s
    started = time.monotonic()
    rgb = image.convert("RGB")
    # RapidOCR expects OpenCV's BGR order; contiguous, or OpenCV copied the whole page for each line it
    # cut out (7 ms a line, 0.2 s a page)
    found, _ = engine()(np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1]))
    _last_page_s = time.monotonic() - started
    return lines_to_text(found or [])


def lines_to_text(found: list) -> str:
    """RapidOCR's [box, text, score] results, grouped into lines and paragraphs."""
    boxes = []
    for box, text, _score in found:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        boxes.append((min(ys), max(ys), min(xs), text.strip()))
    boxes.sort()
    lines: list[list] = []  # [top, bottom, [(x, text), ...]]
    for top, bottom, left, text in boxes:
        middle = (top + bottom) / 2
        for line in lines[-3:]:
            if abs((line[0] + line[1]) / 2 - middle) < (line[1] - line[0]) / 2:
                line[2].append((left, text))
                break
        else:
            lines.append([top, bottom, [(left, text)]])
    out, last_bottom, last_height = [], None, None
    for top, bottom, words in lines:
        if last_bottom is not None and top - last_bottom > 1.0 * last_height:
            out.append("")
        out.append(" ".join(t for _, t in sorted(words) if t))
        last_bottom, last_height = bottom, bottom - top
    # NFKC: the recognition model also reads Chinese and returns full-width punctuation ("，" "）")
    return unicodedata.normalize("NFKC", "\n".join(out)).strip()


MAX_SIDE = 2400  # pixels: RapidOCR works on at most 2000 anyway; a poster-sized page is scaled down
_deadline: float | None = None  # set per file by the reader child: OCR stops here, keeping what it read
_last_page_s = 0.0  # how long the last page took: the next one is not started if it would end too late


def start_file(time_s: float | None) -> None:
    """Allow OCR `time_s` seconds for the next file (None: no limit). The reader child gives it most
    of the file's time limit, so that a long scan keeps the pages read in time instead of failing."""
    global _deadline
    _deadline = None if time_s is None else time.monotonic() + time_s


def out_of_time() -> bool:
    return _deadline is not None and time.monotonic() + 1.5 * _last_page_s > _deadline


def stopped_note(done: int, total: int) -> str:
    return (f"OCR stopped at the time limit after {done} of {total} scanned page(s); the rest is not "
            "searchable (raise HEARTH_PARSE_TIMEOUT and re-index it: hearth ingest --force)")


def fit(image):
    """The image scaled down so that its longer side is at most MAX_SIDE pixels."""
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image
