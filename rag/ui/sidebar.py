"""The sidebar: collections, the model server and its model, this session's settings, saved chats."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import streamlit as st

from ingest.errors import HearthError, ServerError
from ingest.settings import Settings, load_settings
from rag import api
from rag.api import Hearth, export, render

from .common import current_settings, flash, running_bulk_ingest, state


def create_collection():
    name = state.get("new_collection", "").strip()
    try:
        api.check_collection_name(name)
    except ValueError as exc:
        flash("error", str(exc))
        return
    model = EMBED_CHOICES[state.get("new_collection_model", AUTO)]
    try:
        with Hearth(current_settings(), name) as new:
            new.create(model)
    except HearthError as exc:
        flash("error", str(exc))
        return
    state.collection = name  # runs before the selectbox is drawn, so it may set its value
    state.new_collection = ""
    flash("success", f"collection '{name}' created: add documents to it in the Library")


AUTO = "Automatic: by the documents' language"
EMBED_CHOICES = {AUTO: api.AUTO_MODEL, "English: all-MiniLM-L6-v2": api.DEFAULT_EMBED_MODEL,
                 "Any language: multilingual-e5-small": api.MULTILINGUAL_MODEL}


def sidebar(settings: Settings, lib: Hearth):
    with st.sidebar:
        st.title(":material/local_fire_department: Hearth")
        st.radio("Page", ["Chat", "Library"], key="page", horizontal=True, label_visibility="collapsed")
        names = [row[0] for row in lib.collections()]
        if lib.name not in names:
            names.append(lib.name)
        state.collection = lib.name
        st.selectbox("Collection", sorted(names), key="collection")
        with st.popover("New collection"):
            st.text_input("Name", key="new_collection", placeholder="work-papers")
            st.selectbox("Embedding model", list(EMBED_CHOICES), key="new_collection_model",
                         help="Automatic: all-MiniLM-L6-v2 when the first documents are mostly English (faster, "
                              "better there), else multilingual-e5-small, which also finds passages in one "
                              "language from a question in another")
            st.button("Create", on_click=create_collection)
        if state.get("page", "Chat") == "Chat":
            saved_chats(lib)
        server_status(settings)
        with st.expander("Settings"):
            model_settings(settings)
        store_status(lib)


def server_status(settings: Settings):
    info = api.model_server(settings)
    state, _ = api.model_server_status(settings, info, timeout=1.0) if info else ("none", None)

    @st.fragment(run_every=2 if state == "starting" else None)
    def status():
        if state == "starting":  # refreshed every 2 s until the server is up (or gone): then redraw the page
            now = api.model_server(settings)
            if now is None or api.model_server_status(settings, now, timeout=1.0)[0] != "starting":
                st.rerun()
        st.subheader("Model server")
        if info is None:
            st.warning("No model server is running: questions show sources but no answer.")
            st.button("Start the model server", on_click=start_server, args=(settings,))
        elif state == "starting":
            since = f" for {time.time() - info.started_at:.0f} s" if info.started_at else ""
            st.info(render.text(f"{info.engine} ({info.model}) is starting{since}…"))
        elif state == "down":
            st.error(render.text(f"{info.url} does not answer: questions show sources but no answer."))
        elif state == "busy":
            st.success(render.text(f"{info.engine} · {info.model} · answering (busy with another question: "
                                   "a new one waits its turn)"))
        else:
            st.success(render.text(f"{info.engine} · {info.model} · answering"))
        if info is not None:
            st.caption(render.text(info.url))
            if state in ("answering", "busy"):  # "prompt 88 tokens/s; passages up to 247 tokens for ..."
                st.caption(render.text(api.passage_budget(settings, info).describe()))
        model_choice(settings, info)

    status()


def model_choice(settings: Settings, info):
    """The models this machine (or the remote server) offers; choosing one restarts Hearth's server."""
    choices = api.available_models(settings)
    if len(choices) < 2 and not (choices and info is None):
        return
    names = [c.name for c in choices]
    current = names.index(info.model) if info is not None and info.model in names else 0
    picked = st.selectbox("Model", names, index=current, key="model_choice",
                          format_func=lambda n: f"{n} ({next(c.engine for c in choices if c.name == n)})")
    choice = choices[names.index(picked)]
    if choice.engine == "remote":
        state.llm_model = picked  # the Settings expander, drawn after this, makes it this session's model
    elif info is None or picked != info.model:
        st.button("Answer with this model", on_click=use_model, args=(settings, choice), key="use-model",
                  help="Restarts Hearth's model server with it (for every session)")


def use_model(settings: Settings, choice):
    try:
        api.switch_model(settings, choice, wait=False)
        flash("success", f"starting {choice.name} ({choice.engine})")
    except ServerError as exc:
        flash("error", f"could not start {choice.name}: {exc}")


def start_server(settings: Settings):
    try:
        api.start_model_server(settings, wait=False)
    except ServerError as exc:
        flash("error", f"could not start the model server: {exc}")


def model_settings(settings: Settings):
    """Per-session choices; the defaults come from HEARTH_* settings."""
    base = load_settings()
    state.setdefault("llm_url", base.llm_url)  # the configured server shows here; blank = Hearth's own
    state.setdefault("llm_model", base.llm_model)
    st.text_input("Model server URL", key="llm_url", placeholder="Hearth's own server",
                  help="Any OpenAI-compatible server, e.g. http://gpu-box:8000/v1")
    st.text_input("Model name", key="llm_model", placeholder="the server's first model")
    st.selectbox("Retrieval", ["hybrid", "dense", "keyword"], index=["hybrid", "dense", "keyword"].index(base.retrieval),
                 key="retrieval", help="hybrid: meaning (embeddings) and exact words (BM25) fused; the best on the dev set")
    st.slider("Passages per answer (top-k)", 1, 20, base.top_k, key="top_k")
    st.slider("Minimum similarity", 0.0, 1.0, base.min_score, 0.05, key="min_score",
              help="Passages less similar than this are not given to the model")
    wanted = {k: state[k].strip() if isinstance(state[k], str) else state[k]
              for k in ("llm_url", "llm_model", "retrieval", "top_k", "min_score")}
    if wanted["llm_url"] != base.llm_url:
        try:
            api.check_model_server_url(wanted["llm_url"], base)
        except ServerError as exc:
            st.error(render.text(str(exc)))
            wanted["llm_url"] = base.llm_url
        else:
            wanted["llm_api_key"] = ""  # the configured key is for the configured server only
    st.caption(render.text(f"Reranking: {base.rerank_model}" if base.rerank_model else
                           "Reranking: off. No cross-encoder model ships offline; set HEARTH_RERANK_MODEL "
                           "to a local sentence-transformers CrossEncoder folder to re-order hybrid results."))
    changed = {k: v for k, v in wanted.items() if v != getattr(base, k) or k == "llm_api_key"}
    if changed != state.overrides:
        state.overrides = changed
        st.rerun()


def store_status(lib: Hearth):
    st.subheader("Store")
    try:
        docs, chunks = lib.totals()  # counted in the manifest: neither 100,000 records nor Chroma opened
    except Exception as exc:  # a broken store must be visible, not a blank page
        st.error(render.text(f"the store at {lib.settings.store_location} does not open: {exc}"))
        return
    st.caption(render.text(f"{docs:,} documents · {chunks:,} chunks in '{lib.name}' · {lib.settings.home}"))
    job = running_bulk_ingest(lib)
    if job is not None:
        st.caption(render.text(f"Adding {job.what} in the background: {job.done:,} of {job.total:,} files done"
                               if job.total else f"Adding {job.what} in the background…"))


# --- chat -------------------------------------------------------------------------------------
# --- saved chats (rag/chats.py): the sidebar list, the open one per collection --------------------
def current_chat(lib: Hearth) -> str | None:
    chat_id = state.setdefault("open_chat", {}).get(lib.name)
    if chat_id and lib.chats.get(chat_id) is None:  # deleted (here or elsewhere)
        chat_id = state.open_chat[lib.name] = None
    return chat_id


def open_chat(collection: str, chat_id: str | None):
    state.setdefault("open_chat", {})[collection] = chat_id
    state.pop("viewing", None)  # a document opened from another chat's card is not this chat's evidence


def saved_chats(lib: Hearth):
    st.subheader("Chats")
    st.button("New chat", on_click=open_chat, args=(lib.name, None), icon=":material/add_comment:",
              key="new-chat", width="stretch")
    search = st.text_input("Search chats", key="chat_search", placeholder="Search chats",
                           label_visibility="collapsed")
    chats = lib.chats.list(lib.name, search)
    current = current_chat(lib)
    for chat in chats[:30]:
        st.button(render.text(chat.title), key=f"chat-{chat.id}", on_click=open_chat, args=(lib.name, chat.id),
                  type="primary" if chat.id == current else "secondary", width="stretch")
    if len(chats) > 30:
        st.caption(f"{len(chats) - 30} older chats: search to find them")
    if not chats:
        st.caption("No chats match." if search else "Your chats are kept here.")
    if chats:  # the zip is built when the button is clicked, not on every run of the page
        st.download_button("Export all chats", partial(all_chats_zip, current_settings(), lib.name, search, lib.folder),
                           file_name="hearth-chats.zip", mime="application/zip", on_click="ignore",
                           icon=":material/download:", key="export-all-chats")


def all_chats_zip(settings: Settings, collection: str, search: str, folder: Path) -> bytes:
    """Runs on Streamlit's download thread, after this run's Hearth is closed: opens the chats anew."""
    with api.saved_chats(settings) as chats:
        return export.chats_zip([(c.id, c.title, chats.answers(c.id)) for c in chats.list(collection, search)], folder)


# Callbacks run before the next page run, once this run's Hearth is closed: they open the chats anew.
def rename_chat(chat_id: str):
    with api.saved_chats(current_settings()) as chats:
        try:
            chats.rename(chat_id, state.get(f"rename-{chat_id}", ""))
        except ValueError as exc:
            flash("error", str(exc))


def delete_chat(collection: str, chat_id: str):
    with api.saved_chats(current_settings()) as chats:
        chats.delete(chat_id)
    open_chat(collection, None)
    flash("success", "chat deleted")
