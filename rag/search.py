"""Semantic search over a Library: the query is embedded and the nearest chunks come back."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ingest.library import Library


@dataclass
class Hit:
    text: str
    source: str
    page: int | None
    score: float  # cosine similarity, 1 is identical
    chunk_id: str
    section: str | None = None

    def to_json(self) -> dict:
        """The stable shape scripts rely on: text, source, page, score, chunk_id (+ section)."""
        return asdict(self)


def search(library: Library, query: str, k: int = 5) -> list[Hit]:
    query = " ".join(query.split())
    if not query or not library.manifest.has_files():
        return []
    vector = library.embedder.embed([query])
    col = library.collection
    got = col.query(query_embeddings=vector, n_results=k, include=["documents", "metadatas", "distances"])
    ids, docs, metas, dists = got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0]
    # Chunks of a document whose write was interrupted are not in the manifest: never show them.
    live = library.manifest.live_doc_ids(m.get("doc_id") for m in metas)
    return [
        Hit(doc, m.get("source", ""), m.get("page"), round(1.0 - dist, 4), cid, m.get("section"))
        for cid, doc, m, dist in zip(ids, docs, metas, dists)
        if m.get("doc_id") in live
    ]
