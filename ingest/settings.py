"""Hearth's one settings object.

Values come from, in order of precedence: environment variables `HEARTH_<FIELD>` (upper case),
then a TOML file (`HEARTH_CONFIG`, else `<home>/config.toml` if it exists), then the defaults below.
The CLI and the app both build their settings here, so they always agree.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"  # English: the model of a collection whose documents are mostly English
MULTILINGUAL_MODEL = "multilingual-e5-small"  # ingest/e5_encoder.py: for a collection mostly in other languages
AUTO_MODEL = "auto"
PROJECT = Path(__file__).resolve().parent.parent  # the checkout: `make setup` builds models and engines here


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity (taskset, a container's cpuset), not the machine's
    count, which os.cpu_count() gives: 16 threads on the 2 CPUs a container was given fight each other."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("hearth", appauthor=False))


_secured: set[Path] = set()  # homes this process made private already


def secure_home(home: Path):
    """Make HEARTH_HOME private to its user: the library, its vectors and the chats are read by no one
    else. The folder is made 0700 and everything in it loses group and other access (0644 -> 0600), a
    walk done once per process and home (again only if the folder was loosened since)."""
    home = Path(home)
    try:
        if home in _secured and not os.stat(home).st_mode & 0o077:
            return
    except OSError:
        pass
    home.mkdir(mode=0o700, parents=True, exist_ok=True)  # the mode only holds for the last folder: chmod below
    tighten(home)
    _secured.add(home)


def tighten(folder: Path):
    """Strip group and other access from `folder` and all in it. Links are not followed (what they
    point at is not ours); what cannot be changed (another user's) is left."""
    for parent, _, names in os.walk(folder):
        for path in [parent] + [os.path.join(parent, n) for n in names]:
            try:
                st = os.lstat(path)
                if st.st_mode & 0o077 and not stat.S_ISLNK(st.st_mode):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
            except OSError:
                continue


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home)
    """Where the store, the manifest and logs live (HEARTH_HOME)."""
    collection: str = "default"
    """The workspace used when a command names none (HEARTH_COLLECTION)."""
    embed_model: str = AUTO_MODEL
    """The embedding model of a new collection: auto (all-MiniLM-L6-v2 when its first documents are
    mostly English, else multilingual-e5-small; an existing collection keeps the model it was built
    with), either of those names, or a sentence-transformers model folder. Both ship in PyPI packages."""
    embed_batch_size: int = 32
    embed_precision: str = "auto"
    """auto (fp16 on a GPU; on a CPU bf16 where it does bf16 in hardware, AMX or AVX-512 BF16, else
    fp32), bf16, fp16 or fp32."""
    embed_device: str = "auto"
    """auto (cuda where torch sees an NVIDIA GPU, else cpu), cpu or cuda."""
    embed_backend: str = "auto"
    """What runs the model on a CPU: auto (OpenVINO where, measured once on this CPU, it is faster than
    torch with vectors at cosine >= 0.999 to torch fp32's; else torch), torch or openvino."""
    # Chunk sizes are in the embedding model's own tokens: all-MiniLM-L6-v2 reads at most 256 of
    # them and silently drops the rest, so a chunk must fit (see bench/chunking.py).
    chunk_size: int = 192
    chunk_overlap: int = 24
    max_file_mb: float = 200.0
    """Files larger than this are reported and skipped."""
    max_file_chars: int = 40_000_000
    """Characters of text one file may hold (~20,000 pages); a file with more is reported, not indexed."""
    max_file_chunks: int = 100_000
    """Passages one file may make (~100 MB of text to embed and keep); more is reported, not indexed."""
    parse_timeout: float = 300.0
    """Seconds one file may take to read (in a child process, see ingest/reader.py) before it is stopped."""
    parse_memory_mb: float = 2048.0
    """Memory (resident) the file reader may use; a file needing more is stopped and reported, not
    read. OCR runs on OpenVINO from 2,048 MB, on ONNX Runtime (slower) below."""
    chroma_url: str = ""
    """A Chroma server (http://host:8000) to use instead of the embedded store under HOME; the manifest
    then lives in the server too, so several instances share one library (ingest/catalog.py)."""
    chroma_lease_s: float = 30.0
    """Seconds a Chroma server's writer lease lasts unrenewed: how long others wait after a writer dies."""
    chroma_token: str = ""
    """Sent as "Authorization: Bearer <token>" to the Chroma server (or the proxy in front of it)."""
    library: str = ""
    """The library folder (uploads land here; exports show paths relative to it). Default <home>/library."""

    # --- answering ------------------------------------------------------------------------------
    llm_url: str = ""
    """An OpenAI-compatible server to use instead of the one Hearth manages (e.g. http://gpu-box:8000/v1)."""
    llm_api_key: str = field(default="", repr=False)  # never in a log or a traceback
    """Sent only to HEARTH_LLM_URL (and Hearth's own server), never to a URL typed in the app."""
    llm_allowed_hosts: str = ""
    """Hosts besides this machine that a model server URL typed in the app may name (comma-separated):
    the question and its passages are sent there."""
    llm_engine: str = "auto"
    """Server Hearth starts: auto (vllm with an NVIDIA GPU, else llamacpp), llamacpp or vllm."""
    llm_model: str = ""
    """GGUF file (llamacpp) or model folder/name (vllm); empty = the model `make setup` built."""
    llm_port: int = 8765
    llm_context: int = 4096
    llm_timeout: float = 120.0
    """Seconds to wait for the server's next token before giving up on an answer."""
    llm_start_timeout: float = 600.0
    vllm_args: str = ""
    """Extra `vllm serve` arguments, e.g. "--tensor-parallel-size 2 --gpu-memory-utilization 0.92"."""
    top_k: int = 5
    retrieval: str = "hybrid"
    """hybrid (dense + BM25, fused), dense or keyword; measured in bench/devset.py + `hearth eval`."""
    rerank_model: str = ""
    """A sentence-transformers CrossEncoder folder to re-order hybrid results; none ships offline, so off."""
    min_score: float = 0.3
    """Passages less similar than this are not shown to the model. Measured on the R manuals: off-topic
    questions top out near 0.22, real ones start near 0.45."""
    answer_max_tokens: int = 400
    verify_claims: bool = True
    """Let the model server judge the sentences whose support the word and embedding check can't
    decide (rag/support.py); after the answer has streamed, a few seconds on a CPU. Off: words alone."""
    retry_unsupported: bool = True
    """An answer whose main claim is unsupported, or that says the passages don't answer, is asked once
    more from the search's next passages, shown after it and labelled so (rag/answer.py RETRY_NOTE)."""
    context_tokens: int = 0
    """Most passage tokens sent to the model; 0 = auto: what the server's measured prompt speed reads
    within first_token_s (rag/retrieval.budget_for), at most what the engine's default model reads
    closely (300 for llama.cpp's Qwen2.5-Coder-1.5B); unmeasured, the engine's CONTEXT_TOKENS (300 for
    llama.cpp on the CPU, bench/first_token.py), else what fits."""
    first_token_s: float = 5.0
    """Seconds a question may wait for the answer's first token: with context_tokens auto, the passages
    are cut to what the model server reads in this time (its prompt speed is measured when it starts)."""
    app_address: str = "127.0.0.1"
    """Where the app listens (`hearth serve`). Anything but this machine (127.0.0.1) lets other machines
    reach your documents: set it only on purpose, e.g. behind a VPN."""
    app_port: int = 8501
    """Port of the app (`make run`, `hearth serve`); the next free one is taken if it is busy."""
    api_address: str = "127.0.0.1"
    """Where `hearth api` and `hearth mcp --http` listen. Anything but this machine needs this set on
    purpose and HEARTH_API_TOKEN too: then other machines can read your documents through them."""
    api_port: int = 8502
    """Port of `hearth api` (the OpenAI-compatible server); `hearth mcp --http` takes the next one."""
    api_token: str = field(default="", repr=False)
    """When set, `hearth api` and `hearth mcp --http` answer only requests carrying it as a Bearer token."""
    models_dir: Path = PROJECT / ".cache" / "models"

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @property
    def store_location(self) -> str:
        return self.chroma_url or str(self.chroma_path)

    @property
    def manifest_path(self) -> Path:
        """The manifest (embedded store), or this instance's keyword cache of a Chroma server's library."""
        if self.chroma_url:
            return self.home / "servers" / (hashlib.sha1(self.chroma_url.encode()).hexdigest()[:12] + ".sqlite3")
        return self.home / "manifest.sqlite3"

    @property
    def keywords_path(self) -> Path:
        """The keyword indexes beside the manifest, one folder per collection (manifest/keywords.py)."""
        return self.manifest_path.with_suffix(".keywords")

    @property
    def lock_path(self) -> Path:
        return self.home / "writer.lock"

    @property
    def library_dir(self) -> Path:
        return Path(self.library).expanduser() if self.library else self.home / "library"


def _coerce(value, to_type: str):
    if to_type == "Path":
        return Path(value).expanduser()
    if to_type == "int":
        return int(value)
    if to_type == "float":
        return float(value)
    if to_type == "bool":  # from a variable it is a string, and "false" must not read as true
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"{value!r} is not a yes/no value (true or false)")
        return word in ("1", "true", "yes", "on")
    return str(value)


def load_settings(**overrides) -> Settings:
    """Settings from the TOML file and `HEARTH_*` variables; keyword overrides win (None = unset)."""
    values: dict = {}
    env_home = os.environ.get("HEARTH_HOME")
    home = Path(env_home).expanduser() if env_home else _default_home()
    config = os.environ.get("HEARTH_CONFIG") or str(home / "config.toml")
    if Path(config).is_file():
        with open(config, "rb") as fh:
            values.update(tomllib.load(fh))
    known = {f.name: str(f.type) for f in fields(Settings)}  # names of types (annotations are strings)
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"{config}: unknown setting(s) {', '.join(sorted(unknown))}")
    for name in known:
        env = os.environ.get(f"HEARTH_{name.upper()}")
        if env is not None and env != "":
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**{k: _coerce(v, known[k]) for k, v in values.items()})
