"""The model servers Hearth can start, one module per engine, each with the same few names:

    NAME            the engine's name in settings and in llm.json
    command(settings, port) -> (argv, extra environment, the model name it serves)
    CLIENT_OPTIONS  extra request fields for its OpenAI-compatible API
    CONTEXT_TOKENS  most passage tokens worth sending it while its prompt speed is not measured
                    (None: all that fit its context); measured, rag/retrieval.budget_for sizes them
    READ_TOKENS     most passage tokens one attempt gives the engine's default model, however fast the
                    machine (None: no such limit)

llm_server.py starts, watches and stops whichever one is picked; answers reach it only through its
OpenAI-compatible API. A remote server (HEARTH_LLM_URL) has no module: the defaults apply.
"""

from __future__ import annotations

import shutil
import subprocess
from types import ModuleType

from . import llamacpp, vllm

ENGINES: dict[str, ModuleType] = {llamacpp.NAME: llamacpp, vllm.NAME: vllm}


def get(name: str) -> ModuleType | None:
    return ENGINES.get(name)


def has_nvidia_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def pick(setting: str) -> ModuleType:
    """The engine HEARTH_LLM_ENGINE names; auto: vLLM with an NVIDIA GPU, else llama.cpp."""
    from ingest.errors import ServerError

    if setting in ENGINES:
        return ENGINES[setting]
    if setting != "auto":
        raise ServerError(f"unknown engine {setting!r}: use auto, {', '.join(ENGINES)}")
    return vllm if has_nvidia_gpu() else llamacpp
