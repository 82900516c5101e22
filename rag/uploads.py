"""Files uploaded in the app, stored in the library folder under a name that is safe to use.

A browser sends whatever name it likes: "../../.bashrc", "C:\\x\\report.pdf", a NUL byte, a name
of 5,000 characters, "CON.pdf". Only the last path component is kept, cleaned, and the file is
written next to its siblings atomically (a hidden temp file, then a rename), so a watcher or a
crash never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path

from ingest import loaders
from ingest.pipeline import is_ignored

MAX_NAME_BYTES = 180  # under every common filesystem's 255-byte limit, with room for " (12)"
_FORBIDDEN = set('<>:"|?*\\/')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class UploadError(ValueError):
    pass


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
    while len((stem + ext).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + ext


def save(folder: Path, name: str, data: bytes, max_mb: float) -> Path:
    """Write an uploaded file into `folder`; returns its path. Raises UploadError with a plain reason."""
    clean = safe_name(name)
    if not loaders.is_supported(clean):
        raise UploadError(f"{name}: not a supported type (use {', '.join(sorted(loaders.SUPPORTED))})")
    if len(data) > max_mb * 2**20:
        raise UploadError(f"{name}: too large ({len(data) / 2**20:.3g} MB, over the {max_mb:g} MB limit)")
    folder.mkdir(parents=True, exist_ok=True)
    stem, ext = os.path.splitext(clean)
    target, n = folder / clean, 1
    while target.exists():
        if target.is_file() and target.read_bytes() == data:
            return target  # the same file uploaded again: nothing to write
        n += 1
        target = folder / f"{stem} ({n}){ext}"
    if target.resolve().parent != folder.resolve():  # belt and braces: safe_name already forbids it
        raise UploadError(f"{name}: refused, the name points outside the library folder")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
