"""How many prompt tokens the measurement of a server's prompt speed needs (docs/decisions.md, 2026-12-07).

    .venv/bin/python bench/prompt_speed.py [--trials 5] [--words 164,335]

For each trial and each length (words of `llm_server.SPEED_TEXT`, repeated past its end), a fresh
llama.cpp server (the command Hearth runs, its default model) is started and measured as Hearth
measures it: two one-token requests, each with a new nonce in front, the faster counted. Prints each
request's tokens/s, the median counted figure per length and the measurement's median wait: a
shorter text is worth it only where it gives the same figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

from ingest.settings import load_settings  # noqa: E402
from rag import llm_server  # noqa: E402
from rag.engines import llamacpp  # noqa: E402


def text_of(words: int) -> str:
    base = llm_server.SPEED_TEXT.split()
    return " ".join((base * (words // len(base) + 1))[:words])


def fresh_server(port: int, home: Path) -> subprocess.Popen:
    argv, env, _ = llamacpp.command(load_settings(home=home), port)
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(1200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the llama.cpp server did not come up in 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--words", default="164,335", help="lengths to compare, in words of SPEED_TEXT")
    parser.add_argument("--port", type=int, default=18555)
    args = parser.parse_args()
    print(describe())
    lengths = [int(w) for w in args.words.split(",")]
    counted = {n: [] for n in lengths}
    waits = {n: [] for n in lengths}
    with tempfile.TemporaryDirectory() as home:
        for trial in range(args.trials):
            for words in lengths:  # alternated, so that a busier minute falls on every arm
                proc = fresh_server(args.port, Path(home))
                try:
                    # As Hearth measures (llm_server.measure_prompt_speed), each request's time kept
                    (t1, s1), (t2, s2) = [llm_server._timed_prompt(f"http://127.0.0.1:{args.port}/v1", "", "", 120,
                                                                   text_of(words)) for _ in range(2)]
                finally:
                    proc.terminate()
                    proc.wait()
                counted[words].append(max(t1 / s1, t2 / s2))
                waits[words].append(s1 + s2)
                print(f"trial {trial} {words} words: {t1} tokens at {t1 / s1:.1f}/s then {t2 / s2:.1f}/s", flush=True)
    for words in lengths:
        print(f"{words} words: counted median {statistics.median(counted[words]):.1f} tokens/s "
              f"(min {min(counted[words]):.1f}, max {max(counted[words]):.1f}); "
              f"wait median {statistics.median(waits[words]):.1f} s")
    first, *others = lengths
    for words in others:
        print(f"ratio {words}/{first} words: speed {statistics.median(counted[words]) / statistics.median(counted[first]):.3f}, "
              f"wait {statistics.median(waits[words]) / statistics.median(waits[first]):.2f}")


if __name__ == "__main__":
    main()
