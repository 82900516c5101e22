"""The Library page: uploads, a folder added in the background, the folder watcher, the documents
table (paged, searched, sorted), failed files, deletion, and giving disk space back."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from datetime import datetime

import streamlit as st

from ingest.errors import HearthError, StoreError, UploadError
from ingest.settings import Settings
from rag import api
from rag.api import Hearth, export, render
from rag.jobs import SyncJob

from .common import (action_button, bulk_ingests, busy_message, duration, flash, folder_watchers, open_library,
                     running_bulk_ingest, show_flash, start_bulk_ingest, state, writer_wait)


def library_page(lib: Hearth):
    st.header("Library")
    st.caption(render.text(f"Collection '{lib.name}'. Uploaded files are kept in {lib.folder}."))
    state.setdefault("upload_round", 0)
    files = st.file_uploader("Add documents", type=[e.lstrip(".") for e in api.SUPPORTED_TYPES],
                             accept_multiple_files=True, key=f"upload-{state.upload_round}",
                             help=f"Up to {lib.settings.max_file_mb:g} MB a file")
    if files:
        add_uploads(lib, files)
    add_folder(lib)
    watch_switch(lib)
    if state.get("last_results"):
        st.subheader("Last run")
        for row in state.last_results:
            if row["status"] in ("failed", "skipped", "refused"):
                st.error(render.text(f"{row['file']} was not added: {row['details']}"))
        st.dataframe(state.last_results, hide_index=True, width="stretch")
    compact_offer(lib)
    documents_table(lib)


def compact_offer(lib: Hearth):
    """Once removed and changed documents left enough disk unused (Hearth.worth_compacting), offer
    to give it back: `hearth compact`."""
    if not lib.worth_compacting():
        return
    free, _ = lib.free_bytes()
    box = st.container(border=True)
    box.caption(f"Removed and changed documents left about {free / 2**20:.0f} MB unused on disk.")
    if box.button("Give the space back", key="compact"):
        try:
            before, after = lib.compact(wait=writer_wait(lib))
        except StoreError as exc:
            flash("error", busy_message(lib, exc))
            st.rerun()
        flash("success", f"the library now takes {after / 2**20:.0f} MB on disk ({max(0, before - after) / 2**20:.0f} "
              "MB given back)")
        st.rerun()


def watch_switch(lib: Hearth):
    """Keep the collection in sync with its library folder in the background (files copied there,
    edited, renamed or deleted by any program)."""
    key = (str(lib.settings.home), lib.name)
    running = folder_watchers().get(key)
    alive = running is not None and running[1].is_alive()
    on = st.toggle("Watch the library folder", value=alive, key=f"watch-{lib.name}",
                   help=f"Files added to, changed in or removed from {lib.folder} are synced within seconds")
    if on and not alive:
        lines: deque = deque(maxlen=8)
        watcher = lib.watch(on_change=lambda line: lines.append(f"{time.strftime('%H:%M:%S')} {line}"),
                            own_connection=True)  # open while it runs, beyond this page run
        thread = threading.Thread(target=watcher.run, daemon=True, name=f"hearth-watch-{lib.name}")
        thread.start()
        folder_watchers()[key] = running = (watcher, thread, lines)
    elif not on and alive:
        running[0].stop()
        running[1].join(timeout=60)
        folder_watchers().pop(key, None)
        return
    if on:
        watch_log(running[0], running[2])


@st.fragment(run_every=2)
def watch_log(watcher, lines: deque):
    """The watcher's latest changes, every 2 s; the whole page is redrawn when it changed something."""
    changes = len(watcher.results)
    if state.setdefault("watch_seen", changes) != changes:
        state.watch_seen = changes
        st.rerun()
    for folder in watcher.paused:  # unmounted or renamed: nothing is removed while it is away
        st.warning(render.text(f"{folder} is gone (not mounted? renamed?): its documents are kept, and watching "
                               "resumes when it is back."), icon=":material/pause_circle:")
    st.caption(render.text(" · ".join(list(lines)[-3:]) or "watching…"))


# --- bulk ingest: a folder of thousands of files, in the background (rag/jobs.py) -----------------


def add_folder(lib: Hearth):
    """A folder on this computer added in the background: its files stay where they are."""
    job = bulk_ingests().get((str(lib.settings.home), lib.name))
    running = job is not None and job.running
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    left.text_input("Add a folder on this computer", key=f"bulk-folder-{lib.name}",
                    placeholder="~/Documents",
                    help="Every supported file under it is added, in the background: the app stays usable. "
                         "The files stay where they are. Adding the same folder again adds what is new or "
                         "changed, and goes on where a stopped run ended.")
    action_button(right, "Add folder", add_typed_folder, (lib.settings, lib.name), disabled=running,
                  icon=":material/create_new_folder:", key=f"bulk-add-{lib.name}")
    if said := state.pop(f"bulk-folder-error-{lib.name}", None):
        st.error(render.text(said))
    if job is None:
        return
    if running:
        bulk_progress(job)
    else:
        bulk_outcome(lib, job, (str(lib.settings.home), lib.name))


def add_typed_folder(settings: Settings, collection: str):
    """"Add folder": the typed folder in the background, or why it can't be added (shown under it)."""
    typed = state.get(f"bulk-folder-{collection}", "").strip()
    folder = os.path.expanduser(typed)
    if not typed:
        problem = "Type the path of a folder first, e.g. ~/Documents"
    elif not os.path.isabs(folder):
        problem = f"{typed} is not a full path: type one like ~/Documents or /home/you/Documents"
    elif not os.path.isdir(folder):
        problem = f"{folder} is not a folder on this computer" + (
            " (it is a file: add files with Add documents above)" if os.path.isfile(folder) else "")
    else:
        problem = _start(settings, collection, [os.path.abspath(folder)], os.path.abspath(folder))
    if problem:
        state[f"bulk-folder-error-{collection}"] = problem


def _start(settings: Settings, collection: str, paths: list[str], what: str, **how) -> str | None:
    """start_bulk_ingest: None, or why it could not start (the store unreachable)."""
    try:
        start_bulk_ingest(settings, collection, paths, what, **how)
    except HearthError as exc:
        return str(exc)
    return None


def _doing(job: SyncJob, done: bool = False) -> str:
    return ("Retried" if done else "Retrying") if job.retry_failed else ("Added" if done else "Adding")


@st.fragment(run_every=1)
def bulk_progress(job: SyncJob):
    """Files done / to do, the rates and the time left, every second, with a Stop button; the whole page
    is redrawn when it ends (the outcome, and the documents it added in the table)."""
    if not job.running:
        st.rerun()
    if job.stop.is_set():
        st.info("Stopping… the files done are kept.", icon=":material/stop_circle:")
    elif job.waiting:
        st.info(render.text(job.waiting), icon=":material/hourglass_top:")
    elif not job.total:
        st.info(render.text(f"{_doing(job)} {job.what}: looking for new and changed files…"), icon=":material/search:")
    else:
        st.progress(job.done / job.total, text=render.text(f"{_doing(job)} {job.what}: {job.done:,} of {job.total:,} "
                                                           f"files done · {job.total - job.done:,} to do"))
        st.caption(render.text(_rates(job) + f" · {job.chunks:,} passages embedded · "
                               f"{duration(time.time() - job.started)} so far"))
        if job.current:
            st.caption(render.text(f"now: {os.path.basename(job.current)}"))
    st.button("Stop", on_click=job.stop.set, disabled=job.stop.is_set(), icon=":material/stop:", key="bulk-stop",
              help="Stops within seconds; the files done are kept, and adding the folder again goes on from there")


def _rates(job: SyncJob) -> str:
    rates = job.rates()
    if rates is None:
        return "measuring the rate…"
    said = [f"{rates.files:.1f} files/s", f"{rates.passages:.0f} passages/s"]
    said += [f"{rates.pages:.1f} pages/s ({job.pages:,} read)"] if job.pages else []
    return " · ".join(said + ([f"about {duration(rates.left_s)} left"] if rates.left_s is not None else []))


def _counts(report) -> str:
    counts = [(s, report.count(s)) for s in ("added", "updated", "moved", "copied", "removed")]
    counts += [("unchanged", report.unchanged), ("failed", len(report.failures))]
    return " · ".join(f"{n:,} {name}" for name, n in counts if n or name in ("added", "failed"))


def bulk_outcome(lib: Hearth, job: SyncJob, key: tuple):
    """How the last background ingest of this collection ended, until dismissed; removals it held back
    (a drive away, not deleted files: ingest/removal.py) are asked about."""
    again = "Retry failed files" if job.retry_failed else "Add folder"
    report = job.report
    if job.error:
        st.error(render.text(f"{_doing(job)} {job.what} did not finish: {job.error}"))
    elif report.stopped:
        st.warning(render.text(f"{_doing(job)} {job.what} stopped: {report.left:,} files left to do ({_counts(report)}). "
                               f"{again} again goes on where it stopped: nothing done is redone."),
                   icon=":material/pause_circle:")
    else:
        st.success(render.text(f"{_doing(job, done=True)} {job.what}: {_counts(report)} in {duration(report.seconds)}"))
    if report is not None and report.failures:
        st.caption(render.text(f"{len(report.failures):,} file(s) could not be added: they are listed under "
                               "Not ingested, with the reason."))
    for folder, hold in (report.held if report is not None else {}).items():
        st.warning(render.text(f"{hold.message(folder)}. Remove them only if those files were deleted on purpose."),
                   icon=":material/warning:")
        action_button(st, f"Remove {hold.count:,} document(s)", _allow_removal, (lib.settings, lib.name, folder),
                      key=f"bulk-allow-{folder}", icon=":material/delete:")
    jobs = bulk_ingests()
    st.button("Dismiss", key="bulk-dismiss", on_click=lambda: jobs.get(key) is job and jobs.pop(key, None))


def add_uploads(lib: Hearth, files):
    rows, saved = [], []
    for f in files:
        try:
            saved.append(str(lib.add_upload(f.name, f.getvalue())))
        except UploadError as exc:
            rows.append({"file": f.name, "status": "refused", "chunks": 0, "details": str(exc)})
    if saved:
        report = run_ingest(lib, saved)
        if report is not None:
            rows += _report_rows(report, lib)
    state.last_results = rows
    state.upload_round += 1  # a fresh, empty uploader
    st.rerun()


def run_ingest(lib: Hearth, paths: list[str], force: bool = False):
    """Ingest with a progress bar; None (and a message) when another writer holds the store."""
    bar = st.progress(0.0, text="Starting…")

    def on_file(path, done, total, chunks, pages):
        read = f" · {pages} pages read" if pages else ""
        bar.progress(done / total if total else 1.0, text=render.text(
            f"{done}/{total} files · {chunks} chunks embedded{read} · {os.path.basename(path)}"))

    try:
        return lib.sync(paths, force=force, progress=on_file, wait=writer_wait(lib),
                        on_wait=lambda m: bar.progress(0.0, text=render.text(m)))
    except StoreError as exc:
        flash("error", busy_message(lib, exc))
        return None


def _report_rows(report, lib: Hearth) -> list[dict]:
    return [{"file": export.display_path(r.path, lib.folder), "status": r.status, "chunks": r.chunks,
             "details": r.reason} for r in report.results] + (
        [{"file": f"{report.unchanged} file(s)", "status": "unchanged", "chunks": 0, "details": ""}]
        if report.unchanged else [])


# --- the documents: a page at a time, for 100,000 of them --------------------------------------------
SORT_CHOICES = {"name": "path", "last indexed": "indexed", "size": "size", "chunks": "chunks", "pages": "pages",
                "language": "language"}
PAGE_SIZE = 50
FAILED_SHOWN = 200


def clear_selection():
    """A fresh table key: rows picked on another page (or before a delete) are not picked any more."""
    state.docs_round = state.get("docs_round", 0) + 1


def _turn_page(key: str, step: int):
    state[key] = max(1, state.get(key, 1) + step)


def documents_table(lib: Hearth):
    total = lib.documents_page(limit=1)[1]
    st.subheader(f"{total:,} documents")
    st.caption(f"Embedding model: {lib.embed_model or 'chosen by the first documents’ language'}")
    show_flash()
    problems = lib.problems()
    picked = paged_documents(lib) if total else []
    if problems:
        picked += failed_files(lib, problems)
    if not (total or problems):
        return
    left, right, _ = st.columns([1, 1, 4])
    if left.button("Delete", disabled=not picked, icon=":material/delete:"):
        state.confirm_delete = picked
    if state.get("confirm_delete"):
        confirm_delete(lib, state.confirm_delete)
    if right.button("Re-index", disabled=not picked, icon=":material/refresh:"):
        report = run_ingest(lib, picked, force=True)
        if report is not None:
            state.last_results = _report_rows(report, lib)
        clear_selection()
        st.rerun()


def paged_documents(lib: Hearth) -> list[str]:
    """Search, sort and one page of PAGE_SIZE documents (Hearth.documents_page: SQL does the paging);
    returns the paths of the rows picked on this page."""
    name = lib.name
    search_col, sort_col, order_col = st.columns([3, 2, 1], vertical_alignment="bottom")
    search = search_col.text_input("Search documents", key=f"docs-search-{name}",
                                   placeholder="Part of a file or folder name").strip()
    sort = sort_col.selectbox("Sort by", list(SORT_CHOICES), key=f"docs-sort-{name}")
    descending = order_col.toggle("Descending", key=f"docs-desc-{name}")
    page_key = f"docs-page-{name}"
    if state.get("docs_view") != (name, search, sort, descending):  # a new search or order starts at page 1
        state.docs_view = (name, search, sort, descending)
        state[page_key] = 1
    page = state.setdefault(page_key, 1)
    records, matching = lib.documents_page(search, SORT_CHOICES[sort], descending, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    pages = max(1, -(-matching // PAGE_SIZE))
    if page > pages:  # past the end (documents deleted, here or elsewhere): the last page
        page = state[page_key] = pages
        records, matching = lib.documents_page(search, SORT_CHOICES[sort], descending, (page - 1) * PAGE_SIZE,
                                               PAGE_SIZE)
    if state.get("docs_shown") != (name, search, sort, descending, page):
        state.docs_shown = (name, search, sort, descending, page)
        clear_selection()
    if not records:
        st.caption(render.text(f"No document's path holds “{search}”."))
        return []
    event = st.dataframe([{
        "file": export.display_path(r.path, lib.folder), "pages": r.pages, "chunks": r.chunks,
        "size KB": round(r.size / 1024), "language": r.language or "",
        "last indexed": datetime.fromtimestamp(r.indexed_at).strftime("%Y-%m-%d %H:%M"), "notes": r.notes or "",
    } for r in records], hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row",
        key=f"docs-table-{state.get('docs_round', 0)}")
    first = (page - 1) * PAGE_SIZE + 1
    prev_col, where_col, number_col, next_col = st.columns([1, 3, 1, 1], vertical_alignment="center")
    prev_col.button("Previous", on_click=_turn_page, args=(page_key, -1), disabled=page <= 1,
                    icon=":material/arrow_back:", key=f"docs-prev-{name}")
    where_col.caption(render.text(f"documents {first:,}–{first + len(records) - 1:,} of {matching:,}"
                                  + (f" whose path holds “{search}”" if search else "")
                                  + ("" if state.get("confirm_delete") else " · select rows to delete or re-index them")))
    if pages > 1:
        number_col.number_input("Page", min_value=1, max_value=pages, step=1, key=page_key,
                                label_visibility="collapsed")
    next_col.button("Next", on_click=_turn_page, args=(page_key, 1), disabled=page >= pages,
                    icon=":material/arrow_forward:", key=f"docs-next-{name}")
    return [records[i].path for i in event.selection.rows if 0 <= i < len(records)]


def failed_files(lib: Hearth, problems: dict[str, str]) -> list[str]:
    """The files that could not be added, each with its reason (the first FAILED_SHOWN), and a button
    that reads them again in the background; returns the paths of the rows picked."""
    st.subheader("Not ingested")
    shown = sorted(problems.items())[:FAILED_SHOWN]
    event = st.dataframe([{"file": export.display_path(p, lib.folder), "reason": why} for p, why in shown],
                         hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row",
                         key=f"failed-table-{state.get('docs_round', 0)}")
    if len(problems) > FAILED_SHOWN:
        st.caption(render.text(f"The first {FAILED_SHOWN} of {len(problems):,} files that could not be added: "
                               "`hearth docs` lists them all."))
    action_button(st, "Retry failed files", retry_failed_files, (lib.settings, lib.name), icon=":material/replay:",
                  disabled=running_bulk_ingest(lib) is not None, key=f"retry-failed-{lib.name}",
                  help="Reads them again in the background (after you fixed or replaced them); those that fail "
                       "again stay listed here")
    return [shown[i][0] for i in event.selection.rows if 0 <= i < len(shown)]


def retry_failed_files(settings: Settings, collection: str):
    """"Retry failed files": those still on disk, read again in the background."""
    try:
        with open_library(settings, collection) as lib:
            failed = lib.failed_paths()
    except HearthError as exc:
        flash("error", str(exc))
        return
    if not failed:
        flash("warning", "None of the files that failed is still on disk: delete them from the list.")
        return
    _start_or_flash(settings, collection, failed, f"{len(failed):,} failed file(s)", retry_failed=True)


def _start_or_flash(settings: Settings, collection: str, paths: list[str], what: str, **how):
    if problem := _start(settings, collection, paths, what, **how):
        flash("error", problem)


def _allow_removal(settings: Settings, collection: str, folder: str):
    """The sync again, removing the documents it held back (the user confirmed the files were deleted)."""
    _start_or_flash(settings, collection, [folder], folder, allow_removal=True)


def confirm_delete(lib: Hearth, paths: list[str]):
    """Nothing is deleted on the first click: say what goes (documents, and which files on disk) first."""
    on_disk = lib.uploads_among(paths)
    lines = [f"Forget {len(paths)} document(s) from the collection '{lib.name}'?"]
    if on_disk:
        lines.append(f"These {len(on_disk)} file(s) were uploaded to the library folder and are deleted from disk too: "
                     + ", ".join(export.display_path(p, lib.folder) for p in on_disk) + ".")
    if len(on_disk) < len(paths):
        lines.append(f"{len(paths) - len(on_disk)} file(s) elsewhere stay on disk.")
    st.warning(render.text(" ".join(lines)), icon=":material/warning:")
    yes, no, _ = st.columns([1, 1, 4])
    if yes.button("Yes, delete", type="primary", icon=":material/delete_forever:"):
        del state.confirm_delete
        delete(lib, paths)
    if no.button("Cancel"):
        del state.confirm_delete
        st.rerun()


def delete(lib: Hearth, paths: list[str]):
    """Forget the documents; files that were uploaded here (inside the library folder) are deleted too."""
    try:
        removed = lib.remove(paths, wait=writer_wait(lib))
    except StoreError as exc:
        flash("error", busy_message(lib, exc))
        st.rerun()
    kept = len(paths) - len(lib.delete_uploads(paths))
    clear_selection()
    flash("success", f"deleted {len(removed)} document(s), {sum(r.chunks for r in removed)} chunks"
          + (f"; {kept} file(s) outside the library folder stay on disk" if kept else ""))
    st.rerun()
