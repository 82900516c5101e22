"""vLLM's OpenAI-compatible server: its CUDA build on an NVIDIA GPU (any model, several GPUs with
HEARTH_VLLM_ARGS), its CPU build elsewhere (tested with SmolLM2-135M-Instruct)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ingest.settings import PROJECT, Settings

NAME = "vllm"
DEFAULT_MODEL = "smollm2-135m-instruct"  # the CPU build's test model (bf16 safetensors folder)
CLIENT_OPTIONS: dict = {}
CONTEXT_TOKENS = None
READ_TOKENS = None  # the models vLLM serves on a GPU read long prompts: the first-token wait decides


def command(settings: Settings, port: int) -> tuple[list[str], dict, str]:
    from . import has_nvidia_gpu

    model = settings.llm_model or str(settings.models_dir / DEFAULT_MODEL)
    python = PROJECT / ".venv-llm" / "bin" / "python"
    name = Path(model).name if Path(model).exists() else model
    # `vllm serve` trips over the CPU package's name; the module entry point works for both builds.
    argv = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", model,
            "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", str(settings.llm_context)]
    env: dict[str, str] = {}
    if not has_nvidia_gpu():
        argv.append("--enforce-eager")  # starts in ~30 s on CPU instead of ~90 s compiling
        env.update(VLLM_CPU_OMP_THREADS_BIND=f"0-{(os.cpu_count() or 2) - 1}", VLLM_CPU_KVCACHE_SPACE="1")
    argv += shlex.split(settings.vllm_args)
    env.update(VLLM_CACHE_ROOT=str(settings.home / "vllm-cache"), VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
    # No model hub unless the user explicitly allows it (HF_HUB_OFFLINE=0 to let vLLM download a model).
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env[var] = os.environ.get(var, "1")
    return argv, env, name
