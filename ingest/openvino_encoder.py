"""The embedding model compiled by OpenVINO for this CPU, used where it beats torch (ingest/embedding.py).

A sentence-transformers model made of a transformer, mean pooling and (optionally) normalisation is
converted from torch to OpenVINO's format once and kept under the cache folder; later processes
load that file with the model's tokenizer.json and never import torch or sentence-transformers
(5 s of start-up here, against 0.2 s for openvino). Pooling and normalisation are done here in
numpy, as sentence-transformers does them.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from .settings import usable_cpus

# `import openvino` and each convert_model report to Google Analytics through openvino-telemetry
# (from a forked process, after writing a client id to ~/intel) unless the user has opted out.
# Hearth sends nothing anywhere: with that package hidden before openvino is first imported,
# OpenVINO falls back to its own no-op stub (tests/test_embedding.py checks).
if "openvino" not in sys.modules:
    sys.modules.setdefault("openvino_telemetry", None)

_PARTS = {"sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
          "sentence_transformers.models.Normalize"}
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# OpenVINO's names for Hearth's embed_precision values; auto lets it pick for the CPU (bf16 where
# AMX or AVX-512 BF16 multiply it, f32 elsewhere).
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
# What the accuracy guard and the timing run on (ingest/embedding.py): the kinds of passage that
# cost int8 its accuracy in bench/embedding.py (tables, code, numbers) besides prose, other scripts,
# and lengths from a query's to a full chunk's.
_SAMPLES = [
    "R is a language and environment for statistical computing and graphics.",
    "How do I read a CSV file into a data frame?",
    "install.packages('data.table'); library(data.table); dt <- fread('big.csv')[year > 2020, .N, by = region]",
    "| Quarter | Revenue | Cost | Margin |\n| Q1 | 1,204.50 | 980.10 | 18.6 % |\n| Q2 | 1,377.00 | 1,012.75 | 26.5 % |",
    "def median(xs):\n    s = sorted(xs)\n    n = len(s)\n    return (s[n // 2] + s[~(n // 2)]) / 2",
    "Keep receipts for six years; the tax return is due on the thirty-first of July, 2027, at 23:59.",
    "Die Mieterin kündigt den Vertrag fristgerecht zum 30. September; die Kaution wird verrechnet.",
    "東京の天気は明日晴れの予報です。気温は最高二十三度、最低十五度の見込みです。",
    "ERROR 2026-11-30T04:12:55Z worker-3 pid=4411 OOMKilled exit=137 rss=15.8GiB limit=16GiB retry=2/5",
    "Tomatoes need six hours of sun, deep watering twice a week and a stake once they flower; pinch out "
    "the side shoots so the plant puts its strength into the fruit rather than into leaves.",
    "The function lm() fits linear models: its formula argument names the response on the left of the "
    "tilde and the terms on the right, and summary() of the result reports coefficients, standard "
    "errors, t values and the residual standard error on the stated degrees of freedom.",
    "Section 4.2. The lessee shall indemnify the lessor against all claims, losses and expenses arising "
    "from the use of the premises, except those caused by the lessor's own negligence or wilful default.",
]
PROBE = _SAMPLES + [" ".join(_SAMPLES[i:i + 4]) for i in range(len(_SAMPLES) - 3)]


def unavailable(model_path: str) -> str | None:
    """Why this model can't run on OpenVINO here, or None if it can."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "openvino is not installed"
    if sys.modules.get("openvino_telemetry") is not None:
        return "openvino was imported before Hearth could switch off its telemetry"
    folder = Path(model_path)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        pooling = json.loads((folder / next(m["path"] for m in modules if m["type"].endswith(".Pooling"))
                              / "config.json").read_text())
        bert = json.loads((folder / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, StopIteration, KeyError):
        return "not a local sentence-transformers folder with a pooling layer"
    if {m["type"] for m in modules} - _PARTS or modules[0]["type"] != "sentence_transformers.models.Transformer":
        return "it has layers besides transformer, pooling and normalisation"
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        return f"its pooling is {sorted(modes)}, not mean"
    if bert.get("do_lower_case") or not (folder / "tokenizer.json").is_file():
        return "it has no tokenizer.json that does all of its tokenizing"
    return None


def last_hidden_state(transformer):
    """A Hugging Face encoder as a module of the three inputs that returns its last hidden state: what
    an exporter traces (pooling is done outside, in numpy)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state

    return LastHiddenState().eval()


def export(sentence_transformer, folder: Path) -> Path:
    """Convert a loaded sentence-transformers model's transformer to OpenVINO IR in `folder` (written
    aside and renamed, so a process that dies half-way or a second one converting at once leaves no
    half file). Weights stay fp32: the precision is chosen when the model is compiled."""
    import openvino
    import torch

    xml = folder / "model.xml"
    if xml.is_file():
        return xml
    ids = torch.ones(2, 16, dtype=torch.long)
    # The tracer warns that two tests on shapes become constants: both (padding past the mask,
    # causal attention) are false for an encoder at every shape, which the vectors checks confirm.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = openvino.convert_model(last_hidden_state(sentence_transformer[0].auto_model), example_input=dict(
            zip(INPUTS, (ids, ids, torch.zeros_like(ids)))))
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=folder.parent))
    try:
        openvino.save_model(converted, staging / "model.xml", compress_to_fp16=False)
        try:
            staging.rename(folder)
        except OSError:  # another process got there first: its copy is the same model
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return xml


KEEP_CONVERSIONS = 3  # converted models (90 MB each for the default) kept in the cache, the last used


def prune(cache_dir: Path, keep: Path) -> None:
    """Delete all but the KEEP_CONVERSIONS most recently used conversions (a new model or openvino
    version converts anew), with their choice records. A process already using one has it in memory."""
    folders = sorted((f for f in cache_dir.iterdir() if f.is_dir() and not f.name.startswith(".")),
                     key=lambda f: (f == keep, f.stat().st_mtime), reverse=True)
    for old in folders[KEEP_CONVERSIONS:]:
        shutil.rmtree(old, ignore_errors=True)
        for record in cache_dir.glob(f"{old.name}-choice-*.json"):
            record.unlink(missing_ok=True)


def compile_on_cpu(model_path, precision: str | None = None, threads: int | None = None):
    """A model file (OpenVINO's .xml or an .onnx) compiled for this CPU.

    Threads not pinned to cores: the file reader and the app share those cores, and a pinned thread
    waits for its busy core instead of moving. Ingest of five R manuals, alternating A/B: 13.9-14.6 s
    unpinned against 14.5-15.6 s pinned (OpenVINO's default), pure embedding the same."""
    import openvino

    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads or usable_cpus(),
              "ENABLE_CPU_PINNING": False}
    if precision in _HINTS:
        config["INFERENCE_PRECISION_HINT"] = _HINTS[precision]
    return openvino.Core().compile_model(str(model_path), "CPU", config)


class OpenVINOEncoder:
    """encode(texts) -> unit vectors, like SentenceTransformer.encode(normalize_embeddings=True)."""

    def __init__(self, xml: Path, tokenizer_file: str, max_tokens: int, precision: str = "auto"):
        from tokenizers import Tokenizer

        self.xml = xml  # the converted model it runs
        self.compiled = compile_on_cpu(xml, precision)
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.tokenizer = Tokenizer.from_file(tokenizer_file)
        self.pad_id = (self.tokenizer.padding or {}).get("pad_id", 0)
        self.tokenizer.no_padding()  # padded per batch below; the shipped tokenizer.json pads to 128
        self.tokenizer.enable_truncation(max_tokens)

    def encode(self, texts: list[str], batch_size: int = 32, pad_to: int = 1):
        """Unit vectors of texts, in their order."""
        import numpy as np

        request = self.compiled.create_infer_request()  # one per call: the app's threads share the model
        out = np.zeros((len(texts), self.compiled.output(0).get_partial_shape()[2].get_length()), dtype="float32")
        for rows, feed in batches(self.tokenizer, texts, batch_size, pad_to, self.pad_id):
            out[rows] = mean_pooled(request.infer(feed)[self.compiled.output(0)], feed["attention_mask"])
        return out


def batches(tokenizer, texts: list[str], batch_size: int, pad_to: int = 1, pad_id: int = 0):
    """(rows of `texts`, model inputs) per batch: texts grouped by token count (so little padding is
    computed), each batch padded to a multiple of `pad_to`. `tokenizer` truncates and does not pad."""
    import numpy as np

    encodings = tokenizer.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = -(-max(len(encodings[i].ids) for i in rows) // pad_to) * pad_to
        ids = np.full((len(rows), width), pad_id, dtype="int64")
        mask = np.zeros_like(ids)
        for row, i in enumerate(rows):
            n = len(encodings[i].ids)
            ids[row, :n], mask[row, :n] = encodings[i].ids, 1
        yield rows, dict(zip(INPUTS, (ids, mask, np.zeros_like(ids))))


def mean_pooled(hidden, mask):
    """Token states averaged over the mask and scaled to unit length, as sentence-transformers does."""
    import numpy as np

    weights = mask[..., None].astype("float32")
    pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
