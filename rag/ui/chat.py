"""The chat page: a question, its lead quote, the streamed answer with each sentence checked, and a card
per source with the passage shown in its document."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import streamlit as st

from rag import api
from rag.api import Answer, Hearth, export, render

from .common import state
from .sidebar import current_chat, delete_chat, open_chat, rename_chat


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
