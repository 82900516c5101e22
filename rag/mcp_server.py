"""`hearth mcp`: the library as an MCP server (the official SDK's MCPServer), for agents and editors.

Over stdio (a client starts `hearth mcp` itself) or streamable HTTP on 127.0.0.1 (`--http`, at /mcp).

    tools      search(query, k, collection, only)    passages with source, page, section, score, chunk_id
               ask(question, collection, only)       an answer with its citations checked
               list_documents(collection)            what the collection holds
               get_passage(chunk_id, neighbours)     a passage with those before and after it
    resources  hearth://<collection>/<doc id>        each document's indexed text, page by page

Every call opens the collection anew (so it sees what another process just ingested) with one
embedding model shared by all of them. Nothing here talks to anything but the store and the local
model server.
"""

from __future__ import annotations

from contextlib import contextmanager

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import Resource

from ingest.errors import HearthError
from ingest.settings import Settings

from . import api

SCHEME = "hearth"


def joined(passages: list[api.Hit]) -> str:
    """A document's text from its stored passages: the overlap between neighbours once, a marker
    where a page begins."""
    parts, page, end = [], object(), None
    for hit in passages:
        text, gap = hit.text, " "
        if hit.page != page:
            if hit.page:
                parts.append(f"\n\n[page {hit.page}]\n")
            page, end, gap = hit.page, None, ""
        elif end is not None and hit.start is not None and hit.start <= end:
            text, gap = text[end - hit.start:], ""  # the part the passage before did not give
        parts.append(gap + text if parts else text)
        end = None if hit.start is None else max(end or 0, hit.start + len(hit.text))
    return "".join(parts).strip()


class HearthMCP(MCPServer):
    """MCPServer whose resource list is the library's documents as they are now."""

    def __init__(self, settings: Settings, embedder=None):
        super().__init__("Hearth", log_level="WARNING", instructions=(
            "Search and ask the user's own documents, indexed on this machine. Cite the source and page of "
            "what you use; `ask` answers from the passages with each citation checked."))
        self.hearth = settings  # (MCPServer has a .settings of its own)
        self.embedder = embedder or api.load_embedder(settings)
        self._tools()

    @contextmanager
    def open(self, collection: str | None):
        """The collection, opened for one call; what goes wrong reaches the client in plain words
        (the SDK hides the message of any other exception)."""
        try:
            with api.Hearth(self.hearth, collection or None, embedder=self.embedder) as lib:
                yield lib
        except (ValueError, HearthError) as exc:
            raise ToolError(str(exc)) from exc

    async def list_resources(self):
        import anyio.to_thread

        def documents():
            listed = []
            with self.open(None) as lib:
                names = [row[0] for row in lib.collections()]
            for name in names:
                with self.open(name) as lib:
                    listed += [Resource(uri=f"{SCHEME}://{name}/{r.doc_id}", name=api.export.display_path(r.path, lib.folder),
                                        description=f"{r.path} ({r.pages or '?'} pages, {r.chunks} passages)",
                                        mime_type="text/plain") for r in lib.documents()]
            return listed

        return await super().list_resources() + await anyio.to_thread.run_sync(documents)

    def _tools(self):
        @self.resource(SCHEME + "://{collection}/{doc_id}", name="document", mime_type="text/plain")
        def document(collection: str, doc_id: str) -> str:
            """A document's text as Hearth indexed it."""
            with self.open(collection) as lib:
                record = next((r for r in lib.documents() if r.doc_id == doc_id), None)
                if record is None:
                    raise ValueError(f"no document {doc_id} in collection '{lib.name}'")
                return joined(lib.passages_of(record))

        @self.tool()
        def search(query: str, k: int = 5, collection: str | None = None, only: list[str] | None = None) -> list[dict]:
            """The k passages of the user's documents that best match `query` (hybrid: meaning and
            words), each with its source file, page, section, score and chunk_id. `only`: files or
            folders to search within."""
            if not 1 <= k <= 50:
                raise ToolError("k must be between 1 and 50")
            with self.open(collection) as lib:
                return [h.to_json() for h in lib.search(query, k, only=only)]

        @self.tool()
        def ask(question: str, collection: str | None = None, only: list[str] | None = None) -> dict:
            """An answer to `question` written by the local model from the user's documents, with
            [n] citations; `citations` gives each one's source, page and the quote that supports
            it, `sentences` which sentences their sources support."""
            with self.open(collection) as lib:
                result = lib.ask(question, only=only).collect()
            if result.error and not result.answer:
                raise ToolError(result.error)
            return {key: value for key, value in result.to_json().items() if key != "timings"}

        @self.tool()
        def list_documents(collection: str | None = None) -> list[dict]:
            """The documents of a collection: path, pages, passages, when indexed, notes (OCR, tables),
            and the resource URI of their text."""
            with self.open(collection) as lib:
                return [{"path": r.path, "doc_id": r.doc_id, "pages": r.pages, "passages": r.chunks, "size": r.size,
                         "indexed_at": r.indexed_at, "notes": r.notes, "resource": f"{SCHEME}://{lib.name}/{r.doc_id}"}
                        for r in lib.documents()]

        @self.tool()
        def get_passage(chunk_id: str, neighbours: int = 1, collection: str | None = None) -> dict:
            """The stored passage `chunk_id` (from search), with up to `neighbours` passages before and
            after it in its document."""
            if not 0 <= neighbours <= 10:
                raise ToolError("neighbours must be between 0 and 10")
            with self.open(collection) as lib:
                hit = lib.passage(chunk_id)
                if hit is None:
                    raise ToolError(f"no passage {chunk_id!r} in collection '{lib.name}'")
                around = [lib.passage(chunk_id, step) for step in range(-neighbours, neighbours + 1) if step]
            before = [h.to_json() for h in around[:neighbours] if h]
            after = [h.to_json() for h in around[neighbours:] if h]
            return {"passage": hit.to_json(), "before": before, "after": after}


def serve_stdio(settings: Settings):
    HearthMCP(settings).run("stdio")


def http_app(settings: Settings, host: str):
    """The streamable-HTTP app, at /mcp (run it with serving.run: Host and token checks)."""
    return HearthMCP(settings).streamable_http_app(host=host)
