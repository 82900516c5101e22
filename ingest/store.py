"""What Chroma needs around it, for both kinds of Library (local_library.py, server_library.py): its settings, store
errors turned into messages a user can act on, names, and the view of an embedded store that other
processes wrote to.

One Chroma collection per Hearth collection. Its metadata records the embedding model and dimension,
so a store is never searched or filled with vectors from another model.
"""

from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from urllib.parse import urlsplit

from .errors import StoreUnreachable, StoreWriteError
from .settings import Settings

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

MAX_BATCH = 4000  # Chroma refuses batches above ~5,400 records
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,62}[A-Za-z0-9]$")


_WRITE_FAILURES = ("disk is full", "disk i/o error", "no space left", "file too large", "read-only file system",
                   "quota exceeded")


def is_write_failure(exc: BaseException) -> bool:
    """Disk full and friends, as raised by the OS, SQLite (the manifest) or Chroma's Rust core."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO):
        return True
    return any(text in str(exc).lower() for text in _WRITE_FAILURES)


def write_failure_message(settings: Settings, exc: BaseException) -> str:
    return (f"could not write to the store in {settings.home} ({str(exc).strip()[:160]}): the disk is full or "
            "failing. Everything stored before is intact; free some space and run it again: it resumes "
            "where it stopped.")


# Chroma folder -> the manifest generation this process's Chroma view is known to include.
_views: dict[str, int] = {}


def drop_stale_view(path, generation: int) -> bool:
    """Make the next client see what other processes wrote. Returns True if the view was stale.

    Chroma keeps one System per folder per process, and its in-memory vector index does not pick up
    what another process (`hearth ingest` beside the app) wrote after it was opened. When the
    manifest's generation moved on, that System is dropped from Chroma's cache (a private but stable
    registry, keyed by the folder) so the next client reopens the store from disk (~40 ms).
    """
    key = str(path)
    seen = _views.setdefault(key, generation)
    if seen == generation:
        return False
    force_reopen(path)
    _views[key] = generation
    return True


def force_reopen(path):
    """Drop this process's Chroma System for the folder `path`: the next client reopens it from disk."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient._identifier_to_system.pop(str(path), None)
    SharedSystemClient._identifier_to_refcount.pop(str(path), None)


def saw_generation(path, generation: int):
    """This process wrote the store itself (under the writer lock): its view includes `generation`."""
    _views[str(path)] = generation


def is_unreachable(exc: BaseException) -> bool:
    """A connection-level failure of the HTTP client (httpx), chromadb's refusal to connect, or a 401/403."""
    import httpx

    return (isinstance(exc, httpx.TransportError) or "could not connect to a chroma server" in str(exc).lower()
            or refused_status(exc) is not None)


def refused_status(exc: BaseException) -> int | None:
    """401 or 403 when the server (or a proxy in front of it) refused the request. chromadb re-raises
    an HTTP error as a bare Exception(body), so the status is read from the error it replaced."""
    import httpx

    seen = exc
    while seen is not None:
        if isinstance(seen, httpx.HTTPStatusError) and seen.response.status_code in (401, 403):
            return seen.response.status_code
        if type(seen).__name__ in ("AuthorizationError", "ChromaAuthError"):
            return 401 if type(seen).__name__ == "AuthorizationError" else 403
        seen = seen.__cause__ or seen.__context__
    return None


def unreachable_message(settings: Settings, exc: BaseException) -> str:
    status = refused_status(exc)
    if status:
        return (f"the Chroma server at {settings.chroma_url} refused Hearth (HTTP {status}): check "
                "HEARTH_CHROMA_TOKEN. Nothing was lost.")
    detail = "could not connect" if "could not connect" in str(exc).lower() else f"{type(exc).__name__}: {str(exc).strip()[:160]}"
    return (f"the Chroma server at {settings.chroma_url} is not answering ({detail}): is it running? "
            "Nothing was lost; try again once it is back (a running watch retries by itself).")


@contextmanager
def store_errors(settings: Settings):
    """A full disk becomes StoreWriteError and a Chroma server that is down StoreUnreachable: messages
    a user can act on (the journal repairs what was half-written either way)."""
    try:
        yield
    except (StoreWriteError, StoreUnreachable):
        raise
    except Exception as exc:
        if is_write_failure(exc):
            raise StoreWriteError(write_failure_message(settings, exc)) from exc
        if is_unreachable(exc):
            raise StoreUnreachable(unreachable_message(settings, exc)) from exc
        raise


def server_address(url: str) -> tuple[str, int, bool]:
    """(host, port, https) of HEARTH_CHROMA_URL: http://host:8000, https://host, or host:port."""
    parsed = urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"HEARTH_CHROMA_URL {url!r} is not a server address like http://host:8000")
    https = parsed.scheme == "https"
    return parsed.hostname, parsed.port or (443 if https else 8000), https


def check_collection_name(name: str) -> str:
    if name == "hearth-catalog" or re.search(r"\.reembed-[0-9a-f]{8}$", name):
        raise ValueError(f"the collection name {name!r} is Hearth's own (a Chroma server's manifest, or a rebuild)")
    if not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"invalid collection name {name!r}: use 3-64 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


def mismatch_message(collection: str, stored: tuple[str, int], wanted: tuple[str, int]) -> str:
    return (
        f"collection {collection!r} was built with {stored[0]} ({stored[1]} dimensions), "
        f"not {wanted[0]} ({wanted[1]}). Its vectors can't be mixed: use --reembed to rebuild it "
        f"with {wanted[0]}, set HEARTH_EMBED_MODEL={stored[0]} (or auto, the collection's own), "
        "or pick another --collection."
    )


def chroma_settings():
    """Chroma's own settings for every client Hearth opens: no telemetry, no reset."""
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)
