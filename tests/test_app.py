"""The app's page logic with Streamlit's AppTest: a real store, the real embedding model, no browser.

The model server is either absent or a real process that does not answer yet (a server "starting");
answers from a real model server are covered in the browser test.
"""

from __future__ import annotations

import json
import threading
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from ingest.pipeline import Ingestor
from make_files import text_pdf
from rag import llm_server
from rag.api import Hearth

FACTS = [
    "Household paperwork. The tax return for 2025 is due on the 31st of July 2026.",
    "Receipts must be kept for six years. <script>window.pwned=1</script> <img src=x onerror=alert(1)> df$x",
    "The boiler is serviced every October by Northside Heating.",
]


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    text_pdf(root / "household.pdf", FACTS, title="Household")
    return root


@pytest.fixture
def filled(library, corpus):
    Ingestor(library).sync([corpus])
    return library


def run_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    return at.run()


def _labels(elements) -> list[str]:
    return [e.label for e in elements]


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _plain(md: str) -> str:
    return md.replace("\\", "").replace("\u2060", "")


def _answers(at) -> list:
    """The answers of the chat open in the app (saved in HEARTH_HOME's chats)."""
    from ingest.settings import load_settings
    from rag.chats import Chats

    chat_id = at.session_state.open_chat.get("default")
    return Chats(load_settings()).answers(chat_id) if chat_id else []


def test_empty_library_and_no_model_server_are_said_plainly(home):
    at = run_app()
    assert not at.exception
    assert any("library is empty" in i.value for i in at.info)
    assert any("No model server is running" in w.value for w in at.sidebar.warning)
    assert "Start the model server" in _labels(at.sidebar.button)


def test_question_without_a_server_shows_sources_and_says_why(filled, corpus):
    at = run_app()
    at.chat_input[0].set_value("How long must receipts be kept?").run()
    assert not at.exception
    assert any("no model server is running" in w.value for w in at.warning)
    labels = [_plain(e.label) for e in at.main.expander]
    assert labels[0].startswith(f"[1] {corpus}/household.pdf, page 2")  # the best passage first, with its page
    # The document's HTML is shown as text (escaped), and nothing else renders it.
    cards = [_plain(m.value) for m in at.markdown if "window.pwned" in _plain(m.value)]
    assert cards and "<script>window.pwned=1</script>" in cards[0] and "df$x" in cards[0]
    assert _answers(at)[0].question == "How long must receipts be kept?"


def test_a_question_can_be_asked_of_chosen_documents(filled, corpus):
    (corpus / "receipts-faq.md").write_text("# Receipts\n\nShop receipts for a warranty are kept until it ends.\n")
    Ingestor(filled).sync([corpus])
    at = run_app()
    question = "How long must receipts be kept?"
    at.chat_input[0].set_value(question).run()
    assert {h.source for h in _answers(at)[0].passages} == {str(corpus / "household.pdf"), str(corpus / "receipts-faq.md")}
    at.multiselect(key="scope-default").select(str(corpus / "receipts-faq.md")).run()
    at.chat_input[0].set_value(question).run()
    answer = _answers(at)[-1]
    assert {h.source for h in answer.passages} == {str(corpus / "receipts-faq.md")}


def test_model_server_starting_is_shown_and_sources_still_come(filled, home):
    # A real managed-server process that does not answer yet: the state Hearth is in while it starts.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (home / "llm.json").write_text(json.dumps({
            "engine": "llamacpp", "model": "qwen", "url": "http://127.0.0.1:9/v1", "pid": sleeper.pid,
            "port": 9, "log": None, "started_at": time.time() - 3, "managed": True,
            "proc_start": llm_server.process_start_time(sleeper.pid)}))
        at = run_app()
        assert any("is starting" in i.value for i in at.sidebar.info)
        at.chat_input[0].set_value("When is the boiler serviced?").run()
        assert any("still starting" in w.value for w in at.warning)
        assert "page 3" in _plain(at.main.expander[0].label)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_new_chat_clears_the_history(filled):
    at = run_app()
    at.chat_input[0].set_value("When is the tax return due?").run()
    assert len(_answers(at)) == 1 and "New chat" in _labels(at.button)
    _button(at, "New chat").click().run()
    assert _answers(at) == [] and not at.main.expander


def test_a_document_opened_from_a_card_closes_on_a_new_or_another_chat(filled):
    at = run_app()
    at.chat_input[0].set_value("When is the boiler serviced?").run()
    first = at.session_state.open_chat["default"]
    _button(at, "Show in the document").click().run()
    assert "Close the document" in _labels(at.button)
    _button(at, "New chat").click().run()
    at.chat_input[0].set_value("When is the tax return due?").run()  # its card [1] is another passage
    assert not at.exception and "Close the document" not in _labels(at.button)
    _button(at, "Show in the document").click().run()
    at.button(key=f"chat-{first}").click().run()
    assert "Close the document" not in _labels(at.button)


def test_a_damaged_saved_answer_is_shown_as_unreadable_and_the_zip_is_built_when_asked(filled, home, monkeypatch):
    import sqlite3
    import zipfile
    from io import BytesIO

    from ingest.settings import load_settings
    from rag import export
    from rag.chats import UNREADABLE, Chats

    at = run_app()
    at.chat_input[0].set_value("When is the boiler serviced?").run()
    at.chat_input[0].set_value("When is the tax return due?").run()
    chat_id = at.session_state.open_chat["default"]
    with sqlite3.connect(home / "chats.sqlite3") as db:  # a record written by another version, or damaged
        db.execute("UPDATE turns SET record = '{\"question\": 1' WHERE chat_id = ? AND n = "
                   "(SELECT MIN(n) FROM turns WHERE chat_id = ?)", (chat_id, chat_id))
    built, chats_zip = [], export.chats_zip
    monkeypatch.setattr(export, "chats_zip", lambda *a, **k: built.append(a) or b"")
    at = run_app()
    at.button(key=f"chat-{chat_id}").click().run()
    assert not at.exception and "Export all chats" in _labels(at.get("download_button"))
    assert any(UNREADABLE in _plain(w.value) for w in at.warning)
    assert any("When is the tax return due?" in _plain(m.value) for m in at.markdown)  # the other answer stands
    assert built == []  # nothing zipped until the button is clicked
    with Chats(load_settings()) as chats:
        archive = zipfile.ZipFile(BytesIO(chats_zip([(chat_id, "t", chats.answers(chat_id))])))
    assert UNREADABLE in archive.read(f"hearth-chat-{chat_id}.md").decode().replace("\\", "")


def test_collections_are_created_and_switched(filled):
    at = run_app()
    at.sidebar.text_input(key="new_collection").input("bad name!").run()
    _button(at.sidebar, "Create").click().run()
    assert any("invalid collection name" in e.value for e in at.error)
    at.sidebar.text_input(key="new_collection").input("work-papers").run()
    _button(at.sidebar, "Create").click().run()
    assert at.sidebar.selectbox(key="collection").value == "work-papers"
    at.sidebar.radio(key="page").set_value("Library").run()
    assert any(h.value == "0 documents" for h in at.subheader)
    at.sidebar.selectbox(key="collection").set_value("default").run()
    assert any(h.value == "1 documents" for h in at.subheader)
    # a collection made with the multilingual model before it holds anything, and the Library says so
    at.sidebar.text_input(key="new_collection").input("briefe").run()
    at.sidebar.selectbox(key="new_collection_model").set_value("Any language: multilingual-e5-small").run()
    _button(at.sidebar, "Create").click().run()
    assert at.sidebar.selectbox(key="collection").value == "briefe"
    assert any("multilingual-e5-small" in c.value for c in at.caption)
    assert ("briefe", "multilingual-e5-small") in [row[:2] for row in Hearth().collections()]


def _pick(at, *rows, table: str = "docs-table") -> AppTest:
    """Select rows of the documents table (or the "failed-table"), as a click on their checkboxes does."""
    shown = next(d for d in at.dataframe if (d.key or "").startswith(table))
    at.session_state[shown.key] = {"selection": {"rows": list(rows), "columns": [], "cells": []}}
    return at.run()


def _table(at, table: str = "docs-table"):
    return next(d for d in at.dataframe if (d.key or "").startswith(table)).value


def test_library_lists_reindexes_and_deletes(open_library, home):
    lib = open_library()
    uploaded = lib.folder / "household.pdf"  # as the app stores an upload
    lib.folder.mkdir(parents=True)
    text_pdf(uploaded, FACTS, title="Household")
    Ingestor(lib).sync([uploaded])
    at = run_app()
    at.sidebar.radio(key="page").set_value("Library").run()
    table = _table(at)
    assert list(table["file"]) == ["household.pdf"] and list(table["pages"]) == [3] and list(table["chunks"]) == [3]
    assert _button(at, "Delete").disabled and _button(at, "Re-index").disabled  # nothing picked yet
    _pick(at, 0)
    _button(at, "Re-index").click().run()
    assert not at.exception
    assert at.session_state.last_results[0]["status"] == "updated"
    assert _button(at, "Delete").disabled  # the selection went with the re-index
    _pick(at, 0)
    _button(at, "Delete").click().run()  # asks first, saying which file on disk goes
    assert any("deleted from disk too: household.pdf" in _plain(w.value) for w in at.warning)
    _button(at, "Cancel").click().run()
    assert len(lib.documents()) == 1 and uploaded.exists() and "Yes, delete" not in _labels(at.button)
    _pick(at, 0)
    _button(at, "Delete").click().run()
    assert len(lib.documents()) == 1 and uploaded.exists()
    _button(at, "Yes, delete").click().run()
    assert any("deleted 1 document(s), 3 chunks" in _plain(s.value) for s in at.success)
    assert lib.documents() == [] and not uploaded.exists()  # an uploaded copy goes with its document
    assert any(h.value == "0 documents" for h in at.subheader)


def test_the_documents_table_pages_searches_and_sorts(open_library, home, tmp_path):
    """Hearth.documents_page gives the table a page at a time: 50 rows, previous/next, a search by
    path, a sort by any column either way."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(120):
        (folder / f"note-{i:03d}.md").write_text(f"# Note {i}\n\nThe shed key number {i} hangs by the door.\n")
    (folder / "note-big.md").write_text("# Big\n\n" + "The long letter about the garden wall. " * 60)
    lib = open_library()
    Ingestor(lib).sync([folder])
    names = sorted(p.name for p in folder.iterdir())
    at = run_app()
    at.sidebar.radio(key="page").set_value("Library").run()
    assert any(h.value == "121 documents" for h in at.subheader)

    def shown():
        return [name.rsplit("/", 1)[-1] for name in _table(at)["file"]]

    assert shown() == names[:50]
    assert any("documents 1–50 of 121" in _plain(c.value) for c in at.caption)
    assert _button(at, "Previous").disabled
    _button(at, "Next").click().run()
    assert shown() == names[50:100] and any("documents 51–100 of 121" in _plain(c.value) for c in at.caption)
    _button(at, "Next").click().run()
    assert shown() == names[100:] and _button(at, "Next").disabled
    at.number_input(key="docs-page-default").set_value(2).run()
    assert shown() == names[50:100]
    # rows are picked from the page shown: the 3rd row of page 2 is note-052
    _pick(at, 2)
    _button(at, "Delete").click().run()
    assert any("Forget 1 document(s)" in _plain(w.value) for w in at.warning)
    _button(at, "Cancel").click().run()

    at.text_input(key="docs-search-default").input("note-11").run()  # a search starts at page 1
    assert shown() == [f"note-11{i}.md" for i in range(10)]
    assert any("documents 1–10 of 10" in _plain(c.value) for c in at.caption)
    at.text_input(key="docs-search-default").input("no such note").run()
    assert not any((d.key or "").startswith("docs-table") for d in at.dataframe)
    assert any("No document's path holds" in _plain(c.value) for c in at.caption)
    at.text_input(key="docs-search-default").input("").run()

    at.selectbox(key="docs-sort-default").set_value("size").run()
    at.toggle(key="docs-desc-default").set_value(True).run()
    assert shown()[0] == "note-big.md" and len(shown()) == 50
    at.toggle(key="docs-desc-default").set_value(False).run()
    assert shown()[0] != "note-big.md" and "note-big.md" not in shown()
    at.selectbox(key="docs-sort-default").set_value("name").run()
    assert shown() == names[:50]
    assert not at.exception


def _letters(folder, n: int):
    """n small Markdown letters of two or three passages each."""
    folder.mkdir(parents=True, exist_ok=True)
    words = "kettle harbour ledger violin orchard lantern pepper meadow copper signal winter ladder river".split()
    for i in range(n):
        paras = [" ".join(words[(i + j * 7 + k) % len(words)] for k in range(110)) for j in range(2 + i % 2)]
        (folder / f"letter-{i:03d}.md").write_text(f"# Letter {i}\n\n" + "\n\n".join(paras))
    return folder


def _progress_done(at) -> tuple[int, int] | None:
    """(files done, files to do) from the background ingest's progress bar, if it is shown."""
    import re

    for bar in at.progress:
        found = re.search(r"([\d,]+) of ([\d,]+) files done", _plain(bar.text))
        if found:
            return int(found[1].replace(",", "")), int(found[2].replace(",", ""))
    return None


def _bulk_threads(collection: str = "default") -> list:
    return [t for t in threading.enumerate() if t.name == f"hearth-ingest-{collection}"]


@pytest.mark.slow  # ~45 s on a busy two-core machine: 400 files embedded, and the app's own model loaded
def test_a_folder_is_added_in_the_background_stopped_and_resumed(open_library, home, tmp_path, corpus):
    folder = _letters(tmp_path / "letters", 400)
    lib = open_library()
    Ingestor(lib).sync([corpus])  # something to ask about while the folder is added
    at = run_app()
    at.sidebar.radio(key="page").set_value("Library").run()
    at.text_input(key="bulk-folder-default").input(str(tmp_path / "no-such-folder")).run()
    _button(at, "Add folder").click().run()
    assert any("is not a folder on this computer" in _plain(e.value) for e in at.error) and not _bulk_threads()
    at.text_input(key="bulk-folder-default").input(str(folder)).run()
    _button(at, "Add folder").click().run()
    try:
        assert _wait_until(lambda: at.run() and (_progress_done(at) or (0, 0))[0] > 0)
        done, total = _progress_done(at)
        assert total == 400 and _button(at, "Add folder").disabled  # one at a time per collection
        # the app stays usable: another session searches while it runs, and a delete says at once why it waits
        other = run_app()
        other.chat_input[0].set_value("When is the boiler serviced?").run()
        assert not other.exception and "page 3" in _plain(other.main.expander[0].label)
        _pick(at, 0)  # household.pdf
        _button(at, "Delete").click().run()
        _button(at, "Yes, delete").click().run()
        assert any("A folder is being added in the background" in _plain(e.value) for e in at.error)
        assert str(corpus / "household.pdf") in [r.path for r in lib.documents()]
        _button(at, "Stop").click().run()
        assert _wait_until(lambda: at.run() and any("stopped:" in _plain(w.value) for w in at.warning))
    finally:
        if _bulk_threads():
            _button(at, "Stop").click().run()
        assert _wait_until(lambda: not _bulk_threads())
    stopped = next(_plain(w.value) for w in at.warning if "stopped:" in _plain(w.value))
    kept = len(lib.documents()) - 1
    assert 0 < kept < 400 and f"{400 - kept} files left to do" in stopped
    assert "Add folder again goes on where it stopped" in stopped
    assert lib.collection.count() == sum(r.chunks for r in lib.documents())

    _button(at, "Add folder").click().run()  # the same folder again: only the files left are done
    try:
        assert _wait_until(lambda: at.run() and any(f"Added {folder}" in _plain(s.value) for s in at.success), 120)
    finally:
        if _bulk_threads():
            _button(at, "Stop").click().run()
    added = next(_plain(s.value) for s in at.success if f"Added {folder}" in _plain(s.value))
    assert f"{400 - kept} added" in added and f"{kept} unchanged" in added and "0 failed" in added
    records = lib.documents()
    assert sorted(r.path for r in records) == sorted([str(p) for p in folder.iterdir()] + [str(corpus / "household.pdf")])
    assert lib.collection.count() == sum(r.chunks for r in records)  # every file once, nothing embedded twice
    assert any(h.value == "401 documents" for h in at.subheader)
    _button(at, "Dismiss").click().run()
    assert not any(f"Added {folder}" in _plain(s.value) for s in at.success) and not _button(at, "Add folder").disabled


def test_a_failed_file_is_listed_with_its_reason_and_retried(open_library, home, tmp_path):
    from make_files import corrupt_pdf

    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "fine.md").write_text("# Fine\n\nThe boiler is serviced every October.\n")
    broken = corrupt_pdf(folder / "broken.pdf")
    lib = open_library()
    reason = next(r.reason for r in Ingestor(lib).sync([folder]).failures)
    at = run_app()
    at.sidebar.radio(key="page").set_value("Library").run()
    failed = _table(at, "failed-table")
    assert [f.rsplit("/", 1)[-1] for f in failed["file"]] == ["broken.pdf"] and list(failed["reason"]) == [reason]

    def retried():  # the outcome of a retry, once it has ended
        _button(at, "Retry failed files").click().run()
        assert _wait_until(lambda: at.run() and any("Retried 1 failed file(s)" in _plain(m.value)
                                                    for m in [*at.success, *at.error, *at.warning]))
        assert _wait_until(lambda: not _bulk_threads())
        return next(_plain(m.value) for m in [*at.success, *at.error, *at.warning] if "Retried" in _plain(m.value))

    assert "0 added · 1 failed" in retried()  # read again, and it fails again, for the same reason
    assert any("could not be added: they are listed under Not ingested" in _plain(c.value) for c in at.caption)
    assert list(_table(at, "failed-table")["reason"]) == [reason]
    text_pdf(broken, FACTS, title="Household")  # replaced by a good copy
    assert "1 added · 0 failed" in retried()
    assert not any((d.key or "").startswith("failed-table") for d in at.dataframe)
    assert any(h.value == "2 documents" for h in at.subheader) and not lib.files.problems()
    assert sorted(r.path for r in lib.documents()) == [str(broken), str(folder / "fine.md")]
    assert not at.exception


def test_thousands_of_failed_files_do_not_flood_the_page(open_library, home, tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTH_MAX_FILE_MB", "0.0001")  # 104 bytes: every file below fails, unread
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(205):
        (folder / f"big-{i:03d}.md").write_text(f"# Big {i}\n\n" + "A long note. " * 20)
    lib = open_library()
    assert len(Ingestor(lib).sync([folder]).failures) == 205
    at = run_app()
    at.sidebar.radio(key="page").set_value("Library").run()
    failed = _table(at, "failed-table")
    assert len(failed) == 200 and "too large" in failed["reason"][0]
    assert any("The first 200 of 205 files that could not be added" in _plain(c.value) for c in at.caption)
    _pick(at, 1, 3, table="failed-table")  # failed files can be forgotten, as documents are
    _button(at, "Delete").click().run()
    _button(at, "Yes, delete").click().run()
    assert len(lib.files.problems()) == 203 and not at.exception


def test_settings_change_retrieval_for_this_session_only(filled):
    at = run_app()
    at.sidebar.slider(key="top_k").set_value(1).run()
    assert at.session_state.overrides == {"top_k": 1}
    at.chat_input[0].set_value("When is the boiler serviced?").run()
    assert len(at.main.expander) == 1


def test_app_is_private_by_default():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1" and config["server"]["enableXsrfProtection"] is True
    assert config["browser"]["gatherUsageStats"] is False
    app = (ROOT / "app.py").read_text()
    assert "unsafe_allow_html" not in app and "st.html" not in app and "components.html" not in app


@pytest.mark.slow
def _wait_until(condition, timeout: float = 60) -> bool:
    """Whether `condition()` came true before the deadline (the deadline only bounds the wait)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.3)
    return condition()


def test_the_library_folder_can_be_watched_in_the_background(open_library, home):
    lib = open_library()
    at = run_app()
    at.sidebar.radio(key="page").set_value("Library").run()
    at.toggle(key="watch-default").set_value(True).run()
    try:
        text_pdf(lib.folder / "dropped.pdf", FACTS, title="Household")  # copied in by another program
        deadline = time.monotonic() + 30
        while not any(h.value == "1 documents" for h in at.subheader) and time.monotonic() < deadline:
            time.sleep(0.5)
            at.run()
        assert any(h.value == "1 documents" for h in at.subheader)
        assert [r.path for r in lib.documents()] == [str(lib.folder / "dropped.pdf")]
        (lib.folder / "dropped.pdf").unlink()
        deadline = time.monotonic() + 30
        while lib.documents() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lib.documents() == []
        # the library folder goes away (a drive unmounted, a parent renamed): paused, nothing removed
        text_pdf(lib.folder / "kept.pdf", FACTS, title="Household")
        assert _wait_until(lambda: [r.path for r in lib.documents()] == [str(lib.folder / "kept.pdf")])
        away = lib.folder.with_name("away")
        lib.folder.rename(away)
        assert _wait_until(lambda: at.run() and any("is gone (not mounted? renamed?)" in _plain(w.value) for w in at.warning))
        assert [r.path for r in lib.documents()] == [str(lib.folder / "kept.pdf")]
        away.rename(lib.folder)
        assert _wait_until(lambda: at.run() and not any("is gone" in _plain(w.value) for w in at.warning))
        assert [r.path for r in lib.documents()] == [str(lib.folder / "kept.pdf")]
    finally:
        at.toggle(key="watch-default").set_value(False).run()
    assert not [t for t in threading.enumerate() if t.name == "hearth-watch-default"]


def test_a_remote_server_that_does_not_answer_is_said_so(filled, monkeypatch):
    monkeypatch.setenv("HEARTH_LLM_URL", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    at = run_app()
    assert any("does not answer" in _plain(e.value) for e in at.sidebar.error)
    at.chat_input[0].set_value("When is the boiler serviced?").run()
    assert any("could not be reached" in _plain(w.value) for w in at.warning) and at.main.expander


def test_the_model_panel_shows_the_prompt_speed_and_the_passage_budget(filled, monkeypatch):
    """The sidebar says how fast the server reads a prompt and how many passage tokens that allows
    (a server on 127.0.0.1 that takes a known time per prompt word, measured once by this process)."""
    import re

    from faulty_server import FaultyServer

    llm_server._remote_speeds.clear()
    try:
        with FaultyServer(tokens_per_s=300.0) as server:
            monkeypatch.setenv("HEARTH_LLM_URL", server.url("timed"))
            at = run_app()
            captions = [" ".join(_plain(c.value).split()) for c in at.sidebar.caption]
            shown = [re.fullmatch(r"prompt (\d+) tokens/s; passages up to ([\d,]+) tokens for a first token within 5 s", c)
                     for c in captions]
            assert any(shown), captions
            speed, tokens = next(m for m in shown if m).groups()
            assert 200 < int(speed) <= 300 and int(tokens.replace(",", "")) > 700, captions
    finally:
        llm_server._remote_speeds.clear()


def test_the_api_key_goes_only_to_the_configured_server(filled, monkeypatch):
    """HEARTH_LLM_API_KEY is for HEARTH_LLM_URL: a server typed in the sidebar never gets it, and a
    typed URL off this machine is refused unless the configuration allows its host."""
    from faulty_server import FaultyServer

    with FaultyServer(answer="Kept for six years [1].") as configured, FaultyServer(answer="Six years [1].") as typed:
        monkeypatch.setenv("HEARTH_LLM_URL", configured.url("hostile"))
        monkeypatch.setenv("HEARTH_LLM_API_KEY", "s3cret")
        at = run_app()
        at.chat_input[0].set_value("How long are receipts kept?").run()
        assert "Bearer s3cret" in configured.httpd.authorizations
        at.sidebar.text_input(key="llm_url").set_value(typed.url("hostile")).run()
        at.chat_input[0].set_value("How long are receipts kept?").run()
        assert typed.httpd.authorizations and not any("s3cret" in (a or "") for a in typed.httpd.authorizations)
        assert "Six years" in _plain(_answers(at)[-1].answer)

        at.sidebar.text_input(key="llm_url").set_value("http://gpu-box.invalid:8000/v1").run()
        assert any("gpu-box.invalid is not on this machine" in _plain(e.value) for e in at.sidebar.error)
        assert "llm_url" not in at.session_state.overrides  # back to the configured server


def test_only_configured_hosts_may_be_typed_as_a_model_server():
    from ingest.settings import load_settings
    from rag.llm_server import ServerError, check_url

    settings = load_settings(llm_url="http://team-gpu:8000/v1", llm_allowed_hosts="gpu-box, lab.example")
    for ok in ("http://127.0.0.1:8000/v1", "http://localhost:1/v1", "http://[::1]:8/v1", "http://gpu-box:8000/v1",
               "https://lab.example/v1", "http://team-gpu:9000/v1"):
        assert check_url(ok, settings) == ok
    for refused in ("http://10.0.0.5:8000/v1", "http://gpu-box.evil:8000/v1", "http://example.com/v1"):
        with pytest.raises(ServerError, match="HEARTH_LLM_ALLOWED_HOSTS"):
            check_url(refused, settings)


@pytest.mark.slow
@pytest.mark.xdist_group("model-server")  # see tests/test_answer_e2e.py
def test_the_model_is_chosen_in_the_app_and_each_answer_names_it(filled, home, tmp_path, monkeypatch):
    """The models folder's GGUF files are listed; choosing one restarts Hearth's own llama.cpp server
    with it, and an answer says which model wrote it."""
    from ingest.settings import load_settings

    models = tmp_path / "models"
    models.mkdir()
    gguf = ROOT / ".cache/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    for name in ("household-a.gguf", "household-b.gguf"):
        (models / name).symlink_to(gguf)
    monkeypatch.setenv("HEARTH_MODELS_DIR", str(models))
    monkeypatch.setenv("HEARTH_LLM_ENGINE", "llamacpp")
    try:
        at = run_app()
        assert at.sidebar.selectbox(key="model_choice").options == ["household-a (llamacpp)", "household-b (llamacpp)"]
        at.sidebar.selectbox(key="model_choice").set_value("household-b").run()
        next(b for b in at.sidebar.button if b.key == "use-model").click().run()
        assert not at.exception
        info = llm_server.current(load_settings())
        assert info.model == "household-b"
        llm_server.wait_until_ready(load_settings(), info)
        at = run_app()
        assert at.sidebar.selectbox(key="model_choice").value == "household-b"
        at.chat_input[0].set_value("When is the boiler serviced?").run()
        answer = _answers(at)[-1]
        assert answer.model == "household-b" and answer.answer
        assert any("household-b" in _plain(c.value) for c in at.main.caption)  # under the answer
    finally:
        llm_server.stop(load_settings())


@pytest.mark.slow
def test_a_big_library_is_searched_by_name_before_asking_about_some(library, corpus):
    # Past SCOPE_CHOICES documents "Ask about" lists none until words of a name are typed: 100,000
    # paths would otherwise go to the browser on every page run.
    notes = corpus / "notes"
    notes.mkdir()
    for i in range(505):
        (notes / f"note-{i:03d}.md").write_text(f"# Note {i}\n\nShopping list number {i}: bread and milk.\n")
    (corpus / "receipts-faq.md").write_text("# Receipts\n\nShop receipts for a warranty are kept until it ends.\n")
    Ingestor(library).sync([corpus])
    at = run_app()
    scope = at.multiselect(key="scope-default")
    assert scope.options == []
    at.text_input(key="scope-find-default").set_value("RECEIPTS").run()
    options = at.multiselect(key="scope-default").options
    assert any(o.endswith("receipts-faq.md") for o in options) and not any("note-" in o for o in options)
    at.multiselect(key="scope-default").select(str(corpus / "receipts-faq.md")).run()
    at.text_input(key="scope-find-default").set_value("note-00").run()  # the choice stays while others are found
    assert str(corpus / "receipts-faq.md") in at.multiselect(key="scope-default").value
    at.chat_input[0].set_value("How long are receipts kept?").run()
    assert {h.source for h in _answers(at)[-1].passages} == {str(corpus / "receipts-faq.md")}


def test_a_folder_whose_files_are_gone_asks_before_removing_them(open_library, home, tmp_path):
    folder = _letters(tmp_path / "drive", 6)
    lib = open_library()
    Ingestor(lib).sync([folder])
    for path in folder.iterdir():  # the drive unmounted: its mount point left empty
        path.unlink()
    at = run_app()
    at.sidebar.radio(key="page").set_value("Library").run()
    at.text_input(key="bulk-folder-default").input(str(folder)).run()
    _button(at, "Add folder").click().run()
    assert _wait_until(lambda: at.run() and any("would be removed" in _plain(w.value) for w in at.warning))
    held = next(_plain(w.value) for w in at.warning if "would be removed" in _plain(w.value))
    assert "6 documents would be removed and were kept" in held and len(lib.documents()) == 6
    _button(at, "Remove 6 document(s)").click().run()
    assert _wait_until(lambda: at.run() and any(f"Added {folder}" in _plain(s.value) for s in at.success))
    assert "6 removed" in next(_plain(s.value) for s in at.success if f"Added {folder}" in _plain(s.value))
    assert lib.documents() == []


def test_the_library_page_offers_to_give_back_space_once_worth_it(open_library, home, tmp_path, monkeypatch):
    import rag.api as api

    folder = _letters(tmp_path / "letters", 6)
    lib = open_library()
    Ingestor(lib).sync([folder])
    at = run_app()
    at.sidebar.radio(key="page").set_value("Library").run()
    assert "Give the space back" not in _labels(at.button)  # nothing removed: nothing offered
    Ingestor(lib).remove([folder])
    monkeypatch.setattr(api, "COMPACT_WORTH_BYTES", 1)  # a test library is small: the 50 MB floor lowered
    at.run()
    assert any("unused on disk" in _plain(c.value) for c in at.caption)
    _button(at, "Give the space back").click().run()
    assert any("MB given back" in _plain(s.value) for s in at.success)
    assert "Give the space back" not in _labels(at.button)
