"""The embedder's precision: bf16 where the CPU has it, vectors as good as fp32's."""

import numpy as np
import pytest

from ingest.embedding import Embedder, cpu_has_bf16

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


def test_a_query_is_embedded_in_fp32(embedder):
    fp32, bf16 = Embedder(precision="fp32"), Embedder(precision="bf16")
    fp32._model = bf16._model = embedder.model
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


def test_bf16_vectors_match_fp32(embedder):
    fp32 = Embedder(precision="fp32")
    bf16 = Embedder(precision="bf16")
    fp32._model = bf16._model = embedder.model  # the same weights: only the arithmetic differs
    a, b = fp32.embed(TEXTS), bf16.embed(TEXTS)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(TEXTS), fp32.dimension)
    assert np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-3)
    assert not np.array_equal(a, b)  # bf16 arithmetic did take effect
    cosine = (a * b).sum(1)
    assert cosine.min() > 0.999, cosine
    # Nearest neighbours stay the same: each text's closest other text agrees between precisions.
    assert ((a @ a.T - 2 * np.eye(len(TEXTS))).argmax(1) == (b @ b.T - 2 * np.eye(len(TEXTS))).argmax(1)).all()


def test_padding_batches_to_fixed_lengths_leaves_vectors_as_they_were(embedder):
    fp32 = Embedder(precision="fp32")
    fp32._model = embedder.model
    batch = fp32.embed(TEXTS)  # padded to a multiple of PAD_TO tokens (bounded shapes: bounded memory)
    alone = np.vstack([fp32.embed([text]) for text in TEXTS])  # each at its own length
    assert (batch * alone).sum(1).min() > 0.99999
