"""A real Chroma server for the tests: `chroma run` (from the chromadb package) on 127.0.0.1."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import ROOT, free_port

CHROMA = ROOT / ".venv" / "bin" / "chroma"


class ChromaServer:
    """`chroma run` on 127.0.0.1 and a free port, storing under `path`; stop() and start() again."""

    def __init__(self, path: Path):
        self.path = path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        log = open(self.path.parent / f"chroma-{self.port}.log", "ab")
        self.proc = subprocess.Popen([str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1).read()
                return self
            except OSError:
                assert self.proc.poll() is None, "chroma run exited; see " + log.name
                time.sleep(0.2)
        raise TimeoutError("chroma run did not answer within 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
