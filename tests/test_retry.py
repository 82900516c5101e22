"""An answer that fails its own check is asked once more from the search's next passages, and both
are shown: the first marked, the second labelled as from other passages (rag/answer.py RETRY_NOTE).

The model's side is scripted (tests/faulty_server.py "scripted": the reply depends on the passage in
the prompt), since what is tested is what Hearth does with an answer; the real model's retries are
measured by bench/answers.py."""

from __future__ import annotations

import pytest

from conftest import run_hearth
from faulty_server import FaultyServer
from ingest.pipeline import Ingestor
from make_files import HOUSEHOLD, text_pdf
from rag import export, llm_server
from rag.answer import RETRY_MARK, RETRY_NOTE, Answerer
from rag.chats import from_record, record

QUESTION = "When is the boiler serviced?"
SCRIPT = [
    ("Northside Heating", "The documents don't say when the boiler is serviced."),  # the boiler's page: a refusal
    ("six years", "Receipts are kept for six years after the tax year ends [1]."),
    ("31st of July", "The tax return for 2025 is due on the 31st of July 2026 [1]."),
]


@pytest.fixture(scope="module")
def scripted():
    with FaultyServer(script=SCRIPT) as server:
        yield server


@pytest.fixture
def household(tmp_path, open_library):
    text_pdf(tmp_path / "household.pdf", HOUSEHOLD, title="Household")

    def _open(**overrides):
        # One page's passage fits the budget, so the other pages are the "next passages"
        lib = open_library(context_tokens=30, min_score=0.0, **overrides)
        Ingestor(lib).sync([tmp_path / "household.pdf"])
        return lib

    return _open


def _server(scripted):
    return llm_server.ServerInfo("remote", "scripted", scripted.url("scripted"), managed=False)


def test_an_answer_that_says_the_passages_do_not_answer_is_asked_again_from_the_next(scripted, household):
    lib = household()
    stream = Answerer(lib, _server(scripted)).ask(QUESTION)
    assert [h.page for h in stream.passages] == [3]
    streamed = "".join(stream)
    answer = stream.result
    assert answer.answer == SCRIPT[0][1] and answer.failed_check  # the first attempt, kept as it was
    assert answer.retry is not None and answer.retry.passages, answer
    assert answer.retry.passages[0].page in (1, 2)  # other passages than the first attempt's
    assert answer.retry.answer in (SCRIPT[1][1], SCRIPT[2][1]) and not answer.retry.failed_check
    assert answer.retry.retry is None  # once only
    assert streamed == answer.answer + RETRY_MARK + answer.retry.answer  # the reader saw both, labelled
    assert answer.to_json()["retry"]["answer"] == answer.retry.answer
    assert answer.shown_text.endswith(RETRY_MARK + answer.retry.shown_text)

    saved = from_record(record(answer))  # a saved chat opens with both attempts
    assert saved.retry is not None and saved.retry.answer == answer.retry.answer
    assert saved.retry.passages[0].page == answer.retry.passages[0].page

    markdown = export.answer_markdown(answer)
    assert "so the question was asked again with the next passages" in markdown  # RETRY_NOTE, escaped
    assert ("six years" if "six years" in answer.retry.answer else "31st of July") in markdown.split("asked again")[1]
    assert "[^r1]:" in markdown  # the second attempt's footnotes are its own


def test_a_supported_answer_is_not_asked_again(household):
    with FaultyServer(script=[("Northside Heating", "The boiler is serviced every October by Northside Heating [1].")]) as good:
        answer = Answerer(household(), _server(good)).ask(QUESTION).collect()
        assert answer.answer.startswith("The boiler is serviced every October") and not answer.failed_check
        assert answer.retry is None
        assert len(good.httpd.prompts) == 1  # one answer; no second prompt


def test_the_retry_can_be_switched_off(scripted, household):
    answer = Answerer(household(retry_unsupported=False), _server(scripted)).ask(QUESTION).collect()
    assert answer.failed_check and answer.retry is None


def test_cli_ask_shows_both_attempts(scripted, household, home, tmp_path):
    household()  # ingested into the session's home
    run = run_hearth(home, "ask", QUESTION, HEARTH_LLM_URL=scripted.url("scripted"), HEARTH_CONTEXT_TOKENS="30",
                     HEARTH_MIN_SCORE="0", timeout=180)
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())
    assert SCRIPT[0][1] in out and RETRY_NOTE in out
    assert "First attempt" in out and "Second attempt, from the next passages" in out
    assert out.index("First attempt") < out.index("household.pdf, page 3") < out.index("Second attempt")
