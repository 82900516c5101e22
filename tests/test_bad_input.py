"""Every kind of bad file gets a plain reason; good files beside them are ingested; nothing stored is lost."""

from __future__ import annotations

import os

import pytest

from conftest import store_snapshot
from ingest.pipeline import Ingestor
from make_files import corrupt_pdf, encrypted_pdf, image_only_pdf, text_pdf, truncated_copy
from rag.search import search

EXPECTED = {
    "corrupt.pdf": "corrupt or unreadable PDF",
    "truncated.pdf": "corrupt or unreadable PDF",
    "locked.pdf": "encrypted PDF; needs a password",
    "scan.pdf": "no text layer; needs OCR",
    "empty.txt": "empty file",
    "blank.md": "no text found",
    "binary.txt": "binary content, not text",
    "undecodable.txt": "undecodable text",
    "fake.docx": "not a valid .docx file",
    "huge.txt": "MB limit",
}


@pytest.fixture
def messy(tmp_path, manuals):
    root = tmp_path / "messy"
    root.mkdir()
    text_pdf(root / "good.pdf", ["Invoices are paid within thirty days."])
    (root / "good.txt").write_text("The boiler is serviced every October.")
    encrypted_pdf(root / "owner-only.pdf", user_password="")  # opens without a password: must ingest
    corrupt_pdf(root / "corrupt.pdf")
    truncated_copy(manuals / "R-data.pdf", root / "truncated.pdf")
    encrypted_pdf(root / "locked.pdf", user_password="hunter2")
    image_only_pdf(root / "scan.pdf")
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.md").write_text("   \n\n\t\n")
    (root / "binary.txt").write_bytes(os.urandom(4096) + b"\x00" * 64)
    (root / "undecodable.txt").write_bytes(bytes(range(0x80, 0x100)) * 40)
    (root / "fake.docx").write_bytes(b"this is not a zip archive at all")
    with open(root / "huge.txt", "wb") as fh:  # sparse: big on paper, no disk used
        fh.truncate(3 * 2**20)
    return root


def test_each_bad_file_has_a_plain_reason_and_good_files_are_ingested(messy, open_library):
    lib = open_library(max_file_mb=2)
    report = Ingestor(lib).sync([messy])
    reasons = {os.path.basename(r.path): r.reason for r in report.failures}
    assert set(reasons) == set(EXPECTED), reasons
    for name, expected in EXPECTED.items():
        assert expected in reasons[name], (name, reasons[name])
    assert sorted(os.path.basename(r.path) for r in report.results if r.status == "added") == [
        "good.pdf", "good.txt", "owner-only.pdf"]
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
    assert "Invoices" in search(lib, "when are invoices paid", k=1)[0].text
    # Recorded: listed later, and not re-read while unchanged.
    assert set(lib.manifest.problems()) == {str(messy / n) for n in EXPECTED}
    again = Ingestor(lib).sync([messy])
    assert again.unchanged == 3 and {r.status for r in again.results} == {"skipped"}


def test_a_file_that_turns_bad_keeps_nothing_stale_and_loses_nothing_else(messy, tmp_path, open_library):
    lib = open_library(max_file_mb=2)
    Ingestor(lib).sync([messy])
    before = store_snapshot(lib)
    (messy / "good.txt").write_bytes(b"\xff\xfe\x00\x00" + os.urandom(2000))  # overwritten with garbage
    report = Ingestor(lib).sync([messy])
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
