"""Crash safety under kill -9, for `hearth ingest` and for `hearth watch`.

    .venv/bin/python bench/crash.py [--kills 50] [--watch-kills 50] [--seed N]

Ingest: a 200-file corpus of generated notes in .md, .txt and .html (~300 chunks; the crash test in
tests/ kills ingests of real PDFs). Each round
starts `hearth ingest` on an empty store, kills it (SIGKILL) at a random moment (half the rounds at a
random time, half while a write is in flight, i.e. the journal is not empty), resumes with a second
`hearth ingest`, and compares the store with a clean ingest of the same corpus: the same documents,
chunks (text, page, offsets) and keyword index, no duplicate ids, no orphan vectors, an empty journal.

Watch: one `hearth watch` over a folder that a burst of changes (adds, edits, deletes, renames)
keeps changing; each round kills it at a random moment in the burst, lets the rest of the burst
happen while nothing watches, restarts it, waits until it is idle, and compares the store with a
clean ingest of the folder as it now is.

Prints one line per round and `N/N identical` for each part. A round whose process finished before
the kill landed is drawn again (it proves nothing).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)
WORDS = ("river stone lantern orchard copper violin harbour meadow signal pepper winter ladder tide "
         "garden thimble quarry falcon walnut ember saddle").split()


def note(rng: random.Random, n: int, kind: str) -> str:
    paragraphs = ["The " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 70))) + "."
                  for _ in range(rng.randint(1, 3))]
    if kind == "md":
        return f"# Note {n}\n\n" + "\n\n".join(f"## Part {i}\n\n{p}" for i, p in enumerate(paragraphs))
    if kind == "html":
        return f"<html><body><h1>Note {n}</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</body></html>"
    return f"Note {n}\n\n" + "\n\n".join(paragraphs)


def make_corpus(root: Path, rng: random.Random, files: int = 200) -> Path:
    root.mkdir(parents=True)
    for n in range(files):
        kind = ("md", "txt", "html")[n % 3]
        (root / f"note-{n:03d}.{kind}").write_text(note(rng, n, kind))
    return root


def hearth(home: Path, *args, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    env = {**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-m", "rag.cli", *map(str, args)], env=env, stdout=stdout,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def journal_size(home: Path) -> int:
    try:
        with sqlite3.connect(f"file:{home / 'manifest.sqlite3'}?mode=ro", uri=True, timeout=0.2) as db:
            return db.execute("SELECT count(*) FROM journal").fetchone()[0]
    except sqlite3.Error:
        return 0


def time_ingest(proc: subprocess.Popen, home: Path) -> tuple[float, float]:
    """(seconds until its first write, seconds in all) of an ingest process writing into `home`
    (a local store): kill times drawn from these land inside a run on a fast machine and a slow one."""
    started = time.monotonic()
    first = None
    while proc.poll() is None:
        if first is None and journal_size(home) > 0:
            first = time.monotonic() - started
        time.sleep(0.005)
    total = time.monotonic() - started
    return (first if first is not None else total), total


def kill_sometime(proc: subprocess.Popen, home: Path, rng: random.Random, after_s: float, in_write: bool,
                  children: list[int] | None = None) -> bool:
    """SIGKILL `proc` after `after_s` seconds or, with `in_write`, up to 0.3 s into the first write in
    flight after that (the journal not empty). False if it finished before the kill. The pids of its
    children at that moment (its file reader) are added to `children`."""
    deadline = time.monotonic() + after_s
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    while in_write and proc.poll() is None and journal_size(home) == 0:
        time.sleep(0.002)
    if in_write and proc.poll() is None:
        time.sleep(rng.uniform(0, 0.3))
    if proc.poll() is not None:
        return False
    if children is not None:
        for task in Path(f"/proc/{proc.pid}/task").glob("*/children"):
            children.extend(int(pid) for pid in task.read_text().split())
    proc.kill()
    proc.wait()
    return True


class Stores:
    """Opens stores with one shared embedding model and compares them."""

    def __init__(self):
        from ingest.embedding import Embedder

        self.embedder = Embedder()

    def open(self, home: Path):
        from ingest.libraries import open_library
        from ingest.settings import load_settings

        os.environ["HEARTH_HOME"] = str(home)
        lib = open_library(load_settings())
        lib.embedder = self.embedder
        return lib

    def clean(self, folder: Path, home: Path) -> dict:
        from ingest.pipeline import Ingestor

        lib = self.open(home)
        try:
            Ingestor(lib).sync([folder])
            return lib.snapshot()
        finally:
            lib.close()

    def differences(self, home: Path, want: dict) -> list[str]:
        lib = self.open(home)
        try:
            got = lib.snapshot()
        finally:
            lib.close()
        problems = [f"{key} differ ({len(got[key])} vs {len(want[key])})"
                    for key in ("documents", "chunks", "keywords") if got[key] != want[key]]
        if not got["ids_unique"]:
            problems.append("duplicate ids")
        if got["orphans"]:
            problems.append(f"{len(got['orphans'])} orphan documents")
        if got["journal"]:
            problems.append(f"journal not empty: {got['journal']}")
        return problems


def still_running(pids: list[int]) -> int:
    """How many of the killed ingests' file readers are still running (each must exit by itself)."""
    time.sleep(1)
    alive = 0
    for pid in pids:
        try:
            alive += "ingest.reader" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            pass
    return alive


def ingest_rounds(stores: Stores, work: Path, rng: random.Random, kills: int) -> tuple[int, int]:
    corpus = make_corpus(work / "corpus", rng)
    started = time.perf_counter()
    want = stores.clean(corpus, work / "clean")
    print(f"clean ingest of {len(want['documents'])} files, {len(want['chunks'])} chunks: "
          f"{time.perf_counter() - started:.1f} s in-process", flush=True)
    started = time.perf_counter()
    assert hearth(work / "timing", "ingest", corpus).wait() == 0
    full = time.perf_counter() - started
    print(f"one uninterrupted `hearth ingest` (process start included): {full:.1f} s", flush=True)
    identical, done, redrawn, resumes, children = 0, 0, 0, [], []
    while done < kills:
        home = work / f"round-{done:02d}"
        proc = hearth(home, "ingest", corpus)
        in_write = done % 2 == 1
        if not kill_sometime(proc, home, rng, rng.uniform(0.5, full), in_write, children):  # finished first: draw again
            redrawn += 1
            shutil.rmtree(home)
            continue
        pending = journal_size(home)
        t = time.perf_counter()
        resume = hearth(home, "ingest", corpus)
        _, stderr = resume.communicate(timeout=900)
        resumes.append(time.perf_counter() - t)
        problems = [] if resume.returncode == 0 else [f"resume exit {resume.returncode}: {stderr.decode()[-300:]}"]
        problems += stores.differences(home, want)
        identical += not problems
        done += 1
        print(f"ingest kill {done:2d} ({'mid-write' if in_write else 'random   '}, journal {pending}): "
              f"{'identical' if not problems else '; '.join(problems)}", flush=True)
        shutil.rmtree(home)
    print(f"ingest: {identical}/{kills} identical; {redrawn} draws came after the run had finished; "
          f"resume median {statistics.median(resumes):.1f} s; file readers of killed ingests still running: "
          f"{still_running(children)} of {len(children)}", flush=True)
    return identical, kills


def _mutate(folder: Path, rng: random.Random, counter: list[int]):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    action = rng.choice(["add", "add", "edit", "delete", "rename", "move"])
    if action == "add" or len(files) < 10:
        counter[0] += 1
        kind = rng.choice(["md", "txt", "html"])
        (folder / f"new-{counter[0]:04d}.{kind}").write_text(note(rng, counter[0], kind))
    elif action == "edit":
        victim = rng.choice(files)
        kind = victim.suffix.lstrip(".")
        victim.write_text(note(rng, rng.randint(0, 9999), kind if kind in ("md", "txt", "html") else "txt"))
    elif action == "delete":
        rng.choice(files).unlink()
    elif action == "rename":
        victim = rng.choice(files)
        counter[0] += 1
        victim.rename(victim.with_name(f"renamed-{counter[0]:04d}{victim.suffix}"))
    else:
        sub = folder / f"sub-{rng.randint(0, 3)}"
        sub.mkdir(exist_ok=True)
        victim = rng.choice(files)
        if victim.parent != sub:
            victim.rename(sub / victim.name)


def _wait_converged(home: Path, folder: Path, log: Path, timeout: float = 180) -> bool:
    """The watcher has caught up: its manifest lists exactly the folder's files, journal empty."""
    from ingest.pipeline import file_sha256

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        want = {str(p): file_sha256(p) for p in folder.rglob("*") if p.is_file()}
        try:
            with sqlite3.connect(f"file:{home / 'manifest.sqlite3'}?mode=ro", uri=True, timeout=0.5) as db:
                got = dict(db.execute("SELECT path, sha256 FROM files"))
                journal = db.execute("SELECT count(*) FROM journal").fetchone()[0]
        except sqlite3.Error:
            got, journal = {}, 1
        if got == want and journal == 0 and "watching" in log.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def watch_rounds(stores: Stores, work: Path, rng: random.Random, kills: int) -> tuple[int, int]:
    folder = make_corpus(work / "watched", rng, files=40)
    home = work / "watch-home"
    counter, identical = [1000], 0
    for done in range(1, kills + 1):
        log = work / f"watch-{done}.log"
        with open(log, "w") as fh:
            proc = hearth(home, "watch", folder, stdout=fh)
        if not _wait_converged(home, folder, log):
            print(f"watch round {done}: the watcher did not catch up before the kill", flush=True)
            proc.kill()
            continue
        burst, kill_at = rng.randint(15, 40), rng.uniform(0.2, 2.5)
        started, killed, made = time.monotonic(), False, 0
        while made < burst:
            if not killed and time.monotonic() - started >= kill_at:
                proc.kill()
                proc.wait()
                killed = True
            _mutate(folder, rng, counter)
            made += 1
            time.sleep(rng.uniform(0, 0.12))
        if not killed:
            time.sleep(max(0.0, kill_at - (time.monotonic() - started)))
            proc.kill()
            proc.wait()
        for _ in range(rng.randint(0, 5)):  # changes while nothing watches
            _mutate(folder, rng, counter)
        restart_log = work / f"watch-{done}-restart.log"
        with open(restart_log, "w") as fh:
            restarted = hearth(home, "watch", folder, stdout=fh)
        problems = [] if _wait_converged(home, folder, restart_log) else ["did not converge within 180 s"]
        restarted.send_signal(signal.SIGINT)  # Ctrl-C
        if restarted.wait(120) != 0:
            problems.append(f"Ctrl-C exit {restarted.returncode}")
        want = stores.clean(folder, work / f"watch-clean-{done}")
        problems += stores.differences(home, want)
        shutil.rmtree(work / f"watch-clean-{done}")
        identical += not problems
        print(f"watch kill {done:2d} ({burst} changes, kill after {kill_at:.1f} s; {len(want['documents'])} files): "
              f"{'identical' if not problems else '; '.join(problems)}", flush=True)
    print(f"watch: {identical}/{kills} identical", flush=True)
    return identical, kills


def main():
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--watch-kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    print(f"seed {args.seed}", flush=True)
    started, stores = time.perf_counter(), Stores()
    with tempfile.TemporaryDirectory(prefix="hearth-crash-") as tmp:
        results = []
        if args.kills:
            results.append(("ingest", *ingest_rounds(stores, Path(tmp), random.Random(args.seed), args.kills)))
        if args.watch_kills:
            results.append(("watch", *watch_rounds(stores, Path(tmp), random.Random(args.seed + 1), args.watch_kills)))
    for name, ok, total in results:
        print(f"{name}: {ok}/{total} identical")
    print(f"{time.perf_counter() - started:.0f} s in all")
    sys.exit(0 if all(ok == total for _, ok, total in results) else 1)


if __name__ == "__main__":
    main()
