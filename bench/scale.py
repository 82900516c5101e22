"""Hearth at 100k and 1M passages: search, memory, re-sync, delete, the documents list, disk.

    .venv/bin/python bench/scale.py build --passages 100000 [--real]   (once; minutes, 1M: an hour)
    .venv/bin/python bench/scale.py measure --passages 100000 [--real]
    .venv/bin/python bench/scale.py compare                            (stand-in vs real vectors, 100k)
    .venv/bin/python bench/scale.py churn --passages 100000            (disk after delete + re-add, compacted)

The library: real text cut from the R and Octave manuals and the Debian reference (`make testdata`),
sentences drawn at random (seeded) into Markdown notes, plain-text files and mail (.eml), many files of
varied size (two thirds a passage or a few, a few of them long), about one file for every ten passages:
10,000 files for 100k passages, 100,000 for 1M. They are ingested by Hearth's own pipeline
(Ingestor.sync: reader process, chunker, manifest, keyword index, Chroma), into
.cache/bench/scale/<passages>[-real]/.

Vectors: embedding a million passages with the real model would take this CPU ~4 hours, so the scale
runs use a stand-in: each pool sentence is embedded once with the real model (all-MiniLM-L6-v2), and a
passage's vector is the normalised mean of its whole sentences' vectors (the sentences a chunk cuts
in two are left out). They live in the model's space, so queries are embedded by the real model and
find related passages. `build --real` builds the same 100k library with the real model, and
`compare` says how close the stand-in is (cosine to the real vector, and search timings on both).

`measure` prints, each in its own process where memory is reported: hybrid, dense and keyword search
p50/p95 (200 queries: the R FAQ dev set's questions and the Debian and Octave sets' own-words ones) and
the peak memory (VmHWM) of that process; a no-op re-sync of every file (in process and through
`hearth ingest`); deleting a tenth of the files; `hearth docs --json` (whole process); the app's
Library page in Chromium under `hearth serve` (time to first paint of the documents table, and the
serving process's peak memory); and disk use per passage.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

DOC = ROOT / ".cache/testdata/root/usr/share"
SOURCES = [*(DOC / "R/doc/manual" / n for n in ("R-exts.pdf", "R-intro.pdf", "R-data.pdf", "R-admin.pdf",
                                                   "R-lang.pdf", "R-FAQ.pdf", "refman.pdf")),
           DOC / "doc/octave/octave.pdf", *sorted((DOC / "debian-reference").glob("ch*.en.html"))]
WORK = (ROOT / ".cache/bench/scale").resolve()  # canonical: a checkout whose .cache is a link finds the same files
POOL_PER_SOURCE = 4000  # sentences kept of each source: ~40k in all, embedded once (a few minutes)
WORDS_PER_PASSAGE = 94  # words of this prose per passage of 192 tokens less the overlap (measured: 133,205 passages of 12.5M words)
MODEL = "all-MiniLM-L6-v2"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


# --- the text -------------------------------------------------------------------------------------
def sentence_pool() -> list[str]:
    cache = WORK / "sentences.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from ingest.loaders import load

    rng, pool = random.Random(33), []
    for source in SOURCES:
        found = []
        for section in load(source).sections:
            found += [" ".join(s.split()) for s in _SENTENCE.split(section.text) if 6 <= len(s.split()) <= 60]
        found = sorted(set(found))
        pool += rng.sample(found, min(POOL_PER_SOURCE, len(found)))
        print(f"  {source.name}: {len(found)} sentences", flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(pool))
    return pool


def pool_vectors(pool: list[str]):
    import numpy as np

    cache = WORK / "sentences.npy"
    if cache.is_file():
        return np.load(cache)
    from ingest.embedding import Embedder

    t = time.perf_counter()
    vectors = np.asarray(Embedder(MODEL).embed(pool), dtype=np.float32)
    print(f"  {len(pool)} pool sentences embedded in {time.perf_counter() - t:.0f} s", flush=True)
    np.save(cache, vectors)
    return vectors


def _words(rng: random.Random) -> int:
    """A file's length in words: most are a note or a mail of a passage or a few; some are long."""
    kind = rng.random()
    if kind < 0.72:
        return rng.randint(40, 500)
    if kind < 0.97:
        return rng.randint(500, 3000)
    return rng.randint(3000, 15000)


def write_files(folder: Path, passages: int, pool: list[str]) -> int:
    """Files until they hold about `passages` passages; returns how many files."""
    done = folder / ".written"
    if done.is_file():
        return int(done.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    rng, n, words = random.Random(passages), 0, 0
    while words < passages * WORDS_PER_PASSAGE:
        target = _words(rng)
        paragraphs, count = [], 0
        while count < target:
            para = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 7)))
            paragraphs.append(para)
            count += len(para.split())
        sub = folder / f"d{n // 500:04d}"
        if n % 500 == 0:
            sub.mkdir(parents=True)
        kind = n % 10
        if kind < 6:
            text = f"# {' '.join(paragraphs[0].split()[:6])}\n\n" + "\n\n".join(paragraphs)
            (sub / f"note-{n:06d}.md").write_text(text)
        elif kind < 8:
            (sub / f"text-{n:06d}.txt").write_text("\n\n".join(paragraphs))
        else:
            (sub / f"mail-{n:06d}.eml").write_text(
                f"From: Ana <ana@example.org>\nTo: Bo <bo@example.org>\nSubject: {' '.join(paragraphs[0].split()[:5])}\n"
                f"Date: Mon, {1 + n % 28} Sep 2025 10:00:00 +0000\nMessage-ID: <{n}@example.org>\n"
                "Content-Type: text/plain; charset=utf-8\n\n" + "\n\n".join(paragraphs) + "\n")
        n, words = n + 1, words + count
    done.write_text(str(n))
    return n


class StandIn:
    """The real model's vectors of a passage's whole sentences, averaged: what `build` embeds with
    (everything else, the tokenizer and chunk sizes included, is the real Embedder's)."""

    def __init__(self, pool: list[str], vectors):
        from ingest.embedding import Embedder

        self.real = Embedder(MODEL)
        self.index = {s: i for i, s in enumerate(pool)}
        self.vectors = vectors

    def __getattr__(self, name):
        return getattr(self.real, name)

    def embed(self, texts: list[str]):
        import numpy as np

        out = np.zeros((len(texts), self.vectors.shape[1]), dtype=np.float32)
        for row, text in enumerate(texts):
            found = [self.index[s] for s in _SENTENCE.split(" ".join(text.split())) if s in self.index]
            if found:
                v = self.vectors[found].sum(axis=0)
            else:  # a chunk of one sentence's middle: a vector of its own, near its neighbours' topic
                v = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(self.vectors.shape[1])
            out[row] = v / np.linalg.norm(v)
        return out


def home_of(passages: int, real: bool) -> Path:
    return WORK / f"{passages}{'-real' if real else ''}" / "home"


def settings_for(home: Path):
    from ingest.settings import load_settings

    return load_settings(home=home, embed_model=MODEL)


def build(passages: int, real: bool) -> None:
    from ingest.libraries import open_library
    from ingest.pipeline import Ingestor

    pool = sentence_pool()
    folder = WORK / f"files-{passages}"
    files = write_files(folder, passages, pool)
    home = home_of(passages, real)
    lib = open_library(settings_for(home))
    if not real:
        lib.embedder = StandIn(pool, pool_vectors(pool))
    started, last = time.perf_counter(), [0.0]

    def progress(path, done, total, chunks, pages):
        now = time.perf_counter()
        if now - last[0] >= 30:
            last[0] = now
            print(f"  {done}/{total} files, {chunks} passages embedded, {chunks / (now - started):.0f}/s", flush=True)

    print(f"building {home}: {files} files in {folder}", flush=True)
    with lib.writing():
        report = Ingestor(lib, progress).sync([folder])
    print(f"built: {lib.count()} passages in {len(lib.documents())} files; this run {report.chunks_added} "
          f"passages in {report.seconds:.0f} s; failures {len(report.failures)}", flush=True)
    lib.close()


# --- measuring ------------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def peak_mb(pid: int | str = "self") -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def queries(n: int) -> list[str]:
    """Users' own-words questions of the English dev sets (R, Octave, Debian), repeated to n."""
    asked = [json.loads(line)["question"] for name in ("r", "octave", "debian")
             for line in open(ROOT / f"bench/answers-{name}.jsonl") if line.strip()]
    return (asked * (n // len(asked) + 1))[:n]


def search_child(passages: int, real: bool, n: int) -> None:
    """In a process of its own (its peak memory is the search's): every mode, n queries each."""
    from ingest.libraries import open_library
    from rag.retrieval import search

    lib = open_library(settings_for(home_of(passages, real)))
    asked = queries(n)
    t = time.perf_counter()
    lib.ensure_keywords()  # the keyword index built from the stored texts, if it is not (a library from an older version)
    built = time.perf_counter() - t
    t = time.perf_counter()
    search(lib, asked[0], 5)  # opens the store, loads the model and the vector index
    first = time.perf_counter() - t
    for q in asked[1:4]:
        search(lib, q, 5)
    out = {"keyword_index_built_s": built, "first_query_s": first}
    for mode in ("hybrid", "dense", "keyword"):
        took = []
        for q in asked:
            t = time.perf_counter()
            search(lib, q, 5, mode=mode)
            took.append(1000 * (time.perf_counter() - t))
        out[mode] = {"p50": statistics.median(took), "p95": percentile(took, 95)}
    out["peak_mb"] = peak_mb()
    print(json.dumps(out))


def _timed_process(argv, env, runs: int = 1) -> float:
    took = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        took.append(time.perf_counter() - t)
    return statistics.median(took)


def library_page(home: Path) -> dict:
    """`hearth serve` on this library, the app opened in Chromium: seconds to the chat page, to the
    Library page's first rows, to a search's sources; the serving process's peak memory."""
    import socket
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HEARTH_HOME": str(home), "HEARTH_EMBED_MODEL": MODEL, "PYTHONPATH": str(ROOT)}
    log = open(home.parent / "serve.log", "w")
    proc = subprocess.Popen([str(ROOT / ".venv/bin/hearth"), "serve", "--no-samples", "--no-llm", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    out = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("Library", exact=True).first.wait_for(timeout=120_000)
            out["app_s"] = time.perf_counter() - t
            page.wait_for_timeout(3000)  # the model loads after the first page is drawn
            for attempt in ("cold", "warm"):
                t = time.perf_counter()
                page.get_by_text("Library", exact=True).first.click()
                page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
                page.get_by_text("documents", exact=False).first.wait_for(timeout=120_000)
                out[f"library_{attempt}_s"] = time.perf_counter() - t
                page.get_by_text("Chat", exact=True).first.click()
                page.wait_for_timeout(1500)
            page.screenshot(path=str(home.parent / "library.png"))
            t = time.perf_counter()
            box = page.get_by_placeholder("Ask a question about your documents")
            box.fill("How do I read a CSV file into a data frame?")
            box.press("Enter")
            # the answer's passage cards (or, should none pass the relevance threshold, the refusal)
            page.wait_for_function("document.querySelectorAll('[data-testid=\"stChatMessage\"] [data-testid=\"stExpander\"]').length > 0 || "
                                   "document.body.innerText.includes(\"found nothing in your documents\")",
                                   timeout=120_000)
            out["ask_sources_s"] = time.perf_counter() - t
            page.screenshot(path=str(home.parent / "asked.png"))
            browser.close()
        out["serve_peak_mb"] = peak_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def measure(passages: int, real: bool, n: int, app: bool = True) -> dict:
    from ingest.libraries import open_library
    from ingest.pipeline import Ingestor

    build(passages, real)  # complete (a deletion measured last time is put back first)
    home, folder = home_of(passages, real), WORK / f"files-{passages}"
    lib = open_library(settings_for(home))
    count, files = lib.count(), len(lib.documents())
    lib.close()
    result = {"passages": count, "files": files, "disk_mb": disk_mb(home), "chroma_mb": disk_mb(home / "chroma"),
              "manifest_mb": (home / "manifest.sqlite3").stat().st_size / 2**20}
    result["disk_kb_per_passage"] = 1024 * result["disk_mb"] / count
    print(f"{count} passages in {files} files; disk {result['disk_mb']:.0f} MB", flush=True)

    child = subprocess.run([sys.executable, __file__, "search-child", "--passages", str(passages), "--queries", str(n)]
                           + (["--real"] if real else []), capture_output=True, text=True, check=True)
    result["search"] = json.loads(child.stdout.strip().splitlines()[-1])
    print("search:", result["search"], flush=True)
    result["keywords_mb"] = disk_mb(home / "manifest.keywords") if (home / "manifest.keywords").is_dir() else 0.0
    result["manifest_mb"] = (home / "manifest.sqlite3").stat().st_size / 2**20  # after an upgrade's first search
    print(f"keyword index {result['keywords_mb']:.1f} MB ({1024 * result['keywords_mb'] / count:.2f} KB a passage); "
          f"manifest {result['manifest_mb']:.1f} MB", flush=True)

    env = {**os.environ, "HEARTH_HOME": str(home), "HEARTH_EMBED_MODEL": MODEL, "PYTHONPATH": str(ROOT)}
    result["docs_json_s"] = _timed_process([sys.executable, "-m", "rag.cli", "docs", "--json"], env, 3)
    result["docs_table_s"] = _timed_process([sys.executable, "-m", "rag.cli", "docs"], {**env, "COLUMNS": "200"}, 1)
    print(f"hearth docs: --json {result['docs_json_s']:.2f} s, table {result['docs_table_s']:.2f} s", flush=True)
    if not real and app:
        result["app"] = library_page(home)
        print("app:", result["app"], flush=True)

    lib = open_library(settings_for(home))
    resync = []
    for _ in range(3):
        t = time.perf_counter()
        report = Ingestor(lib).sync([folder])
        resync.append(time.perf_counter() - t)
        assert report.unchanged == files and not report.results, report.results[:3]
    result["resync_s"] = statistics.median(resync)
    result["resync_cli_s"] = _timed_process([sys.executable, "-m", "rag.cli", "ingest", str(folder), "--json"], env, 1)
    print(f"no-op re-sync of {files} files: {result['resync_s']:.2f} s in process, {result['resync_cli_s']:.2f} s "
          "through `hearth ingest`", flush=True)

    if not real:  # put back by the next `build` or `measure`
        gone = sorted(folder.glob("d*"))[: max(1, len(list(folder.glob("d*"))) // 10)]
        t = time.perf_counter()
        removed = Ingestor(lib).remove(gone)
        result["delete_s"], result["deleted_files"] = time.perf_counter() - t, len(removed)
        result["deleted_passages"] = sum(r.chunks for r in removed)
        assert lib.count() == count - result["deleted_passages"]
        print(f"deleted {len(removed)} files ({result['deleted_passages']} passages): {result['delete_s']:.1f} s",
              flush=True)
    lib.close()
    (home.parent / "results.json").write_text(json.dumps(result, indent=1))
    return result


def disk_parts(home: Path) -> dict[str, float]:
    """MB of the manifest, Chroma's SQLite file and its vector index files, and all of the home."""
    chroma = home / "chroma"
    return {"manifest": (home / "manifest.sqlite3").stat().st_size / 2**20,
            "chroma_sqlite": (chroma / "chroma.sqlite3").stat().st_size / 2**20,
            "vector_index": sum(disk_mb(d) for d in chroma.iterdir() if d.is_dir()), "home": disk_mb(home)}


def churn(passages: int) -> dict:
    """Disk after deleting a tenth of the files and adding them back, against a fresh build of the
    same files (made first: minutes), then after `Library.compact()` (what `hearth compact` runs)."""
    from ingest.libraries import open_library
    from ingest.pipeline import Ingestor

    home, folder = home_of(passages, False), WORK / f"files-{passages}"
    shutil.rmtree(home, ignore_errors=True)  # a fresh build, whatever churn or compaction came before
    build(passages, False)
    fresh = disk_parts(home)
    pool = sentence_pool()
    lib = open_library(settings_for(home))
    lib.embedder = StandIn(pool, pool_vectors(pool))
    tenth = sorted(folder.glob("d*"))[: max(1, len(list(folder.glob("d*"))) // 10)]
    with lib.writing():
        removed = Ingestor(lib).remove(tenth)
    t = time.perf_counter()
    with lib.writing():
        report = Ingestor(lib).sync([folder])
    readd_s = time.perf_counter() - t
    churned = disk_parts(home)
    churned["estimated_free"] = lib.free_bytes() / 2**20
    print(f"compact() would give back about {churned['estimated_free']:.1f} MB", flush=True)
    print(f"deleted {len(removed)} files ({sum(r.chunks for r in removed)} passages) and added "
          f"{len(report.results)} back ({report.chunks_added} passages, {readd_s:.0f} s)", flush=True)
    t = time.perf_counter()
    with lib.writing():
        freed = lib.compact()
    compact_s = time.perf_counter() - t
    compacted = disk_parts(home)
    lib.close()
    result = {"passages": passages, "fresh_mb": fresh, "churned_mb": churned, "compacted_mb": compacted,
              "compact_s": compact_s, "freed": freed}
    for part in fresh:  # the estimate's own line is above
        print(f"  {part:14} fresh {fresh[part]:7.1f} MB   after churn {churned[part]:7.1f} MB "
              f"({churned[part] / fresh[part]:.2f}x)   compacted {compacted[part]:7.1f} MB "
              f"({compacted[part] / fresh[part]:.2f}x)", flush=True)
    print(f"compact: {compact_s:.1f} s", flush=True)
    (home.parent / "churn.json").write_text(json.dumps(result, indent=1))
    return result


def compare(n: int) -> None:
    """How close the stand-in is to the real model at 100k: cosine of the two vectors of the same
    passages, the overlap of the dense top 10 for the same questions, and the search timings of the
    two libraries' last `measure` runs."""
    import numpy as np
    from ingest.libraries import open_library
    from rag.retrieval import search

    stand, real = (open_library(settings_for(home_of(100_000, r))) for r in (False, True))
    pool = sentence_pool()
    standin = StandIn(pool, pool_vectors(pool))
    got = real.collection.get(include=["embeddings"], limit=2000, offset=0)
    texts = real.texts(got["ids"])
    ids = [cid for cid in got["ids"] if cid in texts]
    mine = standin.embed([texts[cid] for cid in ids])
    theirs = np.asarray(got["embeddings"], dtype=np.float32)[[got["ids"].index(cid) for cid in ids]]
    cos = (mine * theirs).sum(axis=1)
    print(f"cosine of the stand-in to the real vector over {len(ids)} passages: median {np.median(cos):.3f}, "
          f"5th percentile {np.percentile(cos, 5):.3f}, minimum {cos.min():.3f}")

    def where(lib, hit):
        return (hit.source, hit.chunk_id.rsplit(":", 1)[1])

    overlap = []
    for q in queries(n):
        a = {where(stand, h) for h in search(stand, q, 10, mode="dense")}
        b = {where(real, h) for h in search(real, q, 10, mode="dense")}
        overlap.append(len(a & b) / 10)
    print(f"dense top 10 shared by the two libraries, {len(overlap)} questions: mean {statistics.mean(overlap):.2f}")
    runs = {r: json.loads((home_of(100_000, r).parent / "results.json").read_text()) for r in (False, True)
            if (home_of(100_000, r).parent / "results.json").is_file()}
    if len(runs) == 2:
        print("| search at 100k, p50 / p95 ms | stand-in vectors | real vectors | ratio of p95 |")
        print("| --- | ---: | ---: | ---: |")
        for mode in ("hybrid", "dense", "keyword"):
            a, b = runs[False]["search"][mode], runs[True]["search"][mode]
            print(f"| {mode} | {a['p50']:.1f} / {a['p95']:.1f} | {b['p50']:.1f} / {b['p95']:.1f} | {a['p95'] / b['p95']:.2f} |")
        a, b = runs[False]["search"]["peak_mb"], runs[True]["search"]["peak_mb"]
        print(f"| peak memory of the search process (MB) | {a:.0f} | {b:.0f} | {a / b:.2f} |")
    stand.close()
    real.close()


def table() -> None:
    """The scale table from the last measure runs, with the growth from 100k to 1M."""
    runs = {p: json.loads((WORK / f"{p}/results.json").read_text()) for p in (100_000, 1_000_000)
            if (WORK / f"{p}/results.json").is_file()}
    rows = [("passages / files", lambda r: f"{r['passages']:,} / {r['files']:,}", None),
            ("hybrid search p50 / p95 (ms)", lambda r: f"{r['search']['hybrid']['p50']:.1f} / {r['search']['hybrid']['p95']:.1f}",
             lambda r: r["search"]["hybrid"]["p95"]),
            ("dense search p50 / p95 (ms)", lambda r: f"{r['search']['dense']['p50']:.1f} / {r['search']['dense']['p95']:.1f}",
             lambda r: r["search"]["dense"]["p95"]),
            ("keyword search p50 / p95 (ms)", lambda r: f"{r['search']['keyword']['p50']:.1f} / {r['search']['keyword']['p95']:.1f}",
             lambda r: r["search"]["keyword"]["p95"]),
            ("first search of a process (s)", lambda r: f"{r['search']['first_query_s']:.1f}", lambda r: r["search"]["first_query_s"]),
            ("peak memory of a search process (MB)", lambda r: f"{r['search']['peak_mb']:.0f}", lambda r: r["search"]["peak_mb"]),
            ("peak memory of `hearth serve` (MB)", lambda r: f"{r['app']['serve_peak_mb']:.0f}", lambda r: r["app"]["serve_peak_mb"]),
            ("no-op re-sync of every file (s): in process / `hearth ingest`",
             lambda r: f"{r['resync_s']:.2f} / {r['resync_cli_s']:.2f}", lambda r: r["resync_s"]),
            ("delete a tenth of the files (s)", lambda r: f"{r['delete_s']:.1f} ({r['deleted_files']:,} files)",
             lambda r: r["delete_s"]),
            ("`hearth docs --json` / table (s)", lambda r: f"{r['docs_json_s']:.2f} / {r['docs_table_s']:.2f}",
             lambda r: r["docs_json_s"]),
            ("app: Library page, first rows drawn (s): first / again",
             lambda r: f"{r['app']['library_cold_s']:.2f} / {r['app']['library_warm_s']:.2f}", lambda r: r["app"]["library_cold_s"]),
            ("app: a question's sources shown (s)", lambda r: f"{r['app']['ask_sources_s']:.2f}", lambda r: r["app"]["ask_sources_s"]),
            ("disk per passage (KB): Chroma + manifest",
             lambda r: f"{r['disk_kb_per_passage']:.2f} ({r['chroma_mb']:.0f} + {r['manifest_mb']:.0f} MB)",
             lambda r: r["disk_kb_per_passage"])]
    sizes = sorted(runs)
    print("| | " + " | ".join(f"{p:,}" for p in sizes) + (" | growth |" if len(sizes) == 2 else " |"))
    print("| --- |" + " ---: |" * (len(sizes) + (len(sizes) == 2)))
    for name, shown, value in rows:
        cells = []
        for p in sizes:
            try:
                cells.append(shown(runs[p]))
            except KeyError:
                cells.append("-")
        growth = ""
        if len(sizes) == 2 and value is not None:
            try:
                growth = f"×{value(runs[sizes[1]]) / value(runs[sizes[0]]):.2f}"
            except (KeyError, ZeroDivisionError):
                growth = "-"
        print(f"| {name} | " + " | ".join(cells) + (f" | {growth} |" if len(sizes) == 2 else " |"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["build", "measure", "compare", "table", "churn", "search-child"])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--real", action="store_true", help="the real model's vectors (100k only: hours at 1M)")
    parser.add_argument("--no-app", action="store_true", help="measure: leave out the app in Chromium")
    args = parser.parse_args()
    if args.what == "search-child":
        return search_child(args.passages, args.real, args.queries)
    print(describe(), flush=True)
    if args.what == "build":
        build(args.passages, args.real)
    elif args.what == "measure":
        measure(args.passages, args.real, args.queries, app=not args.no_app)
    elif args.what == "table":
        table()
    elif args.what == "compare":
        compare(args.queries)
    elif args.what == "churn":
        churn(args.passages)


if __name__ == "__main__":
    main()
