"""Plain text and reStructuredText, with the encoding detected."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from . import LoadError, Loaded, Section

_BOMS = [
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode(data: bytes) -> str:
    """Bytes to text: BOM, then UTF-8, then charset detection; binary content is refused."""
    text = _decode(data)
    sample = text[:65536]
    if sample and len(_CONTROL.findall(sample)) / len(sample) > 0.05:
        raise LoadError("binary content, not text")
    if sample and sample.count("\ufffd") / len(sample) > 0.05:
        raise LoadError("undecodable text: most bytes are not valid in its encoding")
    return text


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    # NUL bytes are valid UTF-8 but mean UTF-16/32 without a BOM, or binary: let detection decide.
    if b"\x00" not in data[:65536]:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 4 << 20]).best()
    if best is None:
        if b"\x00" in data[:65536]:
            raise LoadError("binary content, not text")
        raise LoadError("undecodable text: not in any encoding that could be detected")
    return data.decode(best.encoding, errors="replace")


def read_text(path: Path) -> str:
    return decode(path.read_bytes())


def load(path: Path) -> Loaded:
    return Loaded([Section(read_text(path))])


# An RST title is a line underlined (and optionally overlined) by one repeated punctuation mark.
_RST_HEADING = re.compile(r"^(?P<title>[^\s].*)\n(?P<rule>([=\-~^\"'`#*+_.:])\3{2,})[ \t]*$", re.M)


def load_rst(path: Path) -> Loaded:
    text = read_text(path)
    sections, last, heading = [], 0, None
    for m in _RST_HEADING.finditer(text):
        if len(m["rule"]) < len(m["title"].rstrip()) * 0.8:
            continue
        sections.append(Section(text[last : m.start()], heading=heading, start=last))
        heading, last = m["title"].strip(), m.start()
    sections.append(Section(text[last:], heading=heading, start=last))
    return Loaded(sections)
