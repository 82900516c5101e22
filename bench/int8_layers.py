"""Can part of the embedder run in int8 and keep its vectors at cosine >= 0.999 (minimum) to fp32?

    .venv/bin/pip install nncf==3.4.0     (not a Hearth dependency: this bench only)
    .venv/bin/python bench/int8_layers.py [--passages N]

all-MiniLM-L6-v2 has 36 Linear layers (6 per transformer layer: query, key, value, attention output,
intermediate, output). Each row quantizes a set of them with NNCF (static int8: per-channel weights,
activations calibrated on 256 chunks of R-lang.pdf and R-ints.pdf that the clock never sees, SmoothQuant
as NNCF's transformer preset does) and keeps the others in fp32 (INFERENCE_PRECISION_HINT f32, what a CPU
without bf16 runs), on the OpenVINO model Hearth converts. Cosines are against OpenVINO fp32 (itself at
1.0000 to torch fp32, bench/embedding.py), over Hearth's chunks of R-intro.pdf and R-data.pdf, and again
without the chunks holding dot leaders (". . . . 64": tables of contents, whose runs of identical tokens
make the vector the most sensitive). Speed is timed for the rows that quantize many layers; on a CPU with
AVX-512 VNNI or AMX int8 it overstates what int8 gains on an AVX2-only one. The last row: int8 weights
only, activations fp32.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from embedding import MANUALS, openvino_encoder, passages, timed  # noqa: E402  (bench/ is on the path of a script run from it)
from machine import describe  # noqa: E402

from ingest.embedding import Embedder  # noqa: E402
from ingest.openvino_encoder import batches  # noqa: E402

KINDS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
         "intermediate.dense", "N.output.dense")
_LEADERS = re.compile(r"(\. ?){6,}")


def main(n: int) -> None:
    import nncf
    import numpy as np
    import openvino

    from ingest.chunking import Chunker
    from ingest.loaders import load

    print(describe(), flush=True)
    warnings.filterwarnings("ignore")
    nncf.set_log_level(logging.ERROR)  # not its list of the layers each row leaves in fp32
    embedder = Embedder(precision="fp32", backend="openvino")
    encoder = embedder.model  # converts the model on first use; its IR is what is quantized here
    texts = passages(embedder, n)
    plain = [i for i, t in enumerate(texts) if not _LEADERS.search(t)]
    chunker = Chunker(192, 32, embedder.tokenize)
    calibration = [c.text for name in ("R-lang.pdf", "R-ints.pdf") for c in chunker.chunk(load(MANUALS / name).sections)]
    calibration = calibration[::max(1, len(calibration) // 256)][:256]
    core = openvino.Core()
    model = core.read_model(str(encoder.xml))
    linear = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"]
    feeds = [feed for _, feed in batches(encoder.tokenizer, calibration, 8, 16, encoder.pad_id)]

    def encode_with(m):  # what stays float computes in f32, as on a CPU without bf16
        return openvino_encoder(m, embedder.path, {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                                   "ENABLE_CPU_PINNING": False})

    fp32_rate, ref = timed(encode_with(model), texts)
    print(f"{len(texts)} passages ({len(texts) - len(plain)} with dot leaders); OpenVINO fp32 {fp32_rate:.1f} passages/s")
    print("| int8 layers | of 36 | cosine min / median | min without dot leaders | passages/s | × OpenVINO fp32 |")
    print("| --- | ---: | --- | --- | ---: | ---: |")

    def row(label: str, int8: list[str], clocked: bool = False, weights_only: bool = False):
        if weights_only:
            m = nncf.compress_weights(model.clone(), mode=nncf.CompressWeightsMode.INT8_SYM)
        else:
            m = nncf.quantize(model.clone(), nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(feeds),
                              ignored_scope=nncf.IgnoredScope(names=[x for x in linear if x not in int8]))
        speed, vectors = timed(encode_with(m), texts) if clocked else (None, encode_with(m)(texts))
        cos = (vectors * ref).sum(1)
        shown = f"{speed:.1f} | {speed / fp32_rate:.2f}×" if clocked else "- | -"
        print(f"| {label} | {len(int8)} | {cos.min():.4f} / {np.median(cos):.5f} | {cos[plain].min():.4f} | {shown} |",
              flush=True)

    def of_kind(kind: str) -> list[str]:
        if kind == "N.output.dense":
            return [x for x in linear if ".output.dense" in x and "attention" not in x]
        return [x for x in linear if kind in x]

    row("all", linear, clocked=True)
    row("all but layers 0-1", [x for x in linear if not re.search(r"layer\.[01]\.", x)], clocked=True)
    row("all but the feed-forward outputs", [x for x in linear if x not in of_kind("N.output.dense")], clocked=True)
    for kind in KINDS:
        row(f"{kind.replace('N.', '')} of every layer", of_kind(kind))
    for layer in range(6):
        row(f"layer {layer}, all six", [x for x in linear if f"layer.{layer}." in x])
    row("layer 5 query alone", [x for x in linear if "layer.5.attention.self.query" in x])
    row("layer 4 intermediate alone", [x for x in linear if "layer.4.intermediate" in x])
    row("weights only (int8 weights, fp32 activations)", linear, clocked=True, weights_only=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=512)
    main(parser.parse_args().passages)
