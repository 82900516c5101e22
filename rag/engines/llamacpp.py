"""llama.cpp's server (llama-cpp-python, built by `make setup` for this CPU) with a GGUF model; by
default Qwen2.5-Coder-1.5B-Instruct in Q4_K_M."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import ServerError
from ingest.settings import PROJECT, Settings, usable_cpus

NAME = "llamacpp"
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
CLIENT_OPTIONS = {"repeat_penalty": 1.0}  # 1.1 (its default) measured worse
# llama.cpp on a laptop-class CPU reads ~100 prompt tokens/s, so the passages are most of the wait
# for the first token. bench/first_token.py measures the wait and how often the gold answer is still
# in what is sent, per budget, on the R FAQ dev set. 300, not 450: on 42 questions of the answer dev
# set (bench/answers.py, AMD EPYC 2 cores) first token 6.66 -> 5.22 s, correct 57.1 -> 54.8 % (one
# question), wrong answers caught 89 -> 95 %, right sentences flagged 43.5 -> 37.7 % (docs/decisions.md).
# Used only until the server's prompt speed is measured (or when that fails): the budget then follows
# the measured speed and HEARTH_FIRST_TOKEN_S (rag/retrieval.budget_for), ~250 at this machine's 88 tokens/s.
CONTEXT_TOKENS = 300
# The most passage tokens one attempt gives the model it ships, however fast the machine: with five
# passages Qwen2.5-Coder-1.5B reads none of them closely (at 1,200 tokens fewer answers were right than
# at ~300, on both splits: docs/decisions.md, issue 39). A faster machine gets its first token sooner
# and its second attempt (the next passages) sooner. Not applied to another model (HEARTH_LLM_MODEL).
READ_TOKENS = 300


def command(settings: Settings, port: int) -> tuple[list[str], dict, str]:
    model = Path(settings.llm_model or settings.models_dir / DEFAULT_MODEL).expanduser()
    if not model.is_file():
        raise ServerError(f"model file {model} not found: run `make setup` (or set HEARTH_LLM_MODEL to a GGUF file)")
    python = PROJECT / ".venv-llama" / "bin" / "python"
    argv = [str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", model.stem,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(settings.llm_context),
            "--n_threads", str(usable_cpus()), "--n_batch", "512",
            # Its default cuts a streaming answer short as soon as another request waits: with
            # two users, each question ended the other's answer (bench/many_users.py: 7 of 8 cut).
            "--interrupt_requests", "False"]
    return argv, {}, model.stem
