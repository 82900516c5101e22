"""What every page of the app shares: the session state, caches that outlive a page run (the
embedding model, folder watchers, background ingests), the settings, messages carried to the next run."""

from __future__ import annotations


import streamlit as st

from ingest.errors import StoreBusy
from ingest.settings import Settings, load_settings
from rag import api
from rag.api import Hearth, render
from rag.jobs import SyncJob

state = st.session_state


@st.cache_resource(show_spinner=False)
def shared_embedder(name: str, batch_size: int, precision: str, device: str):
    """One model for every browser session, loaded at the end of the first page run (see main)."""
    return api.load_embedder(load_settings(embed_model=name, embed_batch_size=batch_size, embed_precision=precision,
                                           embed_device=device))


@st.cache_resource
def folder_watchers() -> dict:
    """(home, collection) -> (Watcher, its thread, its recent log lines): one per process, shared by
    every browser session, running until switched off."""
    return {}


@st.cache_resource
def bulk_ingests() -> dict:
    """(home, collection) -> SyncJob: the folder being added (or the last one added) in the
    background, one at a time per collection; shared by every browser session, outliving the page
    run that started it."""
    return {}


def current_settings() -> Settings:
    """HEARTH_* settings, with what this browser session changed in the sidebar on top."""
    return load_settings(**state.setdefault("overrides", {}))


def open_library(settings: Settings, collection: str | None = None) -> Hearth:
    """`collection` (default: the one picked in the sidebar), sharing the loaded embedding model."""
    def embedder(model: str):  # the collection's own model, loaded once for every session
        return shared_embedder(model, settings.embed_batch_size, settings.embed_precision, settings.embed_device)

    return Hearth(settings, collection or state.get("collection") or settings.collection, embedder=embedder)


def flash(kind: str, message: str):
    """A message shown once, after the rerun that an action triggers."""
    state.setdefault("flash", []).append((kind, message))


def show_flash():
    for kind, message in state.pop("flash", []):
        getattr(st, kind)(render.text(message))


# --- sidebar: collection, model server, retrieval settings, store health -------------------------


def running_bulk_ingest(lib: Hearth) -> SyncJob | None:
    job = bulk_ingests().get((str(lib.settings.home), lib.name))
    return job if job is not None and job.running else None


def start_bulk_ingest(settings: Settings, collection: str, paths: list[str], what: str, retry_failed: bool = False,
                      allow_removal: bool = False) -> SyncJob:
    """Hearth.start_sync of `collection` (sharing the loaded model, as the folder watcher does), kept in
    bulk_ingests(). It opens the collection itself: as a button's callback it runs before the page run
    has opened one."""
    key = (str(settings.home), collection)
    job = bulk_ingests().get(key)
    if job is not None and job.running:  # clicked twice before the page showed the button disabled
        return job
    with open_library(settings, collection) as lib:
        job = lib.start_sync(paths, what, retry_failed=retry_failed, allow_removal=allow_removal)
    bulk_ingests()[key] = job
    return job


def action_button(where, label: str, action, args: tuple = (), **button) -> None:
    """A button (`where`: st or a column) whose action runs once per click however page runs interleave:
    as its on_click, which runs as the click's page run begins, before another interaction can interrupt
    that run; or, where Streamlit skipped the callback (it forgets a button that an interrupted run had
    not drawn yet), when the button reads True. (Read from the return value alone, a click was lost when
    a newer run superseded the click's before it reached the button.)"""
    done = f"{button['key']}-done"

    def callback(*given):
        state[done] = True
        action(*given)

    if where.button(label, on_click=callback, args=args, **button) and not state.pop(done, False):
        action(*args)
        st.rerun()  # the page again, as it is after the action (drawn above as it was before)
    state.pop(done, None)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def busy_message(lib: Hearth, exc: Exception) -> str:
    """StoreBusy said plainly when it is this app's own background ingest that holds the store."""
    job = running_bulk_ingest(lib)
    if job is None or not isinstance(exc, StoreBusy):
        return str(exc)
    done = f" ({job.done:,} of {job.total:,} files done)" if job.total else ""
    return (f"A folder is being added in the background{done}: the library can't change until it has finished or "
            "is stopped (Stop, on the Library page). Try again then.")


def writer_wait(lib: Hearth) -> float:
    """How long an upload, re-index or delete waits for the store: not long behind a background ingest,
    which can take hours."""
    return 3 if running_bulk_ingest(lib) else 120


# --- uploads, re-index ------------------------------------------------------------------------------
