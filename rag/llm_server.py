"""The local model server Hearth starts and looks after: llama.cpp (CPU) or vLLM (GPU), each
described by its module in engines/.

Both speak the OpenAI API, which is the only way Hearth talks to a model; with HEARTH_LLM_URL set,
Hearth uses that server and manages nothing. State lives in <home>/llm.json (pid, the process's start
time, port, engine, model, its measured prompt speed), replaced whole (write, fsync, rename) and only
under <home>/llm.lock, which start() holds from its check to its write: two app sessions pressing Start
get one server. A pid is trusted only while /proc says the process it names started when ours did, so
stop() never signals a stranger that inherited the number. The server's output goes to
<home>/logs/llm-<engine>.log.

Once a managed server first answers, its prompt-processing speed is measured (measure_prompt_speed:
two one-token requests with a ~200-token prompt) and saved with it; rag/retrieval.budget_for sizes the
passages from it. A remote server (HEARTH_LLM_URL) is measured once per process, kept in memory.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from ingest.errors import ServerError
from ingest.settings import Settings, secure_home

from . import engines



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
    proc_start: int | None = None  # the process's start time (clock ticks since boot, /proc/PID/stat)
    # Prompt tokens it reads per second, measured once when it first answered (measure_prompt_speed);
    # None: not measured (yet), or the measurement failed (measured_at set): the engine's defaults apply.
    prompt_tokens_per_s: float | None = None
    measured_at: float | None = None


def _state_file(settings: Settings) -> Path:
    return settings.home / "llm.json"


@contextmanager
def _state_lock(settings: Settings):
    """Held while llm.json is checked and changed (flock: released if the holder dies)."""
    secure_home(settings.home)  # llm.json and the server's log (it may hold prompts) are the user's alone
    fd = os.open(settings.home / "llm.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_state(settings: Settings, info: ServerInfo):
    path = _state_file(settings)
    tmp = path.with_name(f".llm.json.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(asdict(info), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_state(settings: Settings) -> ServerInfo | None:
    """The saved server, or None when there is none. A file that is not a server's state is left
    where it is (deleting it could orphan a running server): ServerError says what to do."""
    path = _state_file(settings)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return ServerInfo(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise ServerError(f"{path} is not readable ({type(exc).__name__}): if no Hearth model server is "
                          "running, delete it and start again") from None


def process_start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot); None if there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # A zombie has exited; a process flagged PF_EXITING (0x4) is being torn down by a kill and has
    # already closed its sockets, so a client sees it gone before it becomes a zombie.
    return None if fields[0] in "ZX" or int(fields[6]) & 0x4 else int(fields[19])


def _ours(info: ServerInfo) -> bool:
    """The saved pid is still the process Hearth started (not a later one given the same number)."""
    if info.pid is None:
        return False
    started = process_start_time(info.pid)
    if started is None:
        return False
    if info.proc_start is not None:
        return started == info.proc_start
    try:  # saved before start times were: the command line must be the engine's
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes()
    except OSError:
        return False
    return (b"llama_cpp.server" if info.engine == "llamacpp" else b"vllm") in cmdline


def _forget(settings: Settings, info: ServerInfo):
    """Remove llm.json if it still describes `info` (another process may have started a new one)."""
    with _state_lock(settings):
        try:
            saved = _read_state(settings)
        except ServerError:
            return
        if saved is not None and (saved.pid, saved.proc_start) == (info.pid, info.proc_start):
            _state_file(settings).unlink(missing_ok=True)


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
            # Started without waiting (the app, `hearth serve`): measured beside, not in the way of, this call.
            threading.Thread(target=measure_managed, args=(settings, info), name="hearth-prompt-speed").start()
        return state, models
    if state == "slow" and (not info.managed or info.ready_at is not None):
        return "busy", None
    if info.managed and _ours(info):
        return "starting", None  # vLLM holds its port while it loads, so a slow reply can mean starting too
    return "down", None


def _mark_ready(settings: Settings, info: ServerInfo):
    info.ready_at = time.time()
    with _state_lock(settings):
        try:
            saved = _read_state(settings)
        except ServerError:
            return
        if saved is not None and saved.pid == info.pid:
            saved.ready_at = info.ready_at
            _write_state(settings, saved)


# --- prompt speed --------------------------------------------------------------------------------
# Ordinary English (~200 tokens with the nonce in front): what a passage reads like to a tokenizer.
SPEED_TEXT = (
    "The boiler in the basement was serviced last autumn by a company from the north side of town, and the "
    "engineer left a note saying that the pressure should be checked once a month during the winter. "
    "Receipts for the work, like every other household bill, are kept in the grey folder on the second "
    "shelf of the study, sorted by year. The insurance papers for the house and the car are in the same "
    "folder, behind the receipts, together with the warranty for the washing machine, which runs out in "
    "March. The garden needs more attention in spring than in any other season: the tomatoes are planted "
    "against the south wall, where they get six hours of sun a day, and they are watered deeply twice a "
    "week rather than a little every evening. The apple tree near the fence is pruned in late winter, "
    "before the buds open, and the cuttings go to the green bin that is collected every other Tuesday."
)
# The faster one counts: the first takes the cold start (weights paged in, caches). Two of ~200 tokens
# gave the figure two of ~400 did (78-80 tokens/s, medians of 10 fresh servers) in half the wait.
SPEED_REQUESTS = 2
_remote_speeds: dict[tuple[str, str], tuple[float | None, float]] = {}  # (url, model) -> (speed, when)
REMOTE_RETRY_S = 60.0  # a remote server that could not be measured is tried again after this long
REMOTE_TIMEOUT_S = 30.0  # per request: a remote server slower than ~7 prompt tokens/s is not measured


def _post_json(url: str, body: dict, api_key: str, timeout: float) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if "json" not in response.headers.get("Content-Type", ""):  # e.g. a stream or an HTML page: not read
            raise ValueError(f"the reply is {response.headers.get('Content-Type')!r}, not JSON")
        return json.load(response)


def _timed_prompt(url: str, model: str, api_key: str, timeout: float, text: str = SPEED_TEXT) -> tuple[int, float]:
    """(prompt tokens, seconds) of one request that generates one token. The prompt starts with a new
    random nonce, so no server can reuse a cached prefix of an earlier one (llama.cpp does). It goes to
    /v1/completions as it is; a server without that endpoint gets it through /v1/chat/completions.
    `text`: another length for bench/prompt_speed.py."""
    text = f"{secrets.token_hex(8)} {text}"

    def timed(path: str, body: dict) -> tuple[int, float]:
        started = time.perf_counter()
        reply = _post_json(url.rstrip("/") + path, {"model": model or "local", "max_tokens": 1, "temperature": 0.0,
                                                    **body}, api_key, timeout)
        return int(reply["usage"]["prompt_tokens"]), time.perf_counter() - started

    try:
        return timed("/completions", {"prompt": text})
    except urllib.error.HTTPError:  # a chat-only server
        return timed("/chat/completions", {"messages": [{"role": "user", "content": text}]})


def measure_prompt_speed(url: str, model: str = "", api_key: str = "", timeout: float = 60.0) -> float | None:
    """Prompt tokens per second the server at `url` (ending in /v1) reads: SPEED_REQUESTS one-token
    requests of ~200 tokens, the fastest counted (its time includes the HTTP round trip and one token,
    so this is a little under the true speed). None when it cannot be measured: a server that is down,
    slow past `timeout`, or whose reply carries no usage."""
    best = None
    for _ in range(SPEED_REQUESTS):
        try:
            tokens, seconds = _timed_prompt(url, model, api_key, timeout)
        except Exception:  # down, timed out, not JSON, no usage, a cut connection: whatever it is, no speed
            return None
        if tokens > 0 and seconds > 0:
            best = max(best or 0.0, tokens / seconds)
    return best


def measure_managed(settings: Settings, info: ServerInfo, on_wait=None) -> float | None:
    """Measure Hearth's own server once, when it has become ready, and save the speed in llm.json (a
    failure is saved too, as measured_at with no speed: the server is used with the engine's defaults).
    One process measures at a time (two at once would each see half the CPU); one that finds another
    measuring, or the server measured already, leaves it. Never raises: a measurement is no reason
    not to answer."""
    if not info.managed or info.measured_at is not None:
        return info.prompt_tokens_per_s
    try:
        fd = os.open(settings.home / "llm-speed.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another process is measuring it
        os.close(fd)
        return None
    try:
        with _state_lock(settings):
            saved = _read_state(settings)
        if saved is None or (saved.pid, saved.proc_start) != (info.pid, info.proc_start):
            return None  # stopped, or replaced by another server
        if saved.measured_at is not None:
            info.prompt_tokens_per_s, info.measured_at = saved.prompt_tokens_per_s, saved.measured_at
            return info.prompt_tokens_per_s
        if on_wait:
            on_wait("measuring its prompt speed…")
        speed = measure_prompt_speed(info.url, info.model, settings.llm_api_key, min(settings.llm_timeout, 60.0))
        info.prompt_tokens_per_s, info.measured_at = (round(speed, 1) if speed else None), time.time()
        with _state_lock(settings):
            saved = _read_state(settings)
            if saved is not None and (saved.pid, saved.proc_start) == (info.pid, info.proc_start):
                saved.prompt_tokens_per_s, saved.measured_at = info.prompt_tokens_per_s, info.measured_at
                _write_state(settings, saved)
        return info.prompt_tokens_per_s
    except (OSError, ServerError):
        return None
    finally:
        os.close(fd)  # releases the lock


def remote_prompt_speed(settings: Settings, url: str, model: str) -> tuple[float | None, float | None]:
    """(prompt tokens/s, when measured) of a server Hearth does not manage (HEARTH_LLM_URL): measured
    the first time it is asked for in this process, then kept in memory. (None, when) after a failed
    try, which is tried again after REMOTE_RETRY_S."""
    key = (url, model)
    known = _remote_speeds.get(key)
    if known is not None and (known[0] is not None or time.time() - known[1] < REMOTE_RETRY_S):
        return known
    speed = measure_prompt_speed(url, model, settings.llm_api_key, min(settings.llm_timeout, REMOTE_TIMEOUT_S))
    _remote_speeds[key] = (round(speed, 1) if speed else None, time.time())
    return _remote_speeds[key]


def with_prompt_speed(settings: Settings, info: ServerInfo | None) -> ServerInfo | None:
    """`info` with its prompt speed: a managed server's was measured when it started (llm.json); a
    remote one's is measured now if this process has not yet (remote_prompt_speed). Called where the
    speed is needed (a question's passage budget, the status shown), not wherever a server is looked up."""
    if info is not None and not info.managed and info.prompt_tokens_per_s is None:
        info.prompt_tokens_per_s, info.measured_at = remote_prompt_speed(settings, info.url, info.model)
    return info


def is_local(url: str) -> bool:
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_url(url: str, settings: Settings) -> str:
    """A model server URL typed in the app: loopback, HEARTH_LLM_URL itself, or a host the
    configuration allows (HEARTH_LLM_ALLOWED_HOSTS). Anything else is refused: the question and
    every passage would go there."""
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    allowed = {h.strip().lower() for h in settings.llm_allowed_hosts.split(",") if h.strip()}
    configured = urlsplit(settings.llm_url if "://" in settings.llm_url else f"http://{settings.llm_url}").hostname
    if not url or is_local(url) or host.lower() in allowed or (settings.llm_url and host == configured):
        return url
    raise ServerError(f"{host or url} is not on this machine: questions and passages would be sent there. "
                      "Add it to HEARTH_LLM_ALLOWED_HOSTS to allow it.")


def current(settings: Settings) -> ServerInfo | None:
    """The server to talk to: HEARTH_LLM_URL if set, else the managed one if its process lives."""
    if settings.llm_url:
        url = settings.llm_url.rstrip("/")
        url = url if url.endswith("/v1") else url + "/v1"
        models = healthy(url, settings.llm_api_key) or []
        info = ServerInfo("remote", settings.llm_model or (models[0] if models else ""), url, managed=False)
        info.prompt_tokens_per_s, info.measured_at = _remote_speeds.get((url, info.model), (None, None))
        return info
    try:
        info = _read_state(settings)
    except ServerError:
        return None  # start() says why; nothing is deleted
    if info is not None and not _ours(info):
        _forget(settings, info)  # stale: the server died, or the machine restarted
        return None
    return info


@dataclass
class ModelChoice:
    engine: str  # llamacpp or vllm (a server Hearth starts), or remote (HEARTH_LLM_URL's)
    name: str  # what answers show as the model
    model: str  # what HEARTH_LLM_MODEL takes: a GGUF file, a model folder, or the remote server's id

    def to_json(self) -> dict:
        return {"engine": self.engine, "name": self.name, "model": self.model}


def available_models(settings: Settings) -> list[ModelChoice]:
    """What can answer: the remote server's /v1/models when HEARTH_LLM_URL is set; otherwise the GGUF
    files (llama.cpp) and model folders with a config.json (vLLM) in the models folder, and
    HEARTH_LLM_MODEL if it lies elsewhere."""
    if settings.llm_url:
        info = current(settings)
        return [ModelChoice("remote", m, m) for m in (healthy(info.url, settings.llm_api_key) or [])] if info else []
    folder = Path(settings.models_dir).expanduser()
    found = sorted(folder.glob("*.gguf")) + sorted(p for p in folder.iterdir() if (p / "config.json").is_file()) \
        if folder.is_dir() else []
    if settings.llm_model and Path(settings.llm_model).expanduser().exists():
        found.append(Path(settings.llm_model).expanduser())
    choices = {}
    for path in found:
        engine = "llamacpp" if path.suffix == ".gguf" else "vllm"
        choices.setdefault(str(path.absolute()), ModelChoice(engine, path.stem if engine == "llamacpp" else path.name,
                                                              str(path.absolute())))
    return list(choices.values())


def switch(settings: Settings, choice: ModelChoice, wait: bool = True, on_wait=None) -> ServerInfo | None:
    """Answer with `choice` from now on: Hearth's own server is stopped and started again with it (for
    every session of this HEARTH_HOME). A remote model is chosen by name per request: None here."""
    if choice.engine == "remote":
        return None
    stop(settings)
    return start(replace(settings, llm_engine=choice.engine, llm_model=choice.model), wait=wait, on_wait=on_wait)


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


def start(settings: Settings, engine: str | None = None, wait: bool = True, on_wait=None) -> ServerInfo:
    """Start the local server (or return the running one) and wait until it answers."""
    proc = None
    with _state_lock(settings):
        info = _read_state(settings)  # unreadable: ServerError, nothing started beside it
        if info is None or not _ours(info):
            info, proc = _spawn(settings, engines.pick(engine or settings.llm_engine))
            _write_state(settings, info)
    if wait:  # outside the lock: waiting marks the server ready, which takes the lock
        wait_until_ready(settings, info, proc, on_wait)
    return info


def reserve_port(preferred: int) -> tuple[int, int]:
    """A free port for a model server, and the descriptor of a lock on it (tempdir/hearth-ports/PORT).
    A server loads its model for seconds before it binds; two Hearth homes starting servers at once
    both found the preferred port free, and the loser's health check was answered by the winner.
    The lock goes to the server process (pass_fds), so the port stays reserved while it lives."""
    folder = Path(tempfile.gettempdir()) / "hearth-ports"
    folder.mkdir(exist_ok=True)
    for port in [preferred + i for i in range(32)] + [0] * 8:
        if port == 0:
            port = free_port(0)
        try:
            fd = os.open(folder / str(port), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:  # another user's reservation file: treat the port as theirs
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return port, fd
            except OSError:
                os.close(fd)
    raise ServerError("no free port for the model server")


def _spawn(settings: Settings, engine) -> tuple[ServerInfo, subprocess.Popen]:
    port, reservation = reserve_port(settings.llm_port)
    try:
        return _run(settings, engine, port, reservation)
    finally:
        os.close(reservation)  # the server's copy keeps the lock


def _run(settings: Settings, engine, port: int, reservation: int) -> tuple[ServerInfo, subprocess.Popen]:
    argv, extra_env, name = engine.command(settings, port)
    if not Path(argv[0]).exists():
        raise ServerError(f"{engine.NAME} is not installed ({argv[0]} missing): run `make setup`")
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"llm-{engine.NAME}.log"
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **extra_env}, start_new_session=True, pass_fds=(reservation,))
    info = ServerInfo(engine.NAME, name, f"http://127.0.0.1:{port}/v1", proc.pid, port, str(log_path), time.time(),
                      proc_start=process_start_time(proc.pid))
    return info, proc


def wait_until_ready(settings: Settings, info: ServerInfo, proc=None, on_wait=None):
    deadline = time.monotonic() + settings.llm_start_timeout
    told = False
    while time.monotonic() < deadline:
        if healthy(info.url, settings.llm_api_key):  # vLLM started with --api-key checks /v1/models too
            _mark_ready(settings, info)
            measure_managed(settings, info, on_wait)  # once per server; a failure leaves the defaults
            return
        exited = proc.poll() is not None if proc is not None else not _ours(info)
        if exited:
            _forget(settings, info)
            raise ServerError(f"the {info.engine} server exited while starting; its log ends:\n{tail(info.log, 15)}")
        if on_wait and not told:
            on_wait(f"starting {info.engine} ({info.model}) on port {info.port}…")
            told = True
        time.sleep(0.5)
    stop(settings)
    raise ServerError(f"the {info.engine} server did not answer within {settings.llm_start_timeout:.0f} s")


def stop(settings: Settings) -> bool:
    info = current(settings)  # None unless the saved pid is still the process Hearth started
    if info is None or not info.managed:
        return False
    _signal_group(info, signal.SIGTERM)  # the whole group: vLLM runs worker processes
    for _ in range(100):
        if not _ours(info):
            break
        time.sleep(0.1)
    else:
        _signal_group(info, signal.SIGKILL)
    _forget(settings, info)
    return True


def _signal_group(info: ServerInfo, sig: int):
    if _ours(info):  # checked again just before: the pid could have been reused while we waited
        try:
            os.killpg(info.pid, sig)
        except ProcessLookupError:
            pass


def tail(log: str | None, lines: int = 40) -> str:
    if not log or not Path(log).is_file():
        return ""
    with open(log, "rb") as fh:
        fh.seek(max(0, os.path.getsize(log) - 64 * 1024))
        return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
