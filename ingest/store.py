"""The vector store component: Chroma, embedded (PersistentClient under HEARTH_HOME).

One Chroma collection per Hearth collection. Its metadata records the embedding model and dimension,
so a store is never searched or filled with vectors from another model.
"""

from __future__ import annotations

import errno
import os
import re

from .settings import Settings

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

MAX_BATCH = 4000  # Chroma refuses batches above ~5,400 records
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,62}[A-Za-z0-9]$")


class StoreWriteError(Exception):
    """The store could not be written (disk full, file size limit, I/O error); nothing was lost."""


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
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient._identifier_to_system.pop(key, None)
    SharedSystemClient._identifier_to_refcount.pop(key, None)
    _views[key] = generation
    return True


def saw_generation(path, generation: int):
    """This process wrote the store itself (under the writer lock): its view includes `generation`."""
    _views[str(path)] = generation


class ModelMismatch(Exception):
    pass


def check_collection_name(name: str) -> str:
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
        f"with {wanted[0]}, set HEARTH_EMBED_MODEL={stored[0]}, or pick another --collection."
    )


class Store:
    def __init__(self, settings: Settings):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        self.client = chromadb.PersistentClient(
            path=str(settings.chroma_path),
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
        )

    def collection(self, name: str, embed_model: str, dimension: int):
        """The Chroma collection `name`, created if needed; refuses one built with another model."""
        col = self.client.get_or_create_collection(
            check_collection_name(name),
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"hearth_embed_model": embed_model, "hearth_dimension": dimension},
            embedding_function=None,  # we always pass vectors; Chroma's default would download a model
        )
        meta = col.metadata or {}
        stored = (meta.get("hearth_embed_model"), meta.get("hearth_dimension"))
        if stored != (embed_model, dimension):
            raise ModelMismatch(mismatch_message(name, stored, (embed_model, dimension)))
        return col

    def drop(self, name: str):
        try:
            self.client.delete_collection(name)
        except Exception:  # chromadb raises NotFoundError (or ValueError in older releases)
            pass
