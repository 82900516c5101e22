"""Documents in other languages: each document's language recorded, a new collection's model chosen by
it (multilingual-e5-small, the real 4-bit engine, where most are not English), a question in one
language finding a passage in another, answers asked for in the question's language, and the support
check across languages."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from ingest.embedding import Embedder
from ingest.errors import ModelMismatch
from ingest.language import detect, of_short, reply_instruction
from ingest.pipeline import Ingestor
from rag.answer import build_messages
from rag.api import Hearth
from rag.retrieval import Hit, search
from rag.support import check_support

GERMAN = {
    "terminal.md": "# Terminal\n\nWenn der Bildschirm nach dem Anzeigen einer Binärdatei verrückt spielt, geben Sie "
                   "an der Eingabeaufforderung reset ein. Das stellt das Terminal wieder her, ohne dass Sie sich "
                   "neu anmelden müssen.\n",
    "drucker.md": "# Drucker\n\nUm einen Drucker einzurichten, installieren Sie das Paket cups und öffnen Sie die "
                  "Weboberfläche des Druckdienstes im Browser unter der Adresse localhost:631.\n",
    "garten.md": "# Garten\n\nDer Garten braucht im Sommer jeden Abend viel Wasser, besonders die Tomaten und die "
                 "Gurken im Gewächshaus. Im Herbst werden die Beete mit Kompost bedeckt.\n",
}
ENGLISH = {
    "backup.md": "# Backups\n\nTo back up your home directory every night, add a line to your crontab that runs "
                 "rsync to the external disk. Check the log of the last run every Monday morning.\n",
    "tax.md": "# Paperwork\n\nReceipts and bank statements must be kept for six years after the tax year ends. "
              "Scan them and store the scans in the folder called Archive.\n",
}


def write_all(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def e5():
    return Embedder("multilingual-e5-small")


def test_language_is_told_from_the_text():
    assert detect(GERMAN["drucker.md"]) == "de" and detect(ENGLISH["tax.md"]) == "en"
    assert detect("12 34 56") == ""  # too few letters to tell
    assert of_short("パッケージをインストールするには？") == "ja"
    assert reply_instruction("Wie richte ich einen Drucker ein?") == "Answer in German."
    assert reply_instruction("how do I set up a printer?") == ""


def test_german_documents_make_a_multilingual_collection(tmp_path, open_library):
    lib = open_library()
    assert lib.embed_model is None  # auto: chosen by what is added first
    Ingestor(lib).sync([write_all(tmp_path / "de", GERMAN)])
    assert lib.embed_model == "multilingual-e5-small" and lib.files.model() == ("multilingual-e5-small", 384)
    assert {os.path.basename(r.path): r.language for r in lib.documents()} == dict.fromkeys(GERMAN, "de")
    # a question in English, or in Spanish, finds the German passage
    assert os.path.basename(search(lib, "how do I set up a printer?", k=1)[0].source) == "drucker.md"
    assert os.path.basename(search(lib, "¿qué hago si la terminal muestra basura?", k=1, mode="dense")[0].source) \
        == "terminal.md"
    # reopened, it keeps its model whatever its later documents are
    again = open_library()
    Ingestor(again).sync([tmp_path / "de", write_all(tmp_path / "en", ENGLISH)])
    assert again.embedder.name == "multilingual-e5-small" and len(again.documents()) == 5
    for mode in ("dense", "hybrid"):  # a German question, an English passage
        hit = search(again, "Wie sichere ich jede Nacht mein Home-Verzeichnis?", k=1, mode=mode)[0]
        assert os.path.basename(hit.source) == "backup.md"


def test_english_documents_keep_minilm_and_a_named_model_must_match(tmp_path, open_library):
    lib = open_library()
    Ingestor(lib).sync([write_all(tmp_path / "en", ENGLISH)])
    assert lib.embed_model == "all-MiniLM-L6-v2"
    assert {r.language for r in lib.documents()} == {"en"}
    other = open_library(embed_model="multilingual-e5-small")
    with pytest.raises(ModelMismatch, match="all-MiniLM-L6-v2"):
        Ingestor(other).sync([tmp_path / "en"])


def test_a_model_chosen_before_any_document(tmp_path, home):
    with Hearth(collection="work") as lib:
        lib.create("multilingual-e5-small")  # the app's "New collection" with a model picked
        assert lib.embed_model == "multilingual-e5-small"
        lib.sync([write_all(tmp_path / "en", ENGLISH)])  # English documents do not change it
        assert lib.embed_model == "multilingual-e5-small"
        assert [row[:2] for row in lib.collections()] == [("work", "multilingual-e5-small")]


def test_cli_model_option_and_languages_listed(tmp_path, home):
    docs = write_all(tmp_path / "de", GERMAN)
    env = {**os.environ, "HEARTH_HOME": str(home)}
    run = lambda *args: subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, capture_output=True,  # noqa: E731
                                       text=True, timeout=300)
    done = run("ingest", str(docs), "--collection", "notes", "--model", "all-MiniLM-L6-v2")
    assert done.returncode == 0, done.stderr
    listed = json.loads(run("collections", "--json").stdout)
    assert [(c["name"], c["embed_model"]) for c in listed] == [("notes", "all-MiniLM-L6-v2")]
    documents = json.loads(run("docs", "--collection", "notes", "--json").stdout)["documents"]
    assert {d["language"] for d in documents} == {"de"}
    refused = run("ingest", str(docs), "--collection", "notes", "--model", "multilingual-e5-small")
    assert refused.returncode == 2 and "--reembed" in refused.stderr
    rebuilt = run("ingest", str(docs), "--collection", "notes", "--model", "multilingual-e5-small", "--reembed")
    assert rebuilt.returncode == 0, rebuilt.stderr
    listed = json.loads(run("collections", "--json").stdout)
    assert [(c["name"], c["embed_model"]) for c in listed] == [("notes", "multilingual-e5-small")]


def test_a_manifest_from_before_languages_opens(tmp_path, open_library):
    lib = open_library()
    Ingestor(lib).sync([write_all(tmp_path / "en", ENGLISH)])
    lib.close()
    db = sqlite3.connect(str(tmp_path / "hearth-home" / "manifest.sqlite3"))
    db.executescript("ALTER TABLE files DROP COLUMN language;")
    db.close()
    again = open_library()
    assert len(again.documents()) == 2 and {r.language for r in again.documents()} == {None}
    assert Ingestor(again).sync([tmp_path / "en"]).unchanged == 2


def test_the_model_is_asked_to_answer_in_the_question_language():
    hit = Hit(GERMAN["drucker.md"], "/d/drucker.md", None, 0.8, "a:0", None, 0)
    german = build_messages("Wie richte ich einen Drucker ein?", [hit], "f")[1].content
    english = build_messages("How do I set up a printer?", [hit], "f")[1].content
    assert german.endswith("Answer in German.") and "Answer in" not in english.split("[2].")[-1]


def test_support_across_languages(e5):
    english = Hit(ENGLISH["tax.md"], "/d/tax.md", None, 0.8, "a:0", None, 0)
    german = Hit(GERMAN["drucker.md"], "/d/drucker.md", None, 0.8, "b:0", None, 0)
    answer = ("Belege und Kontoauszüge müssen sechs Jahre nach dem Ende des Steuerjahres aufbewahrt werden [1]. "
              "Installieren Sie das Paket cups und öffnen Sie localhost:631 im Browser [2]. "
              "Belege müssen 25 Jahre lang aufbewahrt werden [1]. "
              "Die Tomaten im Gewächshaus brauchen jeden Abend Wasser [2].")
    marks = [x.supported for x in check_support(answer, [english, german], e5)]
    # German on an English passage, German on a German one; a changed number and a claim neither
    # passage makes are not supported
    assert marks == [True, True, False, False]


def test_the_first_documents_choose_together(tmp_path, open_library, monkeypatch):
    """Two English files read first (as the German Debian reference's untranslated first chapters are)
    do not decide alone: the languages of the first documents together do."""
    from ingest import write

    monkeypatch.setattr(write, "GROUP_CHUNKS", 1)  # a flush after every passage, as after long files
    folder = write_all(tmp_path / "mixed", {"a-" + k: v for k, v in ENGLISH.items()})
    write_all(folder, {"b-" + k: v for k, v in GERMAN.items()})
    lib = open_library()
    Ingestor(lib).sync([folder])
    assert lib.embed_model == "multilingual-e5-small" and len(lib.documents()) == 5
