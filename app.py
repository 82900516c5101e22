"""Hearth's app: chat with your documents, manage the library. `make run` serves it on 127.0.0.1.

Everything it does goes through rag.api (the same verbs as the CLI): a question goes chat_page() ->
Hearth.ask (search, prompt, stream) -> show_answer(); uploads go library_page() -> Hearth.add_upload
-> Hearth.sync. All text a document or a model wrote is shown through rag.render, which escapes it:
nothing in it can run or fetch anything.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from datetime import datetime
from functools import partial
from pathlib import Path

import streamlit as st

from ingest.errors import HearthError, ServerError, StoreBusy, StoreError, StoreUnreachable, UploadError
from ingest.settings import Settings, load_settings
from rag import api
from rag.api import Answer, Hearth, export, render
from rag.jobs import SyncJob

st.set_page_config(page_title="Hearth", page_icon="🔥", layout="wide")
state = st.session_state


def refuse_unless_private():
    """.streamlit/config.toml beside this file binds 127.0.0.1 with telemetry off, however the app is
    started (Streamlit reads a config file next to the script over the user's and the working
    folder's). A command-line flag or STREAMLIT_* variable can still override it: then the app says
    so and shows nothing, unless HEARTH_APP_ADDRESS names that address on purpose."""
    from streamlit import config

    address = config.get_option("server.address") or "0.0.0.0"  # unset: every interface
    allowed = load_settings().app_address
    if config.get_option("browser.gatherUsageStats"):
        config.set_option("browser.gatherUsageStats", False)
        st.error("Streamlit was started with usage statistics on (browser.gatherUsageStats): Hearth turned "
                 "them off; reload the page.")
        st.stop()
    if not api.is_local(address) and address != allowed:
        st.error(render.text(f"This app was started listening on {address}, so other machines could reach "
                             "your documents. Start it with `make run` (127.0.0.1), or set HEARTH_APP_ADDRESS="
                             f"{address} to allow it."))
        st.stop()


refuse_unless_private()


FOREIGN_PAGE = "Hearth shows nothing here: this page is not addressed to this machine's own app."


def refuse_foreign_pages():
    """A page whose Host or Origin is not this app's own (a web page that rebound its name to
    127.0.0.1) gets nothing. `hearth serve` refuses it before Streamlit (rag/app_server.py); this is
    the same check for an app started with plain `streamlit run`."""
    from rag.origin import is_own, own_names

    headers = st.context.headers  # empty only outside a server (Streamlit's AppTest): HTTP/1.1 needs a Host
    if len(headers) and not is_own(headers.get("Host"), headers.get("Origin"), own_names(load_settings().app_address),
                                   schemes=("http", "https")):  # its port and scheme are not known here
        st.error(FOREIGN_PAGE)
        st.stop()


refuse_foreign_pages()


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


def open_library(settings: Settings) -> Hearth:
    def embedder(model: str):  # the collection's own model, loaded once for every session
        return shared_embedder(model, settings.embed_batch_size, settings.embed_precision, settings.embed_device)

    return Hearth(settings, state.get("collection") or settings.collection, embedder=embedder)


def flash(kind: str, message: str):
    """A message shown once, after the rerun that an action triggers."""
    state.setdefault("flash", []).append((kind, message))


def show_flash():
    for kind, message in state.pop("flash", []):
        getattr(st, kind)(render.text(message))


# --- sidebar: collection, model server, retrieval settings, store health -------------------------
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


def chat_page(lib: Hearth):
    chat_id = current_chat(lib)
    chat = lib.chats.get(chat_id) if chat_id else None
    history: list[Answer] = lib.chats.answers(chat_id) if chat_id else []
    left, right = st.columns([3, 1])
    left.header(render.text(chat.title) if chat else "Ask your documents")
    with right:
        if chat:
            st.download_button("Export chat", export.chat_markdown(history, lib.folder, lib.name, chat.title),
                               file_name=f"hearth-chat-{chat.id}.md", mime="text/markdown", on_click="ignore",
                               icon=":material/download:")
            with st.popover("Rename or delete", icon=":material/edit:"):
                st.text_input("Title", value=chat.title, key=f"rename-{chat.id}")
                st.button("Rename", on_click=rename_chat, args=(chat.id,), key=f"do-rename-{chat.id}")
                st.button("Delete this chat", on_click=delete_chat, args=(lib.name, chat.id), key=f"do-delete-{chat.id}",
                          icon=":material/delete:")
    scope: list[str] = []
    if not lib.has_documents():
        st.info("The library is empty: add documents on the Library page (sidebar).")
    else:
        scope = st.multiselect("Ask about", scope_choices(lib), key=f"scope-{lib.name}",
                               format_func=lambda path: export.display_path(path, lib.folder),
                               placeholder="All documents (or choose some)")
        if (len(scope) == 1 and not os.path.isdir(scope[0])
                and st.button("Summarize this document", icon=":material/summarize:", key="summarize")):
            summarize(lib, scope[0], chat_id)
    for i, answer in enumerate(history):
        with st.chat_message("user"):
            st.markdown(render.text(answer.question))
        with st.chat_message("assistant"):
            show_answer(answer, i, lib, chat_id)
    question = st.chat_input("Ask a question about your documents")
    if question:
        ask(lib, question, chat_id, scope)


SCOPE_CHOICES = 500  # documents listed to ask about; a bigger library is searched by name first


def scope_choices(lib: Hearth) -> list[str]:
    """What "Ask about" offers: every document of a small library; in a big one (100,000 documents
    would be sent to the browser on every page run) those whose path holds the words typed, and their
    folders, besides what is chosen already."""
    listed, total = lib.documents_page(limit=SCOPE_CHOICES)
    if total <= SCOPE_CHOICES:
        return [r.path for r in listed]
    chosen = state.get(f"scope-{lib.name}", [])
    find = st.text_input("Find documents to ask about", key=f"scope-find-{lib.name}",
                         placeholder=f"part of a file or folder name ({total:,} documents)").strip()
    found = [r.path for r in lib.documents_page(search=find, limit=SCOPE_CHOICES)[0]] if find else []
    folders = sorted({os.path.dirname(p) for p in found})
    return list(dict.fromkeys([*chosen, *folders, *found]))


def ask(lib: Hearth, question: str, chat_id: str | None, scope: list[str]):
    with st.chat_message("user"):
        st.markdown(render.text(question))
    if chat_id is None:
        chat_id = lib.new_chat(question).id
        open_chat(lib.name, chat_id)
    with st.chat_message("assistant"):
        with st.spinner("Searching your documents…"):
            stream = lib.ask(question, chat=chat_id, only=scope or None)
        if stream.passages:  # what the documents say comes first, before the model's first token
            show_lead(stream.lead(), stream.passages, lib)
        shown = st.empty()
        if stream.passages:  # sources are known before the first token: show them while it streams
            st.caption(render.text("Sources: " + " · ".join(_where(h.source, h.page, lib, h.ocr) for h in stream.passages)))
        text = ""
        with shown.container():
            st.caption("Thinking…")
        for delta in stream:
            text += delta
            shown.markdown(render.answer(text) + " ▌")
    st.rerun()


def summarize(lib: Hearth, path: str, chat_id: str | None):
    """Map (each part's summary shown as it is written), then reduce into the chat, saved like an answer."""
    name = export.display_path(path, lib.folder)
    question = f"Summarize {os.path.basename(path)}"
    if chat_id is None:
        chat_id = lib.new_chat(question).id
        open_chat(lib.name, chat_id)
    with st.chat_message("user"):
        st.markdown(render.text(question))
    with st.chat_message("assistant"):
        with st.status(render.text(f"Reading {name} part by part…"), expanded=True) as progress:
            lines: dict[int, object] = {}

            def on_part(i, n, page, text):
                if i not in lines:
                    lines[i] = st.empty()
                    progress.update(label=render.text(f"Part {i} of {n}" + (f" (page {page})" if page else "")))
                lines[i].markdown(render.text(f"{i}. {text}"))

            stream = lib.summarize(path, on_part, chat=chat_id)
            progress.update(label=render.text(f"Read {len(lines)} part(s) of {name}"), state="complete", expanded=False)
        shown, text = st.empty(), ""
        for delta in stream:
            text += delta
            shown.markdown(render.answer(text) + " ▌")
    st.rerun()


def _where(source: str, page: int | None, lib: Hearth, ocr: bool = False) -> str:
    return export.display_path(source, lib.folder) + (f", page {page}" if page else "") + (" (read by OCR)" if ocr else "")


def show_lead(lead, passages, lib: Hearth):
    """The passage span closest to the question, quoted with its source: shown before the answer."""
    if lead is None:
        return
    hit = passages[lead.n - 1]
    st.markdown("> " + render.text(f"“{lead.quote}”") + "  \n> " +
                render.text(f"— [{lead.n}] {_where(hit.source, hit.page, lib, hit.ocr)}"))


def show_answer(answer: Answer, i: int, lib: Hearth, chat_id: str | None, attempt: int = 1):
    """An answer with its marks and sources; `attempt` 2: the second attempt from the next passages
    (its widgets keyed apart), shown under the first when that one failed its own check."""
    tag = "" if attempt == 1 else f"-{attempt}"
    if answer.retry is not None:
        st.caption("First attempt:")
    if answer.passages:
        show_lead(answer.lead, answer.passages, lib)
    if answer.mismatch:
        st.error(render.text(api.MISMATCH_NOTE), icon=":material/report:")
    claims = [x for x in answer.sentences if x.supported is not None]
    if answer.answer:
        body = render.answer(answer.answer, [x.end for x in answer.unsupported],
                             backed=[x.end for x in answer.sentences if x.supported])
        if answer.mismatch:
            st.caption("The model's answer, not supported by the documents:")
            body = "\n".join("> " + line for line in body.split("\n"))
        st.markdown(body)
    if answer.incomplete or answer.error:
        st.warning(render.text(answer.error or "the answer is incomplete"))
    t = answer.timings
    st.caption(render.text(" · ".join(bit for bit in (
        answer.model, f"first token {t['first_token_ms'] / 1000:.1f} s" if "first_token_ms" in t else "",
        f"total {t.get('total_ms', 0) / 1000:.1f} s",
        f"searched for: {answer.query}" if answer.query and answer.query != answer.question else "") if bit)))
    if attempt == 1:  # the export holds a second attempt too
        st.download_button("Export answer", export.answer_markdown(answer, lib.folder, lib.name),
                           file_name=f"hearth-answer-{i + 1}.md", mime="text/markdown", key=f"export-{i}{tag}",
                           on_click="ignore", icon=":material/download:")
    cited = {c.n for c in answer.citations}
    for n, hit in enumerate(answer.passages, 1):
        mark = "cited" if n in cited else "not cited"
        label = f"[{n}] {_where(hit.source, hit.page, lib, hit.ocr)}" + (f" · § {hit.section}" if hit.section else "")
        with st.expander(render.text(f"{label} · {mark}"), expanded=n in cited):
            spans = [x.span for x in answer.sentences if x.supported and x.n == n]
            st.markdown(render.passage(hit.text, spans))
            left, right = st.columns(2)
            with left:
                source_download(hit.source, f"src-{i}-{n}{tag}")
            key = f"{lib.name}-{chat_id}-{i}-{n}{tag}"  # this chat's card: another chat's answer i is not it
            viewing = state.setdefault("viewing", {})
            with right:
                if key in viewing:
                    st.button("Close the document", key=f"close-{key}", on_click=viewing.pop, args=(key, None),
                              icon=":material/close:")
                else:
                    st.button("Show in the document", key=f"view-{key}", on_click=viewing.__setitem__,
                              args=(key, hit.chunk_id), icon=":material/find_in_page:")
            if key in viewing:
                quote = " … ".join(" ".join(hit.text[a:b].split()) for a, b in sorted(spans))
                source_view(lib, key, hit, quote)
    if answer.answer and claims:  # each sentence with the quote that backs it, after the sources
        backed = sum(bool(x.supported) for x in claims)
        with st.expander(render.text(f"Checked: {backed} of {len(claims)} sentences supported by the passages shown"),
                         expanded=bool(answer.unsupported)):
            for x in claims:
                if x.supported:
                    note = {"added": " (citation added)", "moved": " (citation corrected)"}.get(x.attributed, "")
                    st.markdown(f"{render.BACKED} " + render.text(" ".join(x.text.split())) + "  \n"
                                + render.text(f"[{x.n}] “{x.quote}”{note}") if x.quote else
                                f"{render.BACKED} " + render.text(" ".join(x.text.split())))
                else:
                    st.markdown(f"{render.UNSUPPORTED} " + render.text(" ".join(x.text.split())) + "  \n"
                                + render.text("no passage shown says this"))
    if answer.retry is not None:
        st.info(render.text(api.RETRY_NOTE), icon=":material/replay:")
        show_answer(answer.retry, i, lib, chat_id, attempt=2)


def source_view(lib: Hearth, key: str, cited, quote: str):
    """The passage where it stands: a PDF page with the span highlighted, or the text around it;
    the previous and next passage of the document one click away."""
    viewing = state.viewing
    hit = cited if viewing[key] == cited.chunk_id else lib.passage(viewing[key])
    if hit is None:
        viewing[key] = cited.chunk_id
        hit = cited
    shown = lib.view(hit, quote if hit.chunk_id == cited.chunk_id and quote else "")
    before, after = lib.passage(hit.chunk_id, -1), lib.passage(hit.chunk_id, 1)
    prev_col, where_col, next_col = st.columns([1, 2, 1])
    prev_col.button("Previous passage", key=f"prev-{key}", disabled=before is None, icon=":material/arrow_back:",
                    on_click=viewing.__setitem__, args=(key, before.chunk_id if before else hit.chunk_id))
    where_col.caption(render.text(_where(hit.source, hit.page, lib, hit.ocr) + (f" · § {hit.section}" if hit.section else "")))
    next_col.button("Next passage", key=f"next-{key}", disabled=after is None, icon=":material/arrow_forward:",
                    on_click=viewing.__setitem__, args=(key, after.chunk_id if after else hit.chunk_id))
    if shown["kind"] == "page":
        st.image(shown["png"], caption=f"page {hit.page}", width="stretch")
    elif shown["kind"] == "text":
        st.markdown(render.passage(shown["text"], [shown["span"]] if shown["span"] else []))
    else:
        st.caption(render.text(f"{hit.source} can't be shown: it is no longer on disk or can't be read"
                               + (f" ({shown['why']})" if shown.get("why") else "")))


def source_download(path: str, key: str):
    if os.path.isfile(path):
        st.download_button("Open the original file", partial(Path(path).read_bytes), file_name=os.path.basename(path),
                           key=key, on_click="ignore", icon=":material/description:")
    else:
        st.caption(render.text(f"{path} is no longer on disk"))


# --- library ----------------------------------------------------------------------------------
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
def running_bulk_ingest(lib: Hearth) -> SyncJob | None:
    job = bulk_ingests().get((str(lib.settings.home), lib.name))
    return job if job is not None and job.running else None


def start_bulk_ingest(lib: Hearth, paths: list[str], what: str, retry_failed: bool = False,
                      allow_removal: bool = False) -> SyncJob:
    # Hearth.start_sync: the loaded model is shared with the job's thread, as with the folder watcher.
    job = lib.start_sync(paths, what, retry_failed=retry_failed, allow_removal=allow_removal)
    bulk_ingests()[(str(lib.settings.home), lib.name)] = job
    return job


def add_folder(lib: Hearth):
    """A folder on this computer added in the background: its files stay where they are."""
    job = bulk_ingests().get((str(lib.settings.home), lib.name))
    running = job is not None and job.running
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    typed = left.text_input("Add a folder on this computer", key=f"bulk-folder-{lib.name}",
                            placeholder="~/Documents",
                            help="Every supported file under it is added, in the background: the app stays usable. "
                                 "The files stay where they are. Adding the same folder again adds what is new or "
                                 "changed, and goes on where a stopped run ended.")
    if right.button("Add folder", disabled=running, icon=":material/create_new_folder:", key=f"bulk-add-{lib.name}"):
        folder = os.path.expanduser(typed.strip())
        if not typed.strip():
            st.error("Type the path of a folder first, e.g. ~/Documents")
        elif not os.path.isabs(folder):
            st.error(render.text(f"{typed.strip()} is not a full path: type one like ~/Documents or "
                                 "/home/you/Documents"))
        elif not os.path.isdir(folder):
            st.error(render.text(f"{folder} is not a folder on this computer" + (
                " (it is a file: add files with Add documents above)" if os.path.isfile(folder) else "")))
        else:
            start_bulk_ingest(lib, [os.path.abspath(folder)], os.path.abspath(folder))
            st.rerun()  # the page again, "Add folder" disabled while it runs
    if job is None:
        return
    if running:
        bulk_progress(job)
    else:
        bulk_outcome(lib, job, (str(lib.settings.home), lib.name))


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


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
        rates = job.rates()
        st.caption(render.text(
            f"{rates[0]:.1f} files/s · {rates[1]:.0f} passages/s · about {_duration(rates[2])} left"
            if rates else "measuring the rate…") + render.text(f" · {job.chunks:,} passages embedded · "
                                                                f"{_duration(time.time() - job.started)} so far"))
        if job.current:
            st.caption(render.text(f"now: {os.path.basename(job.current)}"))
    st.button("Stop", on_click=job.stop.set, disabled=job.stop.is_set(), icon=":material/stop:", key="bulk-stop",
              help="Stops within seconds; the files done are kept, and adding the folder again goes on from there")


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
        st.success(render.text(f"{_doing(job, done=True)} {job.what}: {_counts(report)} in {_duration(report.seconds)}"))
    if report is not None and report.failures:
        st.caption(render.text(f"{len(report.failures):,} file(s) could not be added: they are listed under "
                               "Not ingested, with the reason."))
    for folder, hold in (report.held if report is not None else {}).items():
        st.warning(render.text(f"{hold.message(folder)}. Remove them only if those files were deleted on purpose."),
                   icon=":material/warning:")
        if st.button(f"Remove {hold.count:,} document(s)", key=f"bulk-allow-{folder}", icon=":material/delete:"):
            start_bulk_ingest(lib, [folder], folder, allow_removal=True)
            st.rerun()
    jobs = bulk_ingests()
    st.button("Dismiss", key="bulk-dismiss", on_click=lambda: jobs.get(key) is job and jobs.pop(key, None))


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

    def on_file(path, done, total, chunks):
        bar.progress(done / total if total else 1.0,
                     text=render.text(f"{done}/{total} files · {chunks} chunks embedded · {os.path.basename(path)}"))

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
    if st.button("Retry failed files", icon=":material/replay:", disabled=running_bulk_ingest(lib) is not None,
                 key=f"retry-failed-{lib.name}", help="Reads them again in the background (after you fixed or "
                                                      "replaced them); those that fail again stay listed here"):
        failed = lib.failed_paths()
        if failed:
            start_bulk_ingest(lib, failed, f"{len(failed):,} failed file(s)", retry_failed=True)
            st.rerun()
        flash("warning", "None of the files that failed is still on disk: delete them from the list.")
        st.rerun()
    return [shown[i][0] for i in event.selection.rows if 0 <= i < len(shown)]


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


def main():
    settings = current_settings()
    try:
        lib = open_library(settings)
        try:
            sidebar(settings, lib)
            if state.page == "Library":
                library_page(lib)
            else:
                show_flash()
                chat_page(lib)
            # Load the embedding model once the page is drawn: the first page shows ~3 s sooner, and a
            # question typed meanwhile runs when this finishes. (Not in a thread: torch imported beside
            # chromadb's numpy imports fails with circular-import errors.)
            lib.load_model()
        finally:
            lib.close()
    except StoreUnreachable as exc:  # a Chroma server restarting: say so; the next run reconnects
        st.error(render.text(str(exc)))
        st.button("Try again", icon=":material/refresh:")
    # The run's last Streamlit call, after its slow tail (the model loaded, the store closed): a run that a
    # click superseded meanwhile stops here. Finishing instead, it would clear the fragments that the newer
    # run registered (Streamlit keeps those of the last run to finish), and the progress of a background
    # ingest would stop updating.
    st.empty()


main()
