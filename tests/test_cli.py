"""The `hearth` command as a user runs it: real subprocesses, real store, real model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, run_hearth
from make_files import corrupt_pdf, text_pdf

pytestmark = pytest.mark.slow


hearth = run_hearth


@pytest.fixture
def docs(tmp_path, manuals):
    root = tmp_path / "library"
    root.mkdir()
    shutil.copy(manuals / "R-data.pdf", root)
    text_pdf(root / "pets.pdf", ["Cats sleep sixteen hours a day.", "Dogs need a walk every morning."])
    corrupt_pdf(root / "broken.pdf")
    return root


def test_ingest_docs_search_remove(tmp_path, docs):
    home = tmp_path / "home"
    run = hearth(home, "ingest", docs)
    assert run.returncode == 0, run.stderr
    assert "2 added" in run.stdout and "1 failed" in run.stdout and "chunks/s" in run.stdout
    assert "broken.pdf" in run.stdout and "corrupt or unreadable PDF" in run.stdout

    again = hearth(home, "ingest", docs, "--json", PYTHONPROFILEIMPORTTIME="1")  # imports listed on stderr
    report = json.loads(again.stdout)
    assert report["unchanged"] == 2 and [f["status"] for f in report["files"]] == ["skipped"]
    assert " chromadb" not in again.stderr, "a no-op ingest opened Chroma (0.6 s of imports)"

    listed = json.loads(hearth(home, "docs", "--json").stdout)
    assert {os.path.basename(d["path"]): d["pages"] for d in listed["documents"]} == {"R-data.pdf": 41, "pets.pdf": 2}
    assert [os.path.basename(p["path"]) for p in listed["problems"]] == ["broken.pdf"]

    found = json.loads(hearth(home, "search", "how do I import data from Excel spreadsheets", "--k", "3", "--json").stdout)
    assert found["query"].startswith("how do I import")
    top = found["hits"][0]
    assert set(top) >= {"text", "source", "page", "score", "chunk_id"}
    assert top["source"] == str(docs / "R-data.pdf") and isinstance(top["page"], int)

    human = hearth(home, "search", "morning walk")
    assert "pets.pdf, page 2" in human.stdout

    removed = hearth(home, "remove", docs / "pets.pdf")
    assert removed.returncode == 0 and "1 document(s) removed" in removed.stdout
    assert hearth(home, "remove", docs / "pets.pdf").returncode == 1


def test_search_stdin_jsonl_loads_once_and_answers_each_line(tmp_path, docs):
    home = tmp_path / "home"
    hearth(home, "ingest", docs / "pets.pdf")
    run = hearth(home, "search", "-", "--json", "--k", "2", stdin="do cats sleep a lot\n\nwalking the dog\n")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["do cats sleep a lot", "", "walking the dog"]
    assert lines[0]["hits"][0]["page"] == 1 and lines[1]["hits"] == [] and lines[2]["hits"][0]["page"] == 2


def test_model_mismatch_is_refused_with_a_clear_message(tmp_path, docs):
    home = tmp_path / "home"
    hearth(home, "ingest", docs / "pets.pdf")
    from ingest.embedding import resolve_model

    other = tmp_path / "minilm-copy"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), other)
    env_run = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(docs / "pets.pdf")],
                             env={**os.environ, "HEARTH_HOME": str(home), "HEARTH_EMBED_MODEL": str(other),
                                  "PYTHONPATH": str(ROOT), "COLUMNS": "300"},
                             capture_output=True, text=True, timeout=300)
    assert env_run.returncode == 2
    assert "was built with all-MiniLM-L6-v2" in env_run.stderr and "--reembed" in env_run.stderr
    rebuilt = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", "--reembed", str(docs / "pets.pdf")],
                             env={**os.environ, "HEARTH_HOME": str(home), "HEARTH_EMBED_MODEL": str(other),
                                  "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert rebuilt.returncode == 0 and "1 added" in rebuilt.stdout


def test_second_writer_is_told_the_store_is_busy(tmp_path, docs):
    from ingest.lock import writer_lock

    home = tmp_path / "home"
    with writer_lock(home / "writer.lock"):
        run = hearth(home, "ingest", docs, "--no-wait")
    assert run.returncode == 3 and "store is busy" in run.stderr and str(os.getpid()) in run.stderr


def test_a_long_running_process_sees_what_another_process_ingested(home, open_library, tmp_path):
    # The app is a long-lived process; `hearth ingest` beside it writes the same store. Chroma's
    # in-process index would not see those vectors; the manifest generation makes it reload.
    from ingest.pipeline import Ingestor
    from rag.retrieval import search

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    text_pdf(first / "pets.pdf", ["Cats sleep sixteen hours a day."])
    (second / "boiler.md").write_text("# Boiler\n\nThe boiler is serviced every October by Northside Heating.\n")
    lib = open_library()
    with lib.writing():
        Ingestor(lib).sync([first])
    assert search(lib, "When is the boiler serviced?", 1)[0].source.endswith("pets.pdf")
    run = hearth(home, "ingest", second)  # another process
    assert run.returncode == 0, run.stderr
    fresh = open_library()  # as the app opens the library on each page run
    assert search(fresh, "When is the boiler serviced?", 1)[0].source == str(second / "boiler.md")
    with fresh.writing():  # and this process writes on the reloaded view, keeping both documents
        Ingestor(fresh).remove([first])
    assert [os.path.basename(r.path) for r in open_library().documents()] == ["boiler.md"]
    assert search(open_library(), "How long do cats sleep?", 1)[0].source == str(second / "boiler.md")


def test_eval_and_search_modes(tmp_path, docs):
    home = tmp_path / "home"
    assert hearth(home, "ingest", docs).returncode == 0
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "How long do cats sleep?", "answer": "Cats sleep sixteen hours a day."}) + "\n")
    run = hearth(home, "eval", qa, "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["questions"] == 1 and set(result["modes"]) == {"hybrid", "dense", "keyword"}
    assert result["modes"]["hybrid"]["hit@1"] == 1.0
    table = hearth(home, "eval", qa)
    assert "| hybrid | 1.000 | 1.000 | 1.000 |" in table.stdout
    keyword = json.loads(hearth(home, "search", "sixteen hours", "--mode", "keyword", "--json").stdout)
    assert keyword["hits"][0]["source"].endswith("pets.pdf")
    assert hearth(home, "search", "cats", "--mode", "fuzzy").returncode == 2
    others = [p for p in docs.rglob("*") if p.is_file() and p.name != "pets.pdf"]
    only = json.loads(hearth(home, "search", "sixteen hours", "--only", others[0], "--json").stdout)
    assert only["hits"] and {h["source"] for h in only["hits"]} == {str(others[0])}  # --only: that file alone
    (tmp_path / "bad.jsonl").write_text('{"question": "no answer"}\n')
    assert hearth(home, "eval", tmp_path / "bad.jsonl").returncode == 2


def test_file_names_cannot_forge_terminal_output(tmp_path):
    """A name holding an ANSI escape, a newline or a bidi override is printed as escapes."""
    folder = tmp_path / "names"
    folder.mkdir()
    hostile = "\x1b[2J\x1b[31mred\nadded 999 files \u202etxt.exe.txt"
    (folder / hostile).write_text("The spare fuses are in the blue tin.")
    corrupt_pdf(folder / "\x1b]0;title\x07broken.pdf")
    home = tmp_path / "home"
    for args in (("ingest", folder), ("docs",), ("search", "where are the spare fuses")):
        run = hearth(home, *args)
        assert run.returncode == 0, run.stderr
        assert "\x1b" not in run.stdout + run.stderr and "\u202e" not in run.stdout
        assert not any(line.startswith("added 999") for line in run.stdout.splitlines())
    assert "\\x1b[2J\\x1b[31mred\\x0aadded 999 files \\u202etxt.exe.txt" in run.stdout
