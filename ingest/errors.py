"""Every error Hearth reports to a user, in one place: the CLI maps each to an exit code and the app
to a message. str(error) is always the plain reason, never a traceback."""

from __future__ import annotations


class LoadError(Exception):
    """A file that cannot be read; str(err) is the reason shown to the user."""


class StoreBusy(Exception):
    """Another writer holds the store (CLI exit 3)."""


class LeaseLost(StoreBusy):
    """This instance's lease on a shared Chroma server ran out before it could renew it."""


class StoreWriteError(Exception):
    """The store could not be written (disk full, file size limit, I/O error); nothing was lost (exit 4)."""


class StoreUnreachable(Exception):
    """The Chroma server does not answer (down, restarting, wrong URL) or refuses the token; nothing
    was lost (exit 5)."""


class ModelMismatch(Exception):
    """The collection was built with another embedding model (exit 2)."""


class ServerError(Exception):
    """The model server could not be started, or is not one Hearth can use."""


class UploadError(ValueError):
    """An uploaded file that is refused (type, size, name)."""
