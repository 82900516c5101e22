"""Peak memory of `hearth ingest` on R's 2,415-page reference manual (refman.pdf, `make testdata`).

    .venv/bin/python bench/memory.py [PDF]

Runs `hearth ingest PDF` into a fresh HEARTH_HOME and samples, every 50 ms, the resident memory (RSS
from /proc) of the hearth process and of every process under it (the file reader): the peak of their
sum is Hearth's footprint; each one's own peak is printed too. Pages are read one at a time and
chunks embedded in groups of 256, so the peak should not grow with the document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

ROOT = Path(__file__).resolve().parent.parent
REFMAN = ROOT / ".cache/testdata/root/usr/share/R/doc/manual/refman.pdf"
PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def _tree(pid: int) -> list[int]:
    """pid and its descendants, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def main(pdf: Path) -> None:
    print(describe(), flush=True)
    hearth = Path(sys.executable).parent / "hearth"
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        proc = subprocess.Popen([str(hearth), "ingest", str(pdf), "--json"], env={**os.environ, "HEARTH_HOME": home},
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        peak_total, peak_each, samples = 0.0, {}, 0

        def sample():
            nonlocal peak_total, samples
            while proc.poll() is None:
                sizes = {p: _rss_mb(p) for p in _tree(proc.pid)}
                peak_total = max(peak_total, sum(sizes.values()))
                for p, mb in sizes.items():
                    role = "hearth" if p == proc.pid else "file reader"
                    peak_each[role] = max(peak_each.get(role, 0.0), mb)
                samples += 1
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        out = proc.communicate()[0]
        sampler.join()
        seconds = time.perf_counter() - started
    report = json.loads(out)
    chunks = report["chunks_added"]
    print(f"{pdf.name}: {pdf.stat().st_size / 2**20:.1f} MB, {chunks} chunks, exit {proc.returncode}, "
          f"{seconds:.0f} s, {samples} samples; hearth's split: {report['timings']}")
    print(f"peak RSS, hearth + file reader together: {peak_total:.0f} MB")
    for role, mb in peak_each.items():
        print(f"  peak RSS of the {role} process: {mb:.0f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REFMAN)
