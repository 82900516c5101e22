"""Every error Hearth reports to a user, in one place. str(error) is always the plain reason, never a
traceback; `exit_code` is the status the CLI exits with (README, "Exit statuses"), so a front end
catches HearthError (or StoreError) and needs no table of its own."""

from __future__ import annotations


class HearthError(Exception):
    """Something Hearth tells the user went wrong, in words."""

    exit_code = 1


class LoadError(HearthError):
    """A file that cannot be read; str(err) is the reason shown to the user."""


class ModelMismatch(HearthError):
    """The collection was built with another embedding model."""

    exit_code = 2


class UploadError(HearthError, ValueError):
    """An uploaded file that is refused (type, size, name)."""

    exit_code = 2


class ServerError(HearthError):
    """The model server could not be started, or is not one Hearth can use."""


class StoreError(HearthError):
    """The library's store could not do what was asked; nothing stored was lost."""


class StoreBusy(StoreError):
    """Another writer holds the store."""

    exit_code = 3


class LeaseLost(StoreBusy):
    """This instance's lease on a shared Chroma server ran out before it could renew it."""


class StoreWriteError(StoreError):
    """The store could not be written (disk full, file size limit, I/O error)."""

    exit_code = 4


class StoreUnreachable(StoreError):
    """The Chroma server does not answer (down, restarting, wrong URL) or refuses the token."""

    exit_code = 5
