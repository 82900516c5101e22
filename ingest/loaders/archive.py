"""Word, PowerPoint, Excel, OpenDocument and EPUB files are zip archives: checked before a parser
opens one, because a zip bomb is small on disk and endless in memory, and an encrypted Office file
is not a zip at all but Office's older OLE container."""

from __future__ import annotations

import zipfile
from pathlib import Path

from . import LoadError

OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
MAX_EXPANDED = 256 * 2**20  # no real document expands to more; a zip bomb does
MAX_RATIO = 100  # XML compresses ~10:1; a bomb far more


def check(path: Path, kind: str) -> None:
    """Raise LoadError for an encrypted (or old binary) Office file, a file that is not a zip, or a
    zip bomb. `kind` names the format in the reason ("Word", "PowerPoint", ...)."""
    with open(path, "rb") as fh:
        if fh.read(8) == OLE_MAGIC:
            ext = path.suffix.lower()
            old = f" ({ext[:-1]})" if ext in (".docx", ".xlsx", ".pptx") else ""
            raise LoadError(f"password-protected or an old {kind}{old} file renamed to {ext}; "
                            f"open it and save it as {ext} without a password")
    try:
        with zipfile.ZipFile(path) as z:
            expanded = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise LoadError(f"not a valid {path.suffix.lower()} file (truncated or damaged: not a readable zip archive)") from None
    size = max(path.stat().st_size, 1)
    if expanded > MAX_EXPANDED or (expanded > 16 * 2**20 and expanded / size > MAX_RATIO):
        raise LoadError(f"suspicious archive: {size / 2**20:.2g} MB that expands to {expanded / 2**20:,.0f} MB "
                        "(a zip bomb?); not read")


def read_member(z: zipfile.ZipFile, name: str) -> bytes:
    """One member's bytes; a damaged member becomes a LoadError."""
    try:
        return z.read(name)
    except KeyError:
        raise LoadError(f"damaged file: {name} is missing from the archive") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise LoadError(f"damaged file: {name} cannot be unpacked ({type(exc).__name__})") from None


def parse_xml(data: bytes, what: str, member: str):
    """A member's XML, parsed without entities or network access (an archive is untrusted); a
    syntax error becomes LoadError("damaged <what> (<member>: ...)")."""
    from lxml import etree

    try:
        return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise LoadError(f"damaged {what} ({member}: {str(exc)[:100]})") from None
