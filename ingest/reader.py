"""Files are read (loaders.load) in a child process with a time and a memory limit per file.

A hostile or broken file (a PDF bomb, a zip bomb disguised as .docx, a parser bug that loops or
recurses forever) can hang or exhaust a parser library; in a child process that costs one file, not
the ingest, the watcher or the app. One child serves a whole process (started on first use, kept
for the next file, replaced after a kill); it exits by itself when its parent goes away.

The child also cuts the text into chunks when asked (a ChunkSpec): chunking is pure Python, and in
the parent it would hold the GIL that the embedding thread needs between torch's operations
(embedding beside one busy Python thread ran at 31 passages/s, beside a busy process at 79).

Each file is also held to a number of characters and of chunks (a 150 MB text file of one repeated
word is small on disk and endless in the index): the child stops it at the limit with a reason that
names the setting, and the parent takes its chunks only as fast as it embeds them (a bounded queue in
the pipeline; time spent waiting on it is not counted against the file's time limit).

Protocol on the child's stdin/stdout: length-prefixed JSON, one request ({"path", "chunk": ChunkSpec
or null, "limits": {"chars", "chunks"}}) per file, answered by zero or more {"part": [chunk, ...]} (a PDF's pages, a few dozen at a
time, chunked as they are read) and one {"ok": Loaded} or {"error": reason}. JSON, not pickle: the child
handles untrusted input.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict

from . import heap, loaders
from .chunking import Chunk, ChunkSpec
from .loaders import LoadError, Loaded, Section, ocr

_HEADER = struct.Struct("!Q")
STARTUP_S = 120  # importing the parser libraries, on a busy machine
OCR_SHARE = 0.6  # of a file's time limit, OCR may take this much; then it stops and keeps what it read
# The memory limit is on resident memory, looked at every WATCH_S while a file is read; address space,
# which the kernel enforces at once, is limited to that plus ADDRESS_SPACE_EXTRA_MB: OpenVINO (OCR)
# reserves ~3.5 GB of it for ~1.3 GB it uses, and a fast allocation still stops at that ceiling.
WATCH_S = 0.1
ADDRESS_SPACE_EXTRA_MB = 4096


def _readable(fd: int, timeout_s: float) -> bool:
    """poll, not select: select() refuses a descriptor numbered over 1,023, which a long-lived process
    (a test worker, the app) can reach."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(timeout_s * 1000))


def _read_exact(fd: int, n: int, deadline: float | None = None, watch=None) -> bytes:
    """n bytes from fd by `deadline` (TimeoutError); watch() is called every WATCH_S meanwhile."""
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None or watch is not None:
            while True:
                left = float("inf") if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if _readable(fd, min(left, WATCH_S) if watch else left):
                    break
                if watch:
                    watch()
        block = os.read(fd, min(n - len(buf), 1 << 20))
        if not block:
            raise EOFError
        buf += block
    return bytes(buf)


def _send(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int, deadline: float | None = None, watch=None):
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline, watch))
    return json.loads(_read_exact(fd, size, deadline, watch))


def _resident_mb(pid: int) -> float:
    """A process's resident memory (0 where /proc does not tell: then its address-space limit alone holds)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class _TooMuchMemory(Exception):
    """The child went over the memory limit (Reader._watch)."""


class _PassedOn(_TooMuchMemory):
    """... after parts of the file were passed on: it cannot be read again without doubling them."""


_chunkers: dict[ChunkSpec, object] = {}


def _check(limits: dict, chars: int, chunks: int):
    if limits.get("chars") and chars > limits["chars"]:
        raise LoadError(f"more than {limits['chars']:,} characters of text, over the limit: raise "
                        "HEARTH_MAX_FILE_CHARS and re-index it (hearth ingest --force)")
    if limits.get("chunks") and chunks > limits["chunks"]:
        raise LoadError(f"more than {limits['chunks']:,} passages, over the limit: raise HEARTH_MAX_FILE_CHUNKS "
                        "and re-index it (hearth ingest --force)")


def read_one(path: str, spec: ChunkSpec | None = None, send=None, limits: dict | None = None) -> dict:
    """Load one file; every failure becomes a plain reason (runs in the child). Given a ChunkSpec,
    its chunks go to send({"part": [...]}) as pages are read, and the reply holds no text."""
    limits = limits or {}
    try:
        if spec is None:
            loaded = loaders.load(path)
            _check(limits, sum(len(s.text) for s in loaded.sections), 0)
            return {"ok": asdict(loaded)}
        if spec not in _chunkers:
            _chunkers[spec] = spec.chunker()
        numbered, chars = 0, 0

        def part(sections):
            nonlocal numbered, chars
            chars += sum(len(s.text) for s in sections)
            _check(limits, chars, 0)
            chunks = _chunkers[spec].chunk(sections, numbered)
            numbered += len(chunks)
            _check(limits, chars, numbered)
            send({"part": [asdict(c) for c in chunks]})

        loaded = loaders.load(path, part)
        if loaded.sections:
            part(loaded.sections)
        loaded.sections = []
        return {"ok": asdict(loaded)}
    except LoadError as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": "too large or complex to read within the memory limit (HEARTH_PARSE_MEMORY_MB)"}
    except RecursionError:
        return {"error": "too deeply nested to read (objects nested inside objects without end)"}
    except Exception as exc:  # a bug in a parser library must not stop the other files
        return {"error": f"could not be read ({type(exc).__name__}: {str(exc)[:160]})"}


class Reader:
    """The parent's side: `load(path)` returns Loaded or raises LoadError, within the limits."""

    def __init__(self, timeout_s: float, memory_mb: float):
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self._proc: subprocess.Popen | None = None
        self._ready = False  # the child has said "ready"
        self._served = 0  # files the child read whole
        self._lock = threading.Lock()

    def spawn(self) -> None:
        """Start the child now, without waiting: it imports its parsers while the caller goes on."""
        with self._lock:
            self._spawn()

    def _spawn(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._ready, self._served = False, 0
            self._proc = subprocess.Popen(
                # -P: not the working directory first on the path, where a user's own ingest.py or
                # ingest/ would stand in for Hearth's package
                [sys.executable, "-P", "-m", "ingest.reader", str(self.memory_mb), str(self.timeout_s)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env(),
                start_new_session=True)  # a Ctrl-C in the terminal is the parent's to handle

    def _start(self) -> subprocess.Popen:
        self._spawn()
        if not self._ready:
            try:  # the time limit starts once the child has imported its parsers
                _receive(self._proc.stdout.fileno(), time.monotonic() + STARTUP_S)
            except (TimeoutError, EOFError):
                self.close()
                raise LoadError("the file reader process did not start") from None
            self._ready = True
        return self._proc

    def load(self, path: str, chunk: ChunkSpec | None = None, on_chunks=None, max_chars: int = 0,
             max_chunks: int = 0) -> Loaded:
        """The file's sections; or, given a ChunkSpec, its chunks and no sections: passed to
        on_chunks(list) part by part as the child reads the file, else collected in Loaded.chunks.
        Should the file then fail, LoadError comes after the parts already passed on. A file over
        max_chars characters or max_chunks chunks (0: no limit) fails with a reason naming the setting."""
        chunks: list[Chunk] = []
        request = {"path": path, "chunk": asdict(chunk) if chunk else None,
                   "limits": {"chars": max_chars, "chunks": max_chunks}}
        with self._lock:
            while True:
                served = self._served
                try:
                    reply = self._read(request, on_chunks, chunks)
                    break
                except _TooMuchMemory as over:
                    self.close()
                    passed = isinstance(over, _PassedOn)
                if served == 0 or passed:
                    raise LoadError(f"too large or complex to read within the memory limit of {self.memory_mb:g} "
                                    "MB; stopped (HEARTH_PARSE_MEMORY_MB)") from None
                # What earlier files left in the child (OCR's models, a long PDF's heap) counted too: once
                # more in a fresh child, which nothing of this file has reached yet.
        if "error" in reply:
            raise LoadError(reply["error"])
        got = reply["ok"]
        return Loaded([Section(**s) for s in got["sections"]], got["pages"], got["notes"], chunks, got["streamed"])

    def _read(self, request: dict, on_chunks, chunks: list) -> dict:
        """One file through the child: its last reply. _TooMuchMemory over the memory limit before any
        part was passed on, _PassedOn after."""
        proc = self._start()
        deadline = time.monotonic() + self.timeout_s
        passed = False
        try:
            _send(proc.stdin.fileno(), request)
            while "part" in (reply := _receive(proc.stdout.fileno(), deadline, self._watch)):
                part = [Chunk(**c) for c in reply["part"]]
                waited = time.monotonic()
                passed = True
                on_chunks(part) if on_chunks else chunks.extend(part)
                deadline += time.monotonic() - waited  # the embedder catching up is not this file's time
        except _TooMuchMemory:
            if passed:
                raise _PassedOn from None
            raise
        except TimeoutError:
            self.close()
            raise LoadError(f"took longer than {self.timeout_s:g} s to read; stopped "
                            "(HEARTH_PARSE_TIMEOUT sets the limit)") from None
        except (EOFError, BrokenPipeError):
            code = proc.wait()
            self._proc = None
            how = signal.Signals(-code).name if code < 0 and -code in signal.Signals._value2member_map_ else f"exit {code}"
            raise LoadError(f"crashed the file reader ({how}); the file is corrupt or too large to read "
                            f"within {self.memory_mb:g} MB (HEARTH_PARSE_MEMORY_MB)") from None
        except (OSError, ValueError) as exc:  # a garbled reply: start afresh with the next file
            self.close()
            raise LoadError(f"the file reader failed ({type(exc).__name__}: {str(exc)[:120]})") from None
        except BaseException:  # the caller gave up mid-file (on_chunks raised): the child is mid-reply
            self.close()
            raise
        self._served += 1
        return reply

    def _watch(self):
        if self._proc is not None and _resident_mb(self._proc.pid) > self.memory_mb:
            raise _TooMuchMemory

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (benchmarks read its CPU time)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def interrupt(self):
        """End the file being read now (from another thread): its load raises LoadError."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def close(self):
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


_shared: dict[tuple, Reader] = {}
_shared_lock = threading.Lock()


def shared(timeout_s: float, memory_mb: float) -> Reader:
    """One reader per process and limits: the child's start-up (~0.3 s) is paid once."""
    with _shared_lock:
        key = (timeout_s, memory_mb)
        if key not in _shared:
            _shared[key] = Reader(timeout_s, memory_mb)
        return _shared[key]


def child_env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
            # one thread each: BLAS and OpenMP reserve address space per thread
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}


def limit_and_load(memory_mb: float) -> None:
    """The child's start (in child_env()): its address-space ceiling, then its parsers loaded. The
    parent holds it to memory_mb of resident memory (Reader._watch)."""
    import gc
    import resource

    ceiling = int((memory_mb + ADDRESS_SPACE_EXTRA_MB) * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    ocr.MEMORY_MB = memory_mb
    # nltk (llama-index's sentence splitter) imports scikit-learn, SciPy and pandas for classifiers
    # and metrics a reader never uses: 150 MB of this process. Marked absent, nltk goes without them.
    for name in ("sklearn", "scipy", "pandas"):
        sys.modules.setdefault(name, None)
    loaders.warm_up()
    # The parser libraries' objects live as long as this process: out of the collector's sight, the
    # collection after each file (heap.trim) takes 1 ms instead of 100 (llama-index alone is ~1 s of imports).
    gc.freeze()


def _child(memory_mb: float, timeout_s: float) -> None:
    import math

    requests, replies = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # a stray print from a parser library must not corrupt the replies
    limit_and_load(memory_mb)
    _send(replies, "ready")
    while True:
        try:
            request = _receive(requests)
        except EOFError:  # the parent is gone
            return
        # The parent stops a file at timeout_s; should the parent itself die meanwhile, the alarm
        # (default action: terminate) ends this process a little later instead of letting it run on.
        alarm = math.ceil(timeout_s) + 5
        signal.alarm(alarm)

        def send(part):
            _send(replies, part)  # blocks while the parent catches up: that time is not the file's
            signal.alarm(alarm)

        spec = ChunkSpec(**request["chunk"]) if request["chunk"] else None
        ocr.start_file(OCR_SHARE * timeout_s)
        reply = read_one(request["path"], spec, send, request.get("limits"))
        signal.alarm(0)
        _send(replies, reply)
        heap.trim()  # a long PDF's objects: 590 -> 360 MB while the embedder catches up on its chunks


if __name__ == "__main__":
    _child(float(sys.argv[1]), float(sys.argv[2]))
