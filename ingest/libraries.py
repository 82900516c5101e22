"""Which library to open: the factory over ingest/library.py's abstract Library.

    open_library(settings)   a Chroma server's library when HEARTH_CHROMA_URL is set (server_library.py),
                             else the embedded one under HEARTH_HOME (local_library.py)
"""

from __future__ import annotations

from .library import Library
from .local_library import LocalLibrary
from .server_library import ServerLibrary
from .settings import Settings


def open_library(settings: Settings, collection: str | None = None, physical: str | None = None) -> Library:
    """The collection `collection` (default: the settings') of the library the settings call for;
    `physical` opens a rebuild of it being written beside it (pipeline.rebuild)."""
    kind = ServerLibrary if settings.chroma_url else LocalLibrary
    return kind(settings, collection, physical)
