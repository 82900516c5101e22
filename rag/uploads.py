"""Files uploaded in the app, stored in the library folder under a name that is safe to use.

A browser sends whatever name it likes: "../../.bashrc", "C:\\x\\report.pdf", a NUL byte, a name
of 5,000 characters, "CON.pdf". Only the last path component is kept, cleaned, and the file is
written next to its siblings atomically: a hidden temp file, flushed to disk, then linked under its
name with link(2), which fails rather than replace a file that is there (two uploads of the same
name at once each get a name of their own), so a watcher or a crash never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path

from ingest import loaders
from ingest.errors import UploadError
from ingest.pipeline import is_ignored

MAX_NAME_BYTES = 180  # under every common filesystem's 255-byte limit, with room for " (12)"
_FORBIDDEN = set('<>:"|?*\\/')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_name(name: str) -> str:
    """A file name with no directory part, no control or reserved characters, not hidden, not too long."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("_" if ch in _FORBIDDEN or not ch.isprintable() else ch for ch in name)
    name = name.strip().strip(".").strip()  # no "..", no hidden file, no trailing dot (Windows drops it)
    stem, ext = os.path.splitext(name)
    if stem.lower() in _RESERVED:
        stem += "_"
    if not stem or is_ignored(stem + ext):  # "~$x.docx" and friends would never be ingested
        stem = "upload-" + stem.lstrip("~$.")
    if len(ext.encode()) > 16:  # not an extension any loader knows: part of the name
        stem, ext = stem + ext, ""
    while len((stem + ext).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return (stem + ext) if stem else "upload" + ext


def save(folder: Path, name: str, data: bytes, max_mb: float) -> Path:
    """Write an uploaded file into `folder`; returns its path. Raises UploadError with a plain reason."""
    clean = safe_name(name)
    if not loaders.is_supported(clean):
        raise UploadError(f"{name}: not a supported type (use {', '.join(sorted(loaders.SUPPORTED))})")
    if len(data) > max_mb * 2**20:
        raise UploadError(f"{name}: too large ({len(data) / 2**20:.3g} MB, over the {max_mb:g} MB limit)")
    folder.mkdir(parents=True, exist_ok=True)
    if "/" in clean or clean in (".", ".."):  # belt and braces: safe_name forbids it
        raise UploadError(f"{name}: refused, the name points outside the library folder")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return _link_under_free_name(tmp, folder, clean, data)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _link_under_free_name(tmp: str, folder: Path, clean: str, data: bytes) -> Path:
    """Give the written file the first free name of "x.pdf", "x (2).pdf", ...; an identical file
    already under one of them is kept instead (the same upload twice)."""
    stem, ext = os.path.splitext(clean)
    for n in range(1, 10_000):
        target = folder / (clean if n == 1 else f"{stem} ({n}){ext}")
        try:
            os.link(tmp, target)  # create-exclusive: never replaces what is there, follows no symlink
        except FileExistsError:
            if target.is_file() and not target.is_symlink() and _same(target, data):
                return target
            continue
        _fsync_folder(folder)
        return target
    raise UploadError(f"{clean}: 10,000 files of that name are already in the library folder")


def _same(path: Path, data: bytes) -> bool:
    return path.stat().st_size == len(data) and path.read_bytes() == data


def _fsync_folder(folder: Path):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
