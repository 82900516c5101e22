"""HEARTH_HOME is private to its user: the folder 0700 and what Hearth writes in it 0600, in a fresh
home made under the usual umask 022 and in one an older Hearth left readable (tightened on open)."""

from __future__ import annotations

import os
import stat

import pytest

from ingest.pipeline import Ingestor


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(home) -> dict[str, int]:
    modes = {".": stat.S_IMODE(os.stat(home).st_mode)}
    for folder, _, names in os.walk(home):
        for path in [folder] + [os.path.join(folder, n) for n in names]:
            modes[os.path.relpath(path, home)] = stat.S_IMODE(os.lstat(path).st_mode)
    return modes


def _loose(modes: dict[str, int]) -> dict[str, str]:
    return {p: oct(m) for p, m in modes.items() if m & 0o077}


def test_a_fresh_home_is_private(home, open_library, tmp_path, umask_022):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Note\n\nThe spare key is under the blue flowerpot.\n")
    lib = open_library()
    Ingestor(lib).sync([docs])
    with lib.writing():  # the writer lock too
        pass
    modes = _modes(home)
    assert modes["."] == 0o700
    assert {"manifest.sqlite3", "chroma/chroma.sqlite3", "writer.lock"} <= set(modes), sorted(modes)
    assert any(p.endswith(".bin") for p in modes), sorted(modes)  # Chroma's vector files, written by chromadb
    assert _loose(modes) == {}
    assert all(m == 0o600 for p, m in modes.items() if os.path.isfile(home / p)), modes


def test_an_existing_readable_home_is_tightened_on_open(home, open_library, umask_022):
    (home / "chroma" / "segment").mkdir(parents=True)
    (home / "logs").mkdir()
    for name in ("manifest.sqlite3", "chats.sqlite3", "chroma/chroma.sqlite3", "chroma/segment/data_level0.bin",
                 "logs/llm-1.log", "instance-id"):
        (home / name).write_bytes(b"")
        os.chmod(home / name, 0o644)
    os.chmod(home, 0o755)
    os.symlink("/etc/hostname", home / "outside")  # a link is not followed: what it points at stays as it is
    outside = stat.S_IMODE(os.stat("/etc/hostname").st_mode)
    open_library().documents()
    modes = _modes(home)
    assert modes["."] == 0o700 and modes["chroma"] == 0o700 and modes["chroma/segment"] == 0o700
    assert _loose({p: m for p, m in modes.items() if p != "outside"}) == {}
    assert modes["chats.sqlite3"] == modes["logs/llm-1.log"] == modes["chroma/segment/data_level0.bin"] == 0o600
    assert stat.S_IMODE(os.stat("/etc/hostname").st_mode) == outside


def test_the_chats_are_private_from_the_first_question(home, umask_022):
    from ingest.settings import load_settings
    from rag.chats import Chats

    with Chats(load_settings()) as chats:  # the app's or the CLI's first question, before any library opens
        chats.create("default", "Where is the spare key?")
    assert _loose(_modes(home)) == {} and stat.S_IMODE(os.stat(home / "chats.sqlite3").st_mode) == 0o600
