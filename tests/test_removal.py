"""Files gone that may be a drive away, not deleted: the sync holds their removal until confirmed
(ingest/removal.py), against a real store, the real model and the real `hearth` command."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import run_hearth
from ingest import removal
from ingest.pipeline import Ingestor
from rag.retrieval import search


@pytest.fixture
def drive(tmp_path):
    """A folder of eight notes, as on a drive mounted at `drive`."""
    root = tmp_path / "drive"
    root.mkdir()
    for i in range(8):
        (root / f"note-{i}.md").write_text(f"# Note {i}\n\nThe parcel number {i} went to the harbour office.\n")
    return root


def test_an_empty_mount_point_removes_nothing_until_confirmed(drive, library):
    Ingestor(library).sync([drive])
    for path in drive.iterdir():  # unmounted: the mount point is left as an empty folder
        path.unlink()
    report = Ingestor(library).sync([drive])
    assert report.count("removed") == 0 and len(library.documents()) == 8
    hold = report.held[str(drive)]
    assert (hold.count, hold.recorded, hold.why) == (8, 8, "more than half")
    assert "8 documents would be removed" in hold.message(str(drive))
    assert search(library, "parcel harbour office", k=3)  # still searchable
    report = Ingestor(library).sync([drive], allow_removal=True)
    assert report.count("removed") == 8 and library.documents() == [] and not report.held


def test_a_few_deleted_files_are_removed_without_asking(drive, library):
    Ingestor(library).sync([drive])
    for i in range(4):  # half: ordinary deletion
        (drive / f"note-{i}.md").unlink()
    report = Ingestor(library).sync([drive])
    assert report.count("removed") == 4 and not report.held and len(library.documents()) == 4


def test_another_drive_at_the_same_folder_holds_any_removal(drive, library, monkeypatch):
    Ingestor(library).sync([drive])
    devices = json.loads((library.settings.home / removal.DEVICES_FILE).read_text())
    assert devices[str(drive)] == drive.stat().st_dev
    (drive / "note-0.md").unlink()  # one of eight gone, but the folder is on another device now
    monkeypatch.setattr(removal, "device", lambda folder: drive.stat().st_dev + 1)
    report = Ingestor(library).sync([drive])
    assert report.count("removed") == 0 and report.held[str(drive)].why == "device changed"
    assert len(library.documents()) == 8
    # confirmed: removed, and the new device is remembered, so the next deletion does not ask
    assert Ingestor(library).sync([drive], allow_removal=True).count("removed") == 1
    (drive / "note-1.md").unlink()
    assert Ingestor(library).sync([drive]).count("removed") == 1


def test_the_cli_refuses_naming_the_count_and_removes_with_allow_removal(drive, home):
    assert run_hearth(home, "ingest", drive).returncode == 0
    moved = drive.parent / "elsewhere"
    shutil.move(str(drive), moved)
    drive.mkdir()  # the mount point, empty
    refused = run_hearth(home, "ingest", drive)
    assert refused.returncode == 6, refused.stderr
    assert "8 documents would be removed" in refused.stderr and "--allow-removal" in refused.stderr
    assert json.loads(run_hearth(home, "docs", "--json").stdout)["total"] == 8
    held = json.loads(run_hearth(home, "ingest", drive, "--json").stdout)["held"]
    assert held[str(drive)]["count"] == 8
    allowed = run_hearth(home, "ingest", drive, "--allow-removal")
    assert allowed.returncode == 0 and json.loads(run_hearth(home, "docs", "--json").stdout)["total"] == 0
