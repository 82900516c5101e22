"""The machine a benchmark ran on, printed first by every new bench: figures differ by CPU kind."""

from __future__ import annotations

import os
import platform

FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "fma")


def describe() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    shown = " ".join(f for f in FLAGS if f in flags) or "none of " + " ".join(FLAGS)
    return f"CPU: {model}, {os.cpu_count()} cores; flags: {shown}"
