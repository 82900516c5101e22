"""The embedder: bf16 where the CPU has it, OpenVINO where it is faster, vectors as good as fp32's."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest import embedding
from ingest.embedding import Embedder, cpu_has_bf16

ROOT = Path(__file__).resolve().parent.parent

TEXTS = [
    "R is a language and environment for statistical computing and graphics.",
    "Use install.packages() to add a package from CRAN; library() attaches it.",
    "The answer is six years.",
    "Data frames hold columns of equal length, possibly of different types. " * 8,
    "Tomatoes need six hours of sun and deep watering twice a week.",
    "To fix a flat tyre, remove the wheel, find the puncture and patch the tube.",
    "The tax return is due on the thirty-first of July.",
    "Keep receipts for six years.",
]  # eight or more: fewer texts (a query) are embedded in fp32 whatever the precision


@pytest.fixture(scope="module")
def on_torch() -> Embedder:
    return Embedder(backend="torch")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """A cache folder holding the default model converted to OpenVINO (and the choice measured here)."""
    cache = tmp_path_factory.mktemp("embedders")
    Embedder(cache_dir=cache).embed(TEXTS)
    return cache


def _torch(precision: str, on_torch: Embedder) -> Embedder:
    e = Embedder(precision=precision, backend="torch")
    e._model, e.choice = on_torch.model, on_torch.choice  # the same weights: only the arithmetic differs
    return e


def test_a_query_is_embedded_in_fp32(on_torch):
    fp32, bf16 = _torch("fp32", on_torch), _torch("bf16", on_torch)
    assert (fp32.embed(TEXTS[:2]) == bf16.embed(TEXTS[:2])).all()


def test_auto_precision_follows_the_cpu():
    assert Embedder(precision="auto", device="cpu").precision == ("bf16" if cpu_has_bf16() else "fp32")
    assert Embedder(precision="auto", device="cuda").precision == "fp16"  # fp16 weights on a GPU
    with pytest.raises(ValueError, match="embed_precision"):
        Embedder(precision="int4")
    with pytest.raises(ValueError, match="embed_device"):
        Embedder(device="gpu")


def test_auto_device_is_cuda_only_where_torch_sees_a_gpu():
    import torch

    assert Embedder().device == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():  # asking for a GPU that is not there is said plainly
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            Embedder(device="cuda").embed(TEXTS)


def test_bf16_vectors_match_fp32(on_torch):
    fp32, bf16 = _torch("fp32", on_torch), _torch("bf16", on_torch)
    a, b = fp32.embed(TEXTS), bf16.embed(TEXTS)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(TEXTS), fp32.dimension)
    assert np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-3)
    assert not np.array_equal(a, b)  # bf16 arithmetic did take effect
    cosine = (a * b).sum(1)
    assert cosine.min() > 0.999, cosine
    # Nearest neighbours stay the same: each text's closest other text agrees between precisions.
    assert ((a @ a.T - 2 * np.eye(len(TEXTS))).argmax(1) == (b @ b.T - 2 * np.eye(len(TEXTS))).argmax(1)).all()


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_padding_batches_to_fixed_lengths_leaves_vectors_as_they_were(backend, on_torch, converted):
    fp32 = _torch("fp32", on_torch) if backend == "torch" else Embedder(precision="fp32", backend=backend,
                                                                          cache_dir=converted)
    batch = fp32.embed(TEXTS)  # padded to a multiple of PAD_TO tokens (bounded shapes: bounded memory)
    alone = np.vstack([fp32.embed([text]) for text in TEXTS])  # each at its own length
    assert fp32.backend == backend
    assert (batch * alone).sum(1).min() > 0.99999


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_openvino_vectors_match_torch_fp32(precision, on_torch, converted):
    ov = Embedder(precision=precision, backend="openvino", cache_dir=converted)
    a, b = _torch("fp32", on_torch).embed(TEXTS), ov.embed(TEXTS)
    assert ov.backend == "openvino" and b.dtype == np.float32 and b.shape == a.shape
    assert np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-4)
    cosine = (a * b).sum(1)
    assert cosine.min() > 0.999, cosine
    assert ((a @ a.T - 2 * np.eye(len(TEXTS))).argmax(1) == (b @ b.T - 2 * np.eye(len(TEXTS))).argmax(1)).all()
    assert ov.model.precision == ("f32" if precision == "fp32" else ("bf16" if cpu_has_bf16() else "f32"))


def test_the_backend_is_measured_once_per_cpu_and_then_remembered(converted):
    records = list(converted.glob(f"*-choice-{embedding.cpu_signature()}-*.json"))
    assert len(records) == 1, records
    choice = json.loads(records[0].read_text())
    # The guard and the clock decided: the faster of the two, and OpenVINO only above the guard.
    assert choice["min_cosine"] >= embedding.GUARD_MIN_COSINE or choice["backend"] == "torch"
    faster = "openvino" if choice["openvino_per_s"] > choice["torch_per_s"] else "torch"
    assert choice["backend"] == (faster if choice["min_cosine"] >= embedding.GUARD_MIN_COSINE else "torch"), choice
    # A later process reads the choice instead of measuring, and on OpenVINO never imports torch.
    script = ("import sys, json; from ingest.embedding import Embedder; e = Embedder(cache_dir=sys.argv[1]); "
              "e.embed(['a question', 'another']); print(json.dumps([e.choice, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", script, str(converted)], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    later, imported_torch = json.loads(out.splitlines()[-1])
    assert later == choice
    assert imported_torch == (choice["backend"] == "torch")


def test_the_accuracy_guard_keeps_torch_when_openvino_vectors_differ(converted, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    shutil.copytree(converted, cache, ignore=shutil.ignore_patterns("*.json"))  # converted, not yet measured
    monkeypatch.setattr(embedding, "GUARD_MIN_COSINE", 1.01)  # no vectors can pass: the guard must hold
    e = Embedder(cache_dir=cache)
    vectors = e.embed(TEXTS)
    assert e.backend == "torch" and "min cosine" in e.choice["why"], e.choice
    assert vectors.shape == (len(TEXTS), e.dimension)


def test_a_model_openvino_cannot_run_stays_on_torch(on_torch, tmp_path):
    from sentence_transformers import SentenceTransformer, models

    folder = tmp_path / "with-dense"  # a projection layer after pooling: not what OpenVINOEncoder computes
    dense = models.Dense(on_torch.dimension, 64)
    SentenceTransformer(modules=[*on_torch.model, dense]).save(str(folder))
    e = Embedder(str(folder), cache_dir=tmp_path / "cache")
    assert e.embed(TEXTS).shape == (len(TEXTS), 64)
    assert e.backend == "torch" and "layers besides" in e.choice["why"]
    with pytest.raises(RuntimeError, match="HEARTH_EMBED_BACKEND=openvino"):
        Embedder(str(folder), backend="openvino").embed(TEXTS)


def test_openvino_sends_nothing_anywhere(tmp_path):
    """openvino-telemetry writes a client id to ~/intel and posts to Google Analytics on `import openvino`
    (unless opted out, or CI=true): Hearth hides it. A fresh HOME shows whether it ran."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    run = lambda home, code: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], cwd=ROOT, check=True, env={**env, "HOME": str(home)}, capture_output=True)
    (tmp_path / "plain").mkdir()
    run(tmp_path / "plain", "import openvino")
    assert (tmp_path / "plain" / "intel").exists(), "openvino no longer writes ~/intel: is the guard still needed?"
    (tmp_path / "hearth").mkdir()
    run(tmp_path / "hearth", f"from ingest.embedding import Embedder; "
                             f"Embedder(backend='openvino', cache_dir={str(tmp_path / 'cache')!r}).embed(['a', 'b'])")
    assert not (tmp_path / "hearth" / "intel").exists()


def test_a_cache_it_cannot_write_leaves_the_embedder_working_on_torch(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    e = Embedder(cache_dir=tmp_path / "a-file" / "embedders")  # every write under it fails
    assert e.embed(TEXTS).shape == (len(TEXTS), e.dimension)
    assert e.backend == "torch" and "OpenVINO failed" in e.choice["why"], e.choice


def test_a_copy_of_the_model_shares_its_conversion(converted, tmp_path):
    copy = tmp_path / "model-copy"
    shutil.copytree(Embedder().path, copy)  # copytree keeps the files' times, as a moved venv would not
    before = sorted(p.name for p in converted.iterdir())
    e = Embedder(str(copy), cache_dir=converted)
    e.embed(TEXTS)
    assert sorted(p.name for p in converted.iterdir()) == before  # no second conversion, no new choice
    assert e.choice == json.loads(next(converted.glob("*-choice-*.json")).read_text())


def test_the_cache_keeps_the_last_used_conversions(tmp_path):
    from ingest.openvino_encoder import KEEP_CONVERSIONS, prune

    folders = []
    for i in range(KEEP_CONVERSIONS + 2):
        folder = tmp_path / f"model{i}"
        folder.mkdir()
        (tmp_path / f"model{i}-choice-cpu-bf16.json").write_text("{}")
        os.utime(folder, (1000 + i, 1000 + i))
        folders.append(folder)
    (tmp_path / ".converting-x").mkdir()  # another process converting: not ours to delete
    prune(tmp_path, keep=folders[0])  # just converted, whatever its time says
    kept = sorted(p.name for p in tmp_path.iterdir())
    newest = [f"model{i}" for i in range(KEEP_CONVERSIONS + 2)][-(KEEP_CONVERSIONS - 1):]
    assert kept == sorted([".converting-x", "model0", "model0-choice-cpu-bf16.json", *newest,
                           *[f"{n}-choice-cpu-bf16.json" for n in newest]])


def test_the_embedder_runs_as_many_threads_as_the_process_may_use_cpus(converted):
    """In a container given 1 CPU of the machine's N (a cpuset, taskset): one thread, not N fighting
    over it. OpenVINO caps its threads so by itself; torch was told os.cpu_count()."""
    script = ("import torch; from ingest.embedding import Embedder; "
              f"ov = Embedder(backend='openvino', cache_dir={str(converted)!r}).model; "
              "Embedder(backend='torch').model; "
              "print(ov.compiled.get_property('INFERENCE_NUM_THREADS'), torch.get_num_threads())")
    one = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert one.returncode == 0, one.stderr
    assert one.stdout.split()[-2:] == ["1", "1"]
