"""Saved chats (rag/chats.py): the store, `hearth chats` and `hearth ask --chat`, a kill mid-answer,
and the app resuming a chat after a restart. Real store, embedding model and HTTP model endpoint
(tests/faulty_server.py answering, or stalling mid-answer)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, hearth_command, run_hearth, wait_until
from faulty_server import FaultyServer
from ingest.pipeline import Ingestor
from ingest.settings import load_settings
from make_files import text_pdf
from rag import render
from rag.answer import Answer
from rag.chats import CUT_OFF, Chats, from_record, record

FACTS = ["Household paperwork. The tax return for 2025 is due on the 31st of July 2026.",
         "Receipts must be kept for six years after the tax year ends.",
         "The boiler is serviced every October by Northside Heating."]
ANSWER = "Receipts must be kept for six years [1]. The garden shed is painted blue [1]."


@pytest.fixture
def filled(library, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    text_pdf(root / "household.pdf", FACTS, title="Household")
    Ingestor(library).sync([root])
    return library


@pytest.fixture
def model():
    with FaultyServer(answer=ANSWER) as server:
        yield server


def test_chats_are_listed_newest_first_searched_renamed_and_deleted(home):
    chats = Chats(load_settings())
    first = chats.create("default", "  How long do I keep receipts?  ")
    time.sleep(0.01)
    second = chats.create("work", "x" * 200)
    assert first.title == "How long do I keep receipts?" and len(second.title) == 80 and second.title.endswith("…")
    assert [c.id for c in chats.list()] == [second.id, first.id]
    assert [c.id for c in chats.list("default")] == [first.id]
    n = chats.begin(first.id, Answer("How long do I keep receipts?", "", [], [], "m"))
    chats.save(first.id, n, Answer("How long do I keep receipts?", "Six years [1].", [], [], "m"), done=True)
    assert [c.id for c in chats.list(search="SIX")] == [first.id]  # found in an answer, any case
    assert [c.id for c in chats.list(search="100%")] == []  # LIKE wildcards are plain characters
    assert chats.list()[0].id == first.id and chats.list()[0].turns == 1  # answered: now the newest
    assert chats.rename(first.id, "Receipts") and chats.get(first.id).title == "Receipts"
    with pytest.raises(ValueError):
        chats.rename(first.id, "   ")
    assert chats.delete(first.id) and chats.get(first.id) is None and chats.answers(first.id) == []
    assert not chats.delete(first.id)


def test_an_answer_comes_back_whole(filled, model):
    from rag.api import Hearth

    settings = load_settings(llm_url=model.url("hostile"))
    with Hearth(settings, embedder=filled.embedder) as h:
        chat = h.new_chat("How long must receipts be kept?")
        result = h.ask("How long must receipts be kept?", chat=chat.id).collect()
        again = h.chats.answers(chat.id)[0]
    assert result.sentences and [x.supported for x in result.sentences] == [True, False]
    assert again == result and from_record(record(result)) == result  # passages, citations, support marks
    assert not again.incomplete and not again.error


@pytest.mark.slow  # a dozen `hearth` processes
def test_cli_saves_each_question_and_continues_a_chat(filled, model, home, tmp_path):
    env = {"HEARTH_LLM_URL": model.url("hostile")}
    first = run_hearth(home, "ask", "How long must receipts be kept?", "--json", **env)
    assert first.returncode == 0, first.stderr
    chat_id = json.loads(first.stdout)["chat"]
    follow = run_hearth(home, "ask", "And the boiler?", "--chat", chat_id, **env)
    assert follow.returncode == 0, follow.stderr
    assert f"saved as chat {chat_id}" in follow.stdout and "✗" in follow.stdout and "✓" in follow.stdout
    listed = json.loads(run_hearth(home, "chats", "--json").stdout)
    assert [(c["id"], c["title"], c["turns"]) for c in listed] == [(chat_id, "How long must receipts be kept?", 2)]
    shown = json.loads(run_hearth(home, "chats", "show", chat_id, "--json").stdout)
    assert [a["question"] for a in shown["answers"]] == ["How long must receipts be kept?", "And the boiler?"]
    # the first turn was the history: a condense was tried (this endpoint only streams, so it failed)
    assert "could not rewrite the follow-up" in shown["answers"][1]["error"]
    assert shown["answers"][0]["sentences"][1]["supported"] is False

    assert run_hearth(home, "ask", "Just once", "--no-save", **env).returncode == 0
    assert len(json.loads(run_hearth(home, "chats", "--json").stdout)) == 1
    out = tmp_path / "all"
    assert run_hearth(home, "chats", "export", "-o", out).returncode == 0
    md = (out / f"hearth-chat-{chat_id}.md").read_text()
    assert md.startswith("# How long must receipts be kept\\?") and "And the boiler\\?" in md and "(unsupported)" in md
    assert run_hearth(home, "chats", "rename", chat_id, "Receipts").returncode == 0
    assert json.loads(run_hearth(home, "chats", "-s", "receipts", "--json").stdout)[0]["title"] == "Receipts"
    missing = run_hearth(home, "ask", "x", "--chat", "nope")
    assert missing.returncode == 2 and "no saved chat" in missing.stderr
    assert run_hearth(home, "chats", "delete", chat_id).returncode == 0
    assert json.loads(run_hearth(home, "chats", "--json").stdout) == []


@pytest.mark.slow
def test_kill_9_mid_answer_keeps_what_was_shown(filled, home):
    with FaultyServer(hold_s=120) as server:  # "stall": three words, then silence
        argv, env = hearth_command(home, "ask", "When is the boiler serviced?", HEARTH_LLM_URL=server.url("stall"))
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        shown = b""
        try:
            def words_shown():
                nonlocal shown
                if select.select([proc.stdout], [], [], 0.2)[0]:
                    shown += os.read(proc.stdout.fileno(), 4096)
                # the model's words, after the lead quote (which may hold the same words)
                after = shown.rsplit("”".encode(), 1)[-1] if b"From the documents" in shown else shown
                return b"The boiler is" in after

            wait_until(words_shown, timeout=120)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
    listed = json.loads(run_hearth(home, "chats", "--json").stdout)
    assert len(listed) == 1 and listed[0]["turns"] == 1
    answer = Chats(load_settings()).answers(listed[0]["id"])[0]
    assert answer.answer.strip() == "The boiler is" and answer.incomplete and answer.error == CUT_OFF
    assert answer.passages and answer.passages[0].page == 3  # its sources were kept with it
    shown_json = json.loads(run_hearth(home, "chats", "show", listed[0]["id"], "--json").stdout)
    assert shown_json["answers"][0]["incomplete"] is True


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()


def test_the_app_resumes_a_chat_after_a_restart(filled, model, monkeypatch):
    monkeypatch.setenv("HEARTH_LLM_URL", model.url("hostile"))
    at = _app()
    at.chat_input[0].set_value("How long must receipts be kept?").run()
    assert not at.exception
    chat_id = at.session_state.open_chat["default"]
    assert chat_id and [b.label for b in at.sidebar.button if b.key == f"chat-{chat_id}"]

    at = _app()  # a new session, as after a restart: nothing open, the chat listed
    assert not at.session_state.open_chat.get("default") and not at.chat_message
    button = next(b for b in at.sidebar.button if b.key == f"chat-{chat_id}")
    assert render.text("How long must receipts be kept?") == button.label
    button.click().run()
    shown = " ".join(m.value for m in at.main.markdown)
    assert "How long must receipts be kept" in shown.replace("\\", "") and render.UNSUPPORTED in shown
    assert at.main.expander and "page 2" in at.main.expander[0].label

    at.sidebar.text_input(key="chat_search").set_value("boiler").run()  # no chat says "boiler"
    assert not [b for b in at.sidebar.button if b.key == f"chat-{chat_id}"]
    at.sidebar.text_input(key="chat_search").set_value("").run()
    at.text_input(key=f"rename-{chat_id}").set_value("Receipts").run()
    next(b for b in at.button if b.key == f"do-rename-{chat_id}").click().run()
    assert Chats(load_settings()).get(chat_id).title == "Receipts"
    next(b for b in at.button if b.key == f"do-delete-{chat_id}").click().run()
    assert Chats(load_settings()).get(chat_id) is None and not at.chat_message
