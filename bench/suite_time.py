"""The test suite's wall time against an earlier commit's, run one after the other on this machine.

    .venv/bin/python bench/suite_time.py [--base 51ae301] [--rounds 1] [-- PYTEST ARGS]

Issue 41 asked that `make test` stay within 15 % of the suite's time when it was filed (342 tests at
51ae301, "594 s on a 2-core AMD EPYC"). Machines here differ by half of that between sessions, so the
two suites are timed in the same session, alone, alternated (base, now, base, now ...): the base in a
git worktree that uses this checkout's environments (.venv, .venv-llama, .venv-llm, .cache), the
current one in this checkout. Each run is `pytest -n 2 --dist loadgroup` as `make test` runs it (lint
and set-up left out); prints each run's tests and seconds, the medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

SHARED = (".venv", ".venv-llama", ".venv-llm", ".cache")
PYTEST = ["-m", "pytest", "-q", "-ra", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider"]


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(where), rev], check=True,
                   capture_output=True)
    for name in SHARED:
        if (ROOT / name).exists():
            (where / name).symlink_to(ROOT / name)
    return where


def run_suite(tree: Path, extra: list[str]) -> tuple[str, float]:
    """(pytest's summary line and the FAILED lines, wall seconds). The tree's own code first on the path:
    the environment's editable install points at this checkout."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.monotonic()
    done = subprocess.run([str(ROOT / ".venv/bin/python"), *PYTEST, *extra], cwd=tree, env=env,
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    lines = [ln for ln in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    failed = [ln for ln in done.stdout.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
    summary = lines[-1].strip("= ") if lines else f"exit {done.returncode}: {done.stdout[-300:]}"
    return "\n    ".join([summary, *failed]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="51ae301", help="the earlier commit (default: when issue 41 was filed)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--junit", metavar="DIR", help="keep each run's junit XML there (base-1.xml, now-1.xml ...)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to both runs (e.g. -k settings)")
    args = parser.parse_args()
    print(describe())
    times: dict[str, list[float]] = {"base": [], "now": []}
    with tempfile.TemporaryDirectory() as scratch:
        base = worktree(args.base, Path(scratch) / "base")
        try:
            for round_ in range(args.rounds):
                for name, tree in (("base", base), ("now", ROOT)):
                    junit = [f"--junitxml={Path(args.junit).resolve() / f'{name}-{round_ + 1}.xml'}"] if args.junit else []
                    summary, seconds = run_suite(tree, args.pytest_args + junit)
                    times[name].append(seconds)
                    print(f"round {round_ + 1} {name:4s}: {summary} ({seconds:.0f} s wall)", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    b, n = statistics.median(times["base"]), statistics.median(times["now"])
    print(f"median base {b:.0f} s, now {n:.0f} s: ratio {n / b:.3f} (issue 41 asks at most 1.15)")


if __name__ == "__main__":
    main()
