"""EPUB e-books: each chapter (an XHTML file of the book's reading order, its OPF spine) is a
section, titled by its first heading; its tables stay tables. Read from the zip with lxml and the
HTML loader; a DRM-protected book is refused with a reason."""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from urllib.parse import unquote

from . import LoadError, Loaded, Section, archive
from .html import sections_of
from .text import decode

OPF = "{http://www.idpf.org/2007/opf}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


def _xml(data: bytes, member: str):
    return archive.parse_xml(data, "e-book", member)


def load(path: Path) -> Loaded:
    archive.check(path, "EPUB")
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise LoadError("not a valid .epub file (not a readable zip archive)") from None
    with z:
        names = set(z.namelist())
        if "META-INF/encryption.xml" in names:  # fonts may be obfuscated; encrypted chapters mean DRM
            encrypted = [ref.get("URI", "") for ref in _xml(archive.read_member(z, "META-INF/encryption.xml"),
                                                            "encryption.xml").iter("{*}CipherReference")]
            if any(uri.lower().endswith((".html", ".xhtml", ".htm")) for uri in encrypted):
                raise LoadError("DRM-protected e-book: its chapters are encrypted; not read")
        container = _xml(archive.read_member(z, "META-INF/container.xml"), "container.xml")
        rootfile = container.find(f".//{CONTAINER}rootfile")
        if rootfile is None or not rootfile.get("full-path"):
            raise LoadError("damaged e-book (no package document named in container.xml)")
        opf_path = rootfile.get("full-path")
        opf = _xml(archive.read_member(z, opf_path), opf_path)
        base = posixpath.dirname(opf_path)
        items = {i.get("id"): i for i in opf.iter(OPF + "item")}
        sections, offset, chapters, lost = [], 0, 0, []
        for ref in opf.iter(OPF + "itemref"):
            item = items.get(ref.get("idref"))
            if item is None or "html" not in (item.get("media-type") or ""):
                continue
            # hrefs are URLs ("Chapter%201.xhtml" for the member "Chapter 1.xhtml"); a few books
            # write the name itself, so that is tried first
            raw = posixpath.normpath(posixpath.join(base, item.get("href", "")))
            href = raw if raw in names else unquote(raw)
            if href not in names:
                lost.append(href)
                continue
            parts = sections_of(decode(archive.read_member(z, href)))
            chapters += 1
            title = next((s.heading for s in parts if s.heading), None) or f"Chapter {chapters}"
            text = "\n\n".join(s.text for s in parts if not s.header and s.text.strip())
            sections.append(Section(text, heading=title, start=offset))
            offset += len(text) + 2
            for table in (s for s in parts if s.header):
                table.heading, table.start = title, offset
                sections.append(table)
                offset += len(table.text) + 2
    if not chapters:
        raise LoadError("damaged e-book (its reading order names no chapter in the archive)")
    notes = [f"{len(lost)} chapter{'s' if len(lost) != 1 else ''} of its reading order "
             f"{'are' if len(lost) != 1 else 'is'} not in the archive, not read: {', '.join(lost[:5])}"
             + (", …" if len(lost) > 5 else "")] if lost else []
    return Loaded(sections, notes=notes)
