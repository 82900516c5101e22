"""Two processes, one library: a long-lived reader (`hearth search -`, as the app, `hearth api` and MCP
keep one library open) goes on answering while `hearth ingest` writes 3,000 passages in another
process, on the embedded store and on a Chroma server (Library._read: a fresh view when the manifest
moved on, a read meeting a write in flight tried again)."""

from __future__ import annotations

import json
import random
import subprocess
import time

import pytest

from conftest import hearth_command, run_hearth

# Both cores busy for minutes: kept off the time of the tests that wait on a model server (same group,
# so never beside them; in CI's first run beside them, a browser test waited 300 s for an answer).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("model-server")]
WORDS = "kettle harbour ledger violin orchard lantern pepper meadow copper signal winter ladder river parcel".split()


def _batch(root, files: int = 150, passages: int = 20):
    """`files` notes of `passages` short sections each, a section a passage (~60 tokens: the same 3,000
    passages and writes as full-sized ones, at a third of the embedding work)."""
    rng = random.Random(7)
    root.mkdir(parents=True)
    for i in range(files):
        body = "\n\n".join(f"## Part {j}\n\n" + " ".join(rng.choice(WORDS) for _ in range(45)) + "."
                             for j in range(passages))
        (root / f"batch-{i:04d}.md").write_text(f"# Batch {i}\n\n{body}\n")
    (root / "zz-beacon.md").write_text("# Beacon\n\nThe quarantine beacon of Saltmarsh glows amber at midnight.\n")
    return root


def _reader_survives_an_ingest(home, tmp_path, **env):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "office.md").write_text("# Office\n\nThe parcel reached the harbour office on Tuesday.\n")
    assert run_hearth(home, "ingest", seed, **env).returncode == 0
    argv, environ = hearth_command(home, "search", "-", "--json", "-k", "3", **env)
    reader = subprocess.Popen(argv, env=environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, bufsize=1)
    argv, environ = hearth_command(home, "ingest", _batch(tmp_path / "batch"), "--json", **env)
    out, err = open(tmp_path / "ingest.json", "w+"), open(tmp_path / "ingest.err", "w+")  # not pipes: 150 files' report
    writer = subprocess.Popen(argv, env=environ, stdout=out, stderr=err, text=True)
    answered, errors = [], []

    def ask(query: str) -> list[str] | None:
        reader.stdin.write(query + "\n")
        line = reader.stdout.readline()
        if not line:  # the reader died
            errors.append(reader.stderr.read()[-2000:])
            return None
        return [h["source"] for h in json.loads(line)["hits"]]

    started = time.monotonic()
    try:
        while writer.poll() is None or len(answered) < 200:
            got = ask("where did the parcel go?" if len(answered) % 2 else "lantern orchard copper signal")
            if got is None:
                break
            answered.append(got)
            time.sleep(0.05)  # about as many searches during the ~20 s ingest (alone) as the 200 asked for
        assert writer.wait(timeout=1200) == 0, (tmp_path / "ingest.err").read_text()[-2000:]
        report = json.loads((tmp_path / "ingest.json").read_text())
        assert report["chunks_added"] >= 3_000
        print(f"{len(answered)} searches in {time.monotonic() - started:.0f} s beside an ingest of "
              f"{report['chunks_added']} passages in {report['seconds']:.0f} s")
        assert not errors and len(answered) >= 200, f"{len(answered)} searches answered, then: {errors}"
        assert all(got for got in answered)
        # what the other process recorded is found by the same long-lived reader (which looks for
        # other processes' writes once a second: Library.VIEW_CHECK_S)
        time.sleep(1.5)
        assert any(src.endswith("zz-beacon.md") for src in ask("which beacon glows amber at midnight?") or [])
        assert any(any("batch-" in s for s in got) for got in answered[len(answered) // 2:])
    finally:
        reader.stdin.close()
        reader.wait(timeout=60)
        if writer.poll() is None:
            writer.kill()


def test_a_reader_keeps_answering_while_another_process_ingests(home, tmp_path):
    _reader_survives_an_ingest(home, tmp_path)


def test_the_same_against_a_chroma_server(home, tmp_path):
    from chroma_server import ChromaServer

    server = ChromaServer(tmp_path / "chroma-server").start()
    try:
        _reader_survives_an_ingest(home, tmp_path, HEARTH_CHROMA_URL=server.url)
    finally:
        server.stop()
