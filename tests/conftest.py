"""Shared fixtures: a fresh HEARTH_HOME per test, the real embedding model (loaded once), real PDFs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import secrets

import pytest

from ingest.embedding import Embedder
from ingest.library import Library
from ingest import libraries
from ingest.pipeline import Ingestor
from ingest.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
OCTAVE = ROOT / ".cache/testdata/root/usr/share/doc/octave"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Tests that start a model server share the xdist group "model-server" so that they run one at
    a time on one worker. pytest-xdist marks a grouped test by appending "@group" to its node id; a
    pytest it does not know (9.2 renamed the attribute) drops that silently and the suite turns
    flaky, so say so instead."""
    if getattr(config.option, "loadgroup", False):
        lost = [i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
        if lost:
            raise pytest.UsageError(f"pytest-xdist did not group {len(lost)} tests (e.g. {lost[0]}): this "
                                    "pytest and pytest-xdist do not work together; use the versions in requirements.lock")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    for var in ("HEARTH_CONFIG", "HEARTH_COLLECTION", "HEARTH_EMBED_MODEL", "HEARTH_CHUNK_SIZE", "HEARTH_CHROMA_URL",
                "HEARTH_CHROMA_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def open_library(home, embedder):
    """open_library(collection=None, **settings) -> a Library sharing the session's loaded model."""
    opened = []

    def _open(collection=None, **overrides):
        lib = libraries.open_library(load_settings(**overrides), collection)
        if lib.settings.embed_model in (embedder.name, "auto"):
            lib.embedder = embedder  # loaded once per test session; used while it is the collection's model
        opened.append(lib)
        return lib

    yield _open
    for lib in opened:
        lib.close()


@pytest.fixture
def library(open_library) -> Library:
    return open_library()


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory):
    """One real `chroma run` for the tests (of this worker) that want a server's library."""
    from chroma_server import ChromaServer

    server = ChromaServer(tmp_path_factory.mktemp("chroma-shared") / "chroma").start()
    yield server.url
    server.stop()


@pytest.fixture(params=["embedded", "server"])
def either_library(request, open_library, monkeypatch) -> Library:
    """The module's tests once with the embedded library and once with a Chroma server's (each test a
    collection of its own there): `library = either_library` in a module runs it against both."""
    if request.param == "embedded":
        return open_library()
    monkeypatch.setenv("HEARTH_CHROMA_URL", request.getfixturevalue("chroma_url"))
    return open_library(f"c{secrets.token_hex(4)}")


@pytest.fixture
def ingest(library):
    def _ingest(*paths, lib=None):
        return Ingestor(lib or library).sync(paths)

    return _ingest


@pytest.fixture(scope="session")
def manuals() -> Path:
    """Real TeX-made PDFs from Debian's r-doc-pdf (fetched by `make testdata`)."""
    if not (MANUALS / "R-intro.pdf").is_file():
        pytest.fail(f"real test PDFs missing under {MANUALS}: run `make testdata`")
    return MANUALS


def store_snapshot(lib: Library) -> dict:
    return lib.snapshot()


def hearth_command(home, *args, **env) -> tuple[list[str], dict]:
    """argv and environment to run `hearth ARGS` as a user would, against HEARTH_HOME=home."""
    return ([sys.executable, "-m", "rag.cli", *map(str, args)],
            {**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env})


def run_hearth(home, *args, timeout: float = 300, stdin: str | None = None, preexec_fn=None, **env):
    """`hearth ARGS` to completion; stdout and stderr captured as text. Keyword arguments set env vars."""
    argv, environ = hearth_command(home, *args, **env)
    return subprocess.run(argv, env=environ, input=stdin, preexec_fn=preexec_fn, capture_output=True,
                          text=True, timeout=timeout)


def wait_until(condition, timeout: float = 60.0) -> float:
    """Seconds until condition() held; fails after `timeout`, a bound for a machine that is slow and
    busy (two test workers on two cores), not a measure of speed."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not true after {timeout} s")


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 120):
    """Until `proc` accepts connections on `port`; its output in the error if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing listening on {port} after {timeout} s")


def chunk_count(lib: Library) -> int:
    return lib.collection.count()


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
