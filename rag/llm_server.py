"""The local model server Hearth starts and looks after: llama.cpp (CPU) or vLLM (GPU).

Both speak the OpenAI API, which is the only way Hearth talks to a model; with HEARTH_LLM_URL set,
Hearth uses that server and manages nothing. State lives in <home>/llm.json (pid, port, engine,
model) and the server's output in <home>/logs/llm-<engine>.log.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ingest.settings import PROJECT, Settings

ENGINES = ("llamacpp", "vllm")
LLAMACPP_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
VLLM_TEST_MODEL = "smollm2-135m-instruct"  # the CPU build's test model (bf16 safetensors folder)


class ServerError(Exception):
    pass


@dataclass
class ServerInfo:
    engine: str
    model: str  # the name the server answers to
    url: str  # base URL ending in /v1
    pid: int | None = None
    port: int | None = None
    log: str | None = None
    started_at: float | None = None
    managed: bool = True
    ready_at: float | None = None  # when it first answered: after that, a slow reply means busy, not starting


def has_nvidia_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def pick_engine(settings: Settings) -> str:
    if settings.llm_engine in ENGINES:
        return settings.llm_engine
    if settings.llm_engine != "auto":
        raise ServerError(f"unknown engine {settings.llm_engine!r}: use auto, llamacpp or vllm")
    return "vllm" if has_nvidia_gpu() else "llamacpp"


def _state_file(settings: Settings) -> Path:
    return settings.home / "llm.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def probe(url: str, api_key: str = "", timeout: float = 2.0) -> tuple[str, list[str] | None]:
    """("answering", the model names it offers), ("slow", None): connected but no reply in time, or
    ("down", None). llama.cpp's server answers /v1/models only between answers (it takes the model's
    lock), so a server busy with another user's question is slow, not down."""
    request = urllib.request.Request(url.rstrip("/") + "/models")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "answering", [m.get("id", "") for m in json.load(response).get("data", [])]
    except urllib.error.URLError as exc:
        return ("slow" if isinstance(exc.reason, TimeoutError) else "down"), None
    except TimeoutError:
        return "slow", None
    except (OSError, ValueError):
        return "down", None


def healthy(url: str, api_key: str = "", timeout: float = 2.0) -> list[str] | None:
    """The model names the server offers, or None if it does not answer /v1/models."""
    return probe(url, api_key, timeout)[1]


def status(settings: Settings, info: ServerInfo, timeout: float = 2.0) -> tuple[str, list[str] | None]:
    """answering, busy (up, but every slot is taken by other questions: a new one waits its turn),
    starting (a managed server that has not answered yet) or down; with the model names when answering."""
    state, models = probe(info.url, settings.llm_api_key, timeout)
    if state == "answering":
        if info.managed and info.ready_at is None:
            _mark_ready(settings, info)
        return state, models
    if state == "slow" and (not info.managed or info.ready_at is not None):
        return "busy", None
    if info.managed and info.pid is not None and _alive(info.pid):
        return "starting", None  # vLLM holds its port while it loads, so a slow reply can mean starting too
    return "down", None


def _mark_ready(settings: Settings, info: ServerInfo):
    info.ready_at = time.time()
    state = _state_file(settings)
    try:
        saved = json.loads(state.read_text())
        if saved.get("pid") == info.pid:
            state.write_text(json.dumps({**saved, "ready_at": info.ready_at}))
    except (OSError, ValueError):
        pass


def current(settings: Settings) -> ServerInfo | None:
    """The server to talk to: HEARTH_LLM_URL if set, else the managed one if its process lives."""
    if settings.llm_url:
        url = settings.llm_url.rstrip("/")
        url = url if url.endswith("/v1") else url + "/v1"
        models = healthy(url, settings.llm_api_key) or []
        return ServerInfo("remote", settings.llm_model or (models[0] if models else ""), url, managed=False)
    state = _state_file(settings)
    if not state.is_file():
        return None
    try:
        info = ServerInfo(**json.loads(state.read_text()))
    except (ValueError, TypeError):
        state.unlink(missing_ok=True)
        return None
    if info.pid is None or not _alive(info.pid):
        state.unlink(missing_ok=True)  # stale: the server died or the machine restarted
        return None
    return info


def free_port(preferred: int) -> int:
    """`preferred` if nothing listens there on 127.0.0.1, else any free port."""
    for port in [preferred, 0]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
            try:
                s.bind(("127.0.0.1", port))
                return s.getsockname()[1]
            except OSError:
                continue
    raise ServerError("no free port")


def _command(engine: str, settings: Settings, port: int) -> tuple[list[str], dict, str]:
    """(argv, extra environment, served model name) for the engine."""
    env: dict[str, str] = {}
    if engine == "llamacpp":
        model = Path(settings.llm_model or settings.models_dir / LLAMACPP_MODEL).expanduser()
        if not model.is_file():
            raise ServerError(f"model file {model} not found: run `make setup` (or set HEARTH_LLM_MODEL to a GGUF file)")
        python = PROJECT / ".venv-llama" / "bin" / "python"
        name = model.stem
        argv = [str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", name,
                "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(settings.llm_context),
                "--n_threads", str(os.cpu_count() or 2), "--n_batch", "512",
                # Its default cuts a streaming answer short as soon as another request waits: with
                # two users, each question ended the other's answer (bench/many_users.py: 7 of 8 cut).
                "--interrupt_requests", "False"]
        return argv, env, name
    model = settings.llm_model or str(settings.models_dir / VLLM_TEST_MODEL)
    python = PROJECT / ".venv-llm" / "bin" / "python"
    name = Path(model).name if Path(model).exists() else model
    # `vllm serve` trips over the CPU package's name; the module entry point works for both builds.
    argv = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", model,
            "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", str(settings.llm_context)]
    if not has_nvidia_gpu():
        argv.append("--enforce-eager")  # starts in ~30 s on CPU instead of ~90 s compiling
        env.update(VLLM_CPU_OMP_THREADS_BIND=f"0-{(os.cpu_count() or 2) - 1}", VLLM_CPU_KVCACHE_SPACE="1")
    argv += shlex.split(settings.vllm_args)
    env.update(VLLM_CACHE_ROOT=str(settings.home / "vllm-cache"), VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
    # No model hub unless the user explicitly allows it (HF_HUB_OFFLINE=0 to let vLLM download a model).
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env[var] = os.environ.get(var, "1")
    return argv, env, name


def start(settings: Settings, engine: str | None = None, wait: bool = True, on_wait=None) -> ServerInfo:
    """Start the local server (or return the running one) and wait until it answers."""
    running = current(settings)
    if running is not None:
        return running
    engine = engine or pick_engine(settings)
    port = free_port(settings.llm_port)
    argv, extra_env, name = _command(engine, settings, port)
    if not Path(argv[0]).exists():
        raise ServerError(f"{engine} is not installed ({argv[0]} missing): run `make setup`")
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"llm-{engine}.log"
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **extra_env}, start_new_session=True)
    info = ServerInfo(engine, name, f"http://127.0.0.1:{port}/v1", proc.pid, port, str(log_path), time.time())
    _state_file(settings).write_text(json.dumps(asdict(info)))
    if wait:
        wait_until_ready(settings, info, proc, on_wait)
    return info


def wait_until_ready(settings: Settings, info: ServerInfo, proc=None, on_wait=None):
    deadline = time.monotonic() + settings.llm_start_timeout
    told = False
    while time.monotonic() < deadline:
        if healthy(info.url, settings.llm_api_key):  # vLLM started with --api-key checks /v1/models too
            _mark_ready(settings, info)
            return
        exited = proc.poll() is not None if proc is not None else not _alive(info.pid)
        if exited:
            _state_file(settings).unlink(missing_ok=True)
            raise ServerError(f"the {info.engine} server exited while starting; its log ends:\n{tail(info.log, 15)}")
        if on_wait and not told:
            on_wait(f"starting {info.engine} ({info.model}) on port {info.port}…")
            told = True
        time.sleep(0.5)
    stop(settings)
    raise ServerError(f"the {info.engine} server did not answer within {settings.llm_start_timeout:.0f} s")


def stop(settings: Settings) -> bool:
    info = current(settings)
    if info is None or not info.managed:
        return False
    try:
        os.killpg(info.pid, signal.SIGTERM)  # the whole group: vLLM runs worker processes
    except ProcessLookupError:
        pass
    for _ in range(100):
        if not _alive(info.pid):
            break
        time.sleep(0.1)
    else:
        try:
            os.killpg(info.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _state_file(settings).unlink(missing_ok=True)
    return True


def tail(log: str | None, lines: int = 40) -> str:
    if not log or not Path(log).is_file():
        return ""
    with open(log, "rb") as fh:
        fh.seek(max(0, os.path.getsize(log) - 64 * 1024))
        return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
