"""Every kind of bad file gets a plain reason; good files beside them are ingested; nothing stored is lost."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from conftest import store_snapshot
from ingest import reader
from ingest.loaders import LoadError
from ingest.pipeline import Ingestor
from make_files import corrupt_pdf, encrypted_pdf, text_pdf
from malformed import flate_bomb_pdf, good_neighbours, malformed_corpus, slow_pdf
from rag.retrieval import search

@pytest.fixture
def messy(tmp_path, manuals):
    root = tmp_path / "messy"
    expected = malformed_corpus(root, manuals)
    good = good_neighbours(root)
    encrypted_pdf(root / "owner-only.pdf", user_password="")  # opens without a password: must ingest
    good["owner-only.pdf"] = "Secret quarterly numbers."
    return root, expected, good


def test_each_bad_file_has_a_plain_reason_and_good_files_are_ingested(messy, open_library):
    root, expected, good = messy
    assert len(expected) >= 25
    lib = open_library(max_file_mb=8, parse_timeout=6)  # the slow PDF takes twice that wherever it runs
    report = Ingestor(lib).sync([root])
    reasons = {os.path.basename(r.path): r.reason for r in report.failures}
    assert set(reasons) == set(expected), reasons
    for name, pattern in expected.items():
        assert re.search(pattern, reasons[name]), (name, reasons[name])
        assert "Traceback" not in reasons[name] and len(reasons[name]) < 300
    assert sorted(os.path.basename(r.path) for r in report.results if r.status == "added") == sorted(good)
    for name, phrase in good.items():  # each good file is there, whole, under its own odd name
        hit = search(lib, phrase, k=1, mode="keyword")[0]
        assert os.path.basename(hit.source) == name and phrase in " ".join(hit.text.split()), (name, hit)
    assert "alert(1)" not in str(search(lib, "alert", k=5, mode="keyword"))  # scripts are not text
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
    # Recorded: listed later, and not re-read while unchanged.
    assert set(lib.files.problems()) == {str(root / n) for n in expected}
    again = Ingestor(lib).sync([root])
    assert again.unchanged == len(good) and {r.status for r in again.results} == {"skipped"}


def test_the_reader_enforces_its_limits_and_recovers(tmp_path, manuals):
    slow = slow_pdf(tmp_path / "slow.pdf")
    quick = reader.Reader(timeout_s=1, memory_mb=1536)
    with pytest.raises(LoadError, match="took longer than 1 s"):
        quick.load(str(slow))
    # A new child took over: a one-page PDF reads in milliseconds, far inside the same limit.
    assert quick.load(str(text_pdf(tmp_path / "one-page.pdf", ["Small PDFs still read."]))).pages == 1
    small = reader.Reader(timeout_s=60, memory_mb=600)  # the child itself needs ~230 MB
    with pytest.raises(LoadError, match="memory limit|crashed the file reader"):
        small.load(str(flate_bomb_pdf(tmp_path / "bomb.pdf", expanded_mb=800)))
    (tmp_path / "ok.txt").write_text("Small files still read after the crash.")
    assert small.load(str(tmp_path / "ok.txt")).sections[0].text.startswith("Small files")


def test_a_file_that_turns_bad_keeps_nothing_stale_and_loses_nothing_else(tmp_path, open_library):
    folder = tmp_path / "docs"
    folder.mkdir()
    text_pdf(folder / "good.pdf", ["Invoices are paid within thirty days."])
    (folder / "good.txt").write_text("The boiler is serviced every October.")
    lib = open_library()
    Ingestor(lib).sync([folder])
    before = store_snapshot(lib)
    (folder / "good.txt").write_bytes(b"\xff\xfe\x00\x00" + os.urandom(2000))  # overwritten with garbage
    report = Ingestor(lib).sync([folder])
    assert [r.status for r in report.results if r.path.endswith("good.txt")] == ["failed"]
    # The other documents are untouched; the old text of the broken file is still what is stored
    # (its last good version), until it is fixed or deleted.
    assert store_snapshot(lib)["documents"] == before["documents"]


def test_nothing_processable_exits_nonzero(tmp_path, open_library):
    bad = tmp_path / "bad"
    bad.mkdir()
    corrupt_pdf(bad / "x.pdf")
    report = Ingestor(open_library()).sync([bad])
    assert report.exit_code() == 1
    report = Ingestor(open_library()).sync([tmp_path / "does-not-exist"])
    assert report.failures[0].reason == "no such file or folder" and report.exit_code() == 1


def test_a_file_over_the_character_or_passage_limit_is_reported_and_the_rest_ingested(tmp_path, open_library, manuals):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "endless.txt").write_text("lorem ipsum dolor " * 20_000)  # 360,000 characters
    shutil.copy(manuals / "R-data.pdf", folder / "R-data.pdf")  # 41 pages: over 50 passages, part by part
    (folder / "small.md").write_text("# Boiler\n\nThe boiler is serviced every October.\n")
    lib = open_library(max_file_chars=100_000, max_file_chunks=50)
    report = Ingestor(lib).sync([folder])
    reasons = {os.path.basename(r.path): r.reason for r in report.failures}
    assert reasons["endless.txt"] == ("more than 100,000 characters of text, over the limit: raise "
                                      "HEARTH_MAX_FILE_CHARS and re-index it (hearth ingest --force)")
    assert reasons["R-data.pdf"] == ("more than 50 passages, over the limit: raise HEARTH_MAX_FILE_CHUNKS and "
                                     "re-index it (hearth ingest --force)")
    assert [os.path.basename(r.path) for r in lib.documents()] == ["small.md"]
    assert lib.collection.count() == 1 and store_snapshot(lib)["orphans"] == []  # R-data's first parts undone
    again = Ingestor(open_library(max_file_chunks=100_000)).sync([folder / "R-data.pdf"], force=True)
    assert again.count("added") == 1  # the shared reader process is fine after stopping a file mid-way


@pytest.mark.slow
def test_a_million_row_csv_is_capped_with_a_note_and_read_within_the_limits(tmp_path, open_library):
    from ingest.loaders import sheets

    big = tmp_path / "readings.csv"
    with open(big, "w") as fh:
        fh.write("reading,meter,kwh\n")
        for i in range(1_000_000):
            fh.write(f"{i},meter-{i % 97},{i % 1000}\n")
    lib = open_library()
    report = Ingestor(lib).sync([big])
    [result] = report.results
    assert result.status == "added", result.reason
    assert result.reason == f"the file has 1,000,001 rows; only the first {sheets.MAX_ROWS:,} were read"
    hit = search(lib, "| 4242 | meter-71 | 242 |", k=1, mode="keyword")[0]
    assert "| 4242 | meter-71 | 242 |" in hit.text and hit.text.startswith("| reading | meter | kwh |")


def test_ocr_stops_at_the_time_limit_and_keeps_the_pages_it_read(tmp_path, manuals):
    from make_files import page_images, scanned_pdf

    pdf = scanned_pdf(tmp_path / "long-scan.pdf", page_images(manuals / "R-intro.pdf", [11]) * 40)
    # 40 s, not 16: on a machine loaded by a second run, starting the reader and OCR's models took
    # more than the 40 % of 16 s left after OCR's share, and the whole file was stopped (twice in CI
    # clones run beside a benchmark). 40 pages take 150 s or more at the fastest OCR measured here.
    loaded = reader.Reader(timeout_s=40, memory_mb=1536).load(str(pdf))
    read = len(loaded.sections)
    # How many pages fit in the time depends on the machine's speed: at least one, never all 40.
    assert 1 <= read < 40 and all(s.ocr for s in loaded.sections)
    assert any(f"OCR stopped at the time limit after {read} of 40 scanned page(s)" in n for n in loaded.notes), loaded.notes
