"""int8 embeddings on the non-bf16 path, judged by retrieval on the dev sets (issue 33).

    .venv/bin/pip install nncf==3.4.0                      (int8 is made by NNCF; not a Hearth dependency)
    .venv/bin/python bench/int8_retrieval.py               # retrieval on R, Octave, Debian (dev), then speed
    .venv/bin/python bench/int8_retrieval.py --variant transformer --variant no-smoothquant \
        --variant bias-correction --variant layer0-fp32    # the recipes of docs/performance.md, issue 33
    .venv/bin/python bench/int8_retrieval.py --split held --no-speed --variant transformer
    .venv/bin/python bench/int8_retrieval.py --no-retrieval --avx2   # speed only, kernels held to AVX2

all-MiniLM-L6-v2 as Hearth converts it to OpenVINO, compiled in f32 (what a CPU without bf16 runs), against
the same model quantized to int8 by NNCF post-training quantization (static: int8 weights per channel and
int8 activations, NNCF's transformer preset with SmoothQuant; `--variant` picks another recipe), what
stays float computed in f32. The calibration text is deterministic and on every machine: 256 of Hearth's
chunks of the two R manuals the app ships (data/R-intro.pdf, data/R-data.pdf: also the R set's corpus, so
the Octave and Debian sets are the unseen ones) and the embedder's probe texts.

1. Retrieval: each variant ingests the English answer sets (bench/answer_set.py: r, octave, debian) into
   a home of its own (bench/answers.py's home for the group and model, suffixed with the variant) and
   answers their questions' retrieval with its own query vectors: hit@1 / hit@5 / MRR per set, hybrid
   (what the app shows) and dense, and int8 minus fp32 in points. The rule (issue 33): int8 is usable
   only if on every set none of the three hybrid figures falls more than 1 point (0.01) below fp32's.
2. Speed: the same passages (Hearth's chunks of R-intro and R-data from `make testdata`, as
   bench/embedding.py) through plain sentence-transformers fp32 (torch), Hearth's OpenVINO fp32 and
   OpenVINO int8, one pass each in turn (order rotated per round), median passages/s of the rounds, and
   cosine to sentence-transformers' vectors. Ratios hold within one run only (the machine may be shared).

`--avx2` holds oneDNN, MKL and torch's kernels to AVX2 (a stand-in for a CPU without AVX-512: OpenVINO keeps
some AVX-512 JIT kernels, so it flatters OpenVINO, int8 most of all).
"""

from __future__ import annotations

import sys

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
if "--avx2" in sys.argv:  # read when torch and OpenVINO load their kernels: before anything imports them
    import os

    os.environ.update(AVX2)

import argparse  # noqa: E402
import hashlib  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))
from answer_set import SETS, load  # noqa: E402
from answers import ingest_home  # noqa: E402
from embedding import passages  # noqa: E402
from machine import describe  # noqa: E402

from ingest import openvino_encoder  # noqa: E402
from ingest.embedding import PAD_TO, Embedder  # noqa: E402

ENGLISH = ("r", "octave", "debian")
CACHE = ROOT / ".cache/bench/int8"
VARIANTS = ("transformer", "no-smoothquant", "bias-correction", "layer0-fp32")
CALIBRATION_PDFS = (ROOT / "data/R-intro.pdf", ROOT / "data/R-data.pdf")


def calibration_texts(embedder: Embedder, n: int = 256) -> list[str]:
    """Deterministic calibration passages: every k-th of Hearth's chunks of the shipped R manuals, and the probe."""
    from ingest.chunking import Chunker
    from ingest.loaders import load as load_file
    from ingest.settings import Settings

    s = Settings()
    chunker = Chunker(s.chunk_size, s.chunk_overlap, embedder.tokenize)
    chunks = [c.text for pdf in CALIBRATION_PDFS for c in chunker.chunk(load_file(pdf).sections)]
    return chunks[::max(1, len(chunks) // n)][:n] + list(openvino_encoder.PROBE)


def quantize(embedder: Embedder, variant: str) -> Path:
    """The int8 model of `embedder`'s converted fp32 one, made once under .cache/bench/int8."""
    import nncf
    import openvino
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from tokenizers import Tokenizer

    fp32_xml = embedder.model.xml
    texts = calibration_texts(embedder)
    key = hashlib.sha1(repr((fp32_xml.parent.name, texts, variant, nncf.__version__)).encode()).hexdigest()[:12]
    folder = CACHE / f"{variant}-{key}"
    if (folder / "model.xml").is_file():
        return folder / "model.xml"
    tokenizer = Tokenizer.from_file(embedder.tokenizer_file)
    pad_id = (tokenizer.padding or {}).get("pad_id", 0)
    tokenizer.no_padding()
    tokenizer.enable_truncation(embedder.max_tokens)
    feeds = [feed for _, feed in openvino_encoder.batches(tokenizer, texts, 8, PAD_TO, pad_id)]
    model = openvino.Core().read_model(str(fp32_xml))
    nncf.set_log_level(logging.ERROR)
    kwargs = {"model_type": nncf.ModelType.TRANSFORMER, "subset_size": len(feeds)}
    if variant == "no-smoothquant":
        kwargs["advanced_parameters"] = AdvancedQuantizationParameters(smooth_quant_alpha=-1)
    elif variant == "bias-correction":  # NNCF's full bias correction instead of its fast one
        kwargs["fast_bias_correction"] = False
    elif variant == "layer0-fp32":  # the first transformer layer, the most sensitive (bench/int8_layers.py), in fp32
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=[
            op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_type_name() == "MatMul" and "layer.0." in op.get_friendly_name()])
    elif variant != "transformer":
        raise ValueError(variant)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = nncf.quantize(model, nncf.Dataset(feeds), **kwargs)
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".quantizing-", dir=CACHE))
    try:
        openvino.save_model(quantized, staging / "model.xml", compress_to_fp16=False)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"quantized ({variant}) on {len(texts)} calibration texts in {time.perf_counter() - started:.0f} s: {folder}")
    return folder / "model.xml"


def int8_embedder(fp32: Embedder, xml: Path) -> Embedder:
    """An Embedder running the int8 model, what stays float in f32 (as on a CPU without bf16)."""
    e = Embedder(precision="fp32", backend="openvino")
    e._model = openvino_encoder.OpenVINOEncoder(xml, fp32.tokenizer_file, fp32.max_tokens, "fp32")
    e.choice = {"backend": "openvino", "why": f"int8 from {xml.parent.name}"}
    return e


def retrieval(variants: dict[str, Embedder], split: str) -> dict:
    """{variant: {set: {mode: {hit@1, hit@5, mrr}}}}: each variant's own home, store and query vectors."""
    from ingest.libraries import open_library
    from ingest.pipeline import Ingestor
    from ingest.settings import DEFAULT_EMBED_MODEL, load_settings
    from rag.evaluate import evaluate

    out, root = {}, ingest_home()  # once: a change to ingest/ during the run must not split the variants' homes
    print(f"homes: {root}/en-{DEFAULT_EMBED_MODEL}-<variant>")
    for label, embedder in variants.items():
        home = root / f"en-{DEFAULT_EMBED_MODEL}-{label}"
        settings = load_settings(home=home, llm_engine="llamacpp", embed_model=DEFAULT_EMBED_MODEL)
        libs = {}
        for name in ENGLISH:  # every set first: the keyword index's word counts are those of the whole home
            libs[name] = lib = open_library(settings, f"answers-{name}")
            lib.embedder = embedder
            started = time.perf_counter()
            report = Ingestor(lib).sync(SETS[name])
            took = time.perf_counter() - started
            if report.chunks_added:
                print(f"{label}: ingested {name}, {report.chunks_added} passages in {took:.0f} s", flush=True)
        out[label] = {}
        for name, lib in libs.items():
            rows = [r for r in load(name) if split in ("all", r["split"])]
            out[label][name] = evaluate(lib, rows, 5) | {"n": len(rows)}
            lib.close()
    return out


def print_retrieval(table: dict, base: str) -> bool:
    """The table, int8 minus fp32 in points; whether every other variant stays within 1 point on hybrid."""
    print("\n| set | n | variant | hybrid hit@1 / hit@5 / MRR | Δ points | dense hit@1 / hit@5 / MRR | Δ points |")
    print("| --- | ---: | --- | --- | --- | --- | --- |")
    ok = {label: True for label in table if label != base}
    for name in ENGLISH:
        for label in table:
            row, ref = table[label][name], table[base][name]
            cells = []
            for mode in ("hybrid", "dense"):
                figures = " / ".join(f"{v:.3f}" for v in row[mode].values())
                delta = [100 * (v - ref[mode][k]) for k, v in row[mode].items()]
                if mode == "hybrid" and label != base and min(delta) < -1 - 1e-9:
                    ok[label] = False
                cells += [figures, "-" if label == base else " / ".join(f"{d:+.1f}" for d in delta)]
            print(f"| {name} | {row['n']} | {label} | {' | '.join(cells)} |")
    for label, passed in ok.items():
        print(f"{label}: {'within' if passed else 'NOT within'} 1 point of {base} on hybrid hit@1, hit@5 and MRR "
              "on every set")
    return all(ok.values())


def speed(variants: dict[str, Embedder], n: int, rounds: int) -> None:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from ingest.settings import usable_cpus

    any_embedder = next(iter(variants.values()))
    texts = passages(any_embedder, n)
    st = SentenceTransformer(any_embedder.path, device="cpu", local_files_only=True)
    import torch

    torch.set_num_threads(usable_cpus())
    encoders = {"sentence-transformers encode (torch fp32)": lambda t: st.encode(
        t, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)}
    encoders |= {f"Hearth on OpenVINO, {label}": e.embed for label, e in variants.items()}
    vectors, rates = {}, {label: [] for label in encoders}
    for label, encode in encoders.items():
        encode(texts[:64])  # warm-up: kernels for these shapes
        vectors[label] = np.asarray(encode(texts), dtype="float32")
    names = list(encoders)
    for r in range(rounds):
        for label in names[r % len(names):] + names[:r % len(names)]:
            started = time.perf_counter()
            encoders[label](texts)
            rates[label].append(len(texts) / (time.perf_counter() - started))
    base = names[0]
    ref = vectors[base]
    print(f"\n{len(texts)} passages, batches of 32, {rounds} rounds (variants in turn), median passages/s; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| variant | passages/s | × plain ST | × OpenVINO fp32 | cosine to ST fp32 (median / min) |")
    print("| --- | ---: | ---: | ---: | --- |")
    ov32 = statistics.median(rates[names[1]])
    for label in names:
        rate = statistics.median(rates[label])
        cos = (vectors[label] * ref).sum(1)
        print(f"| {label} | {rate:.1f} | {rate / statistics.median(rates[base]):.2f}× | {rate / ov32:.2f}× | "
              f"{np.median(cos):.4f} / {cos.min():.4f} |")
    print("rounds: " + "; ".join(f"{label.split(',')[-1].strip()}: " + ", ".join(f"{x:.0f}" for x in rates[label])
                                 for label in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", choices=VARIANTS,
                        help="NNCF recipe(s) to compare (default: transformer)")
    parser.add_argument("--split", choices=("dev", "held", "all"), default="dev")
    parser.add_argument("--no-retrieval", action="store_true", help="speed only")
    parser.add_argument("--no-speed", action="store_true", help="retrieval only")
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--avx2", action="store_true", help="kernels held to AVX2 (read before imports)")
    args = parser.parse_args()
    print(describe())
    if args.avx2:
        print("kernels held to AVX2: " + " ".join(f"{k}={v}" for k, v in AVX2.items()))
    fp32 = Embedder(precision="fp32", backend="openvino")
    fp32.embed(["warm"])  # converts on first use (the user cache, as Hearth does)
    variants = {"fp32": fp32}
    for variant in args.variant or ["transformer"]:
        variants[f"int8-{variant}"] = int8_embedder(fp32, quantize(fp32, variant))
    if not args.no_retrieval:
        print_retrieval(retrieval(variants, args.split), "fp32")
    if not args.no_speed:
        speed(variants, args.passages, args.rounds)


if __name__ == "__main__":
    main()
