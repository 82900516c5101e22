"""Hearth's Python API: what a user does, as verbs. The CLI (`rag/cli.py`) and the app (`app.py`)
are thin layers over it and import nothing else of Hearth but the settings and the errors.

    from rag.api import Hearth

    with Hearth(collection="work") as h:           # settings from HEARTH_* and the TOML file
        h.sync(["~/Documents/tax"])                 # add, update, move and remove to match
        for hit in h.search("receipts", k=3): ...
        stream = h.ask("How long do I keep receipts?")
        for text in stream: print(text, end="")     # the answer as it streams
        stream.result.citations                     # checked against the passages shown

The front ends also share two presentation modules, reached as api.render (text a document or a
model wrote, made safe to show) and api.export (answers and chats as Markdown files).

Every verb that writes takes the store's writer lock (and, against a shared Chroma server, its
lease) for its own duration; store failures come out as the exceptions in ingest/errors.py.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ingest import loaders
from ingest.library import chunk_id, split_id
from ingest.libraries import open_library
from ingest.loaders.images import EXTENSIONS as IMAGE_TYPES
from ingest.manifest import FileRecord
from ingest.manifest.files import SORTS  # noqa: F401  (SORTS: for the front ends)
from ingest.pipeline import FileResult, Ingestor, Report, rebuild
from ingest.settings import AUTO_MODEL, DEFAULT_EMBED_MODEL, MULTILINGUAL_MODEL, Settings, load_settings  # noqa: F401  (MULTILINGUAL_MODEL: for the app)
from ingest.store import check_collection_name, store_errors  # noqa: F401  (check_collection_name: for the app)
from ingest.watch import Watcher, describe

from . import evaluate, export, llm_server, render, summary, uploads, viewer  # noqa: F401  (render, export: for the front ends)
from .answer import MISMATCH_NOTE, RETRY_MARK, RETRY_NOTE, Answer, Answerer, AnswerStream  # noqa: F401  (the notes: for the front ends)
from .chats import Chat, Chats, SavedStream
from .retrieval import MODES, Hit, search

SUPPORTED_TYPES = sorted(loaders.SUPPORTED)  # file extensions Hearth reads
load_qa = evaluate.load_qa
ServerInfo = llm_server.ServerInfo
ModelChoice = llm_server.ModelChoice
tail = llm_server.tail
Progress = Callable[[str, int, int, int, int], None]  # (path, files done, files in all, chunks embedded, pages read)

__all__ = ["Hearth", "Answer", "AnswerStream", "Chat", "FileRecord", "FileResult", "Hit", "Report", "MODES",
           "SUPPORTED_TYPES", "check_collection_name", "describe", "load_settings", "model_server", "passage_budget"]


if TYPE_CHECKING:
    from .jobs import SyncJob

COMPACT_WORTH_BYTES = 50 * 2**20  # compact() is offered once deletions left this much unused...
COMPACT_WORTH_SHARE = 0.10  # ...and at least this share of the library's disk


class Hearth:
    """One opened collection of one library (HEARTH_HOME, or a Chroma server)."""

    def __init__(self, settings: Settings | None = None, collection: str | None = None, embedder=None):
        """`embedder`: an already loaded ingest.embedding.Embedder to share, or a function from a model
        name to one (the app keeps one per model for every browser session); used while it is the
        collection's model. Raises ValueError for a bad collection name."""
        self.settings = settings or load_settings()
        with store_errors(self.settings):
            self.library = open_library(self.settings, collection)
            if callable(embedder):
                embedder = embedder(self.library.embed_model or DEFAULT_EMBED_MODEL)
        if embedder is not None:
            self.library.embedder = embedder
        self.name = self.library.name
        self._last: Answerer | None = None
        self._chats: Chats | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.library.close()
        if self._chats is not None:
            self._chats.close()

    @property
    def folder(self) -> Path:
        """Where files added through the app are kept: <library folder>/<collection>."""
        return self.library.folder

    @property
    def embedder(self):
        return self.library.embedder

    @property
    def embed_model(self) -> str | None:
        """The collection's embedding model (None: a new one's is chosen by its first documents)."""
        with store_errors(self.settings):
            return self.library.embed_model

    def load_model(self):
        """Load the embedding model now (seconds), not on the first question."""
        _ = self.library.embedder.model

    # --- the library ------------------------------------------------------------------------------
    def create(self, model: str = AUTO_MODEL):
        """Make this new collection with embedding `model` now, before it holds anything; auto leaves
        the choice to its first documents' language (ingest/library.py)."""
        if model != AUTO_MODEL:
            with store_errors(self.settings):
                self.library.set_model(model)

    def collections(self) -> list[tuple[str, str, int, int]]:
        """(name, embedding model, dimension, documents) of every collection."""
        with store_errors(self.settings):
            return self.library.files.collections()

    def documents(self) -> list[FileRecord]:
        with store_errors(self.settings):
            return sorted(self.library.documents(), key=lambda r: r.path)

    def documents_page(self, search: str = "", sort: str = "path", descending: bool = False, offset: int = 0,
                       limit: int = 50) -> tuple[list[FileRecord], int]:
        """One page of the documents whose path holds `search`, ordered by `sort` (path, indexed, size,
        chunks, pages, language), and how many match: for lists of 100,000 documents."""
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        with store_errors(self.settings):
            return self.library.files.page(search, sort, descending, max(0, offset), max(1, limit))

    def document(self, path: str) -> FileRecord:
        """The record of the document at `path` (ValueError if this collection does not hold it)."""
        wanted = os.path.abspath(os.path.expanduser(path))
        with store_errors(self.settings):
            record = self.library.files.get(wanted)
        if record is None:
            raise ValueError(f"{path} is not in collection '{self.name}' (`hearth docs` lists them)")
        return record

    def problems(self) -> dict[str, str]:
        """{path: reason} of the files that could not be added."""
        with store_errors(self.settings):
            return {path: v[0] for path, v in self.library.files.problems().items()}

    def has_documents(self) -> bool:
        with store_errors(self.settings):
            return self.library.files.has_files()

    def is_empty(self) -> bool:
        with store_errors(self.settings):
            return not self.library.files.has_files() and not self.library.files.problems()

    def totals(self) -> tuple[int, int]:
        """(documents, passages) as the manifest records them; cheap at any size (chunk_count asks Chroma)."""
        with store_errors(self.settings):
            return self.library.files.totals()

    def chunk_count(self) -> int:
        with store_errors(self.settings):
            return self.library.count()

    @contextmanager
    def _writing(self, wait: float | None, on_wait):
        with store_errors(self.settings), self.library.writing(wait=wait, on_wait=on_wait):
            yield

    def sync(self, paths: Iterable[str | os.PathLike], force: bool = False, reembed: bool = False,
             progress: Progress | None = None, wait: float | None = None, on_wait=None,
             stop: threading.Event | None = None, retry_failed: bool = False, allow_removal: bool = False) -> Report:
        """Make the collection hold exactly the supported files under `paths`: new and changed files
        read and embedded, moved ones re-pointed, deleted ones removed. force re-reads every file
        found; retry_failed reads again the files that failed (`hearth ingest --retry-failed`);
        reembed rebuilds the whole collection with the configured model (beside the old one,
        switched to when done). wait: seconds to wait for another writer (None: as long as it takes).
        Setting `stop` ends the sync within seconds (report.stopped, report.left); the next sync of
        the same paths goes on where it stopped. Files gone that look like a drive away rather than
        deletion are not removed but reported (report.held) unless allow_removal (ingest/removal.py)."""
        with self._writing(wait, on_wait):
            if reembed:
                return rebuild(self.library, paths, progress)
            return Ingestor(self.library, progress, stop).sync(paths, force=force, retry_failed=retry_failed,
                                                               allow_removal=allow_removal)

    def failed_paths(self) -> list[str]:
        """The files that could not be added and are still there (what --retry-failed reads again)."""
        return [p for p in self.problems() if os.path.isfile(p)]

    def remove(self, paths: Iterable[str | os.PathLike], wait: float | None = None, on_wait=None) -> list[FileResult]:
        """Forget the documents at or under `paths`; the files themselves stay."""
        with self._writing(wait, on_wait):
            return Ingestor(self.library).remove(paths)

    def free_bytes(self) -> tuple[int, int]:
        """(bytes a compact() would give back, about; bytes the library takes on disk now)."""
        return self.library.free_bytes(), self.library.disk_bytes()

    def worth_compacting(self) -> bool:
        """Whether deletions left enough unused space for compact() to be worth offering."""
        free, disk = self.free_bytes()
        return free >= COMPACT_WORTH_BYTES and free >= COMPACT_WORTH_SHARE * disk

    def compact(self, wait: float | None = None, on_wait=None) -> tuple[int, int]:
        """Give back the disk that deletions and changes left unused (`hearth compact`): returns the
        library's bytes (before, after). Searches elsewhere wait while it runs (seconds at 100k passages)."""
        with self._writing(wait, on_wait):
            return self.library.compact()

    def uploads_among(self, paths: Iterable[str]) -> list[str]:
        """Those of `paths` that are files in the library folder (added through the app): the files
        delete_uploads() removes from disk. Files elsewhere are the user's own and stay."""
        folder = str(self.folder.resolve()) + os.sep
        return [p for p in paths if os.path.realpath(p).startswith(folder) and os.path.isfile(p)]

    def delete_uploads(self, paths: Iterable[str]) -> list[str]:
        """Delete uploads_among(paths) from disk; returns them."""
        deleted = self.uploads_among(paths)
        for path in deleted:
            os.remove(path)
        return deleted

    def add_upload(self, name: str, data: bytes) -> Path:
        """Store an uploaded file in the library folder under a safe name (not yet synced)."""
        return uploads.save(self.folder, name, data, self.settings.max_file_mb)

    def watch(self, folders: Iterable[str | os.PathLike] | None = None, on_change: Callable[[str], None] | None = None,
              own_connection: bool = False) -> Watcher:
        """A watcher keeping the collection in sync with `folders` (default: the library folder);
        call .run() (it blocks: a thread, or the CLI's main loop) and .stop(). own_connection gives it a
        Library of its own, for a watcher that outlives this object (the app's)."""
        library = self.library
        if own_connection:
            library = open_library(self.settings, self.name)
            library.embedder = self.library.embedder
        if folders is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            folders = [self.folder]
        return Watcher(library, folders, on_change=on_change)

    def start_sync(self, paths: Iterable[str | os.PathLike], what: str = "", retry_failed: bool = False,
                   allow_removal: bool = False) -> "SyncJob":
        """sync() in the background (rag/jobs.py): returns at once a job with its progress, rates, `stop`
        and, once it ended, its `report` (or `error`). It opens a Hearth of its own with these settings
        and shares this one's loaded model; `what` names it in messages (default: the paths)."""
        from .jobs import SyncJob

        where = [os.path.abspath(os.path.expanduser(str(p))) for p in paths]
        return SyncJob(self.settings, self.name, self.embedder, where, what or ", ".join(where), retry_failed,
                       allow_removal)

    # --- answers ----------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, mode: str | None = None, only=None) -> list[Hit]:
        """The k passages that best match `query` (mode: hybrid, dense or keyword), from the
        documents at or under the paths `only` when given."""
        with store_errors(self.settings):
            return search(self.library, query, k, mode=mode, only=only)

    def ask(self, question: str, history: list[tuple[str, str]] | None = None, k: int | None = None,
            server: llm_server.ServerInfo | None = None, chat: str | None = None, only=None,
            max_tokens: int | None = None) -> AnswerStream | SavedStream:
        """A streamed answer from the model server (`server`, else HEARTH_LLM_URL's or Hearth's own),
        grounded in the passages found for `question` (or for its standalone form, given the earlier
        (question, answer) turns of a chat). `chat`: the id of a saved chat to continue: its turns
        are the history, and the answer is saved into it as it streams. `only`: files or folders
        whose documents alone are searched. `max_tokens`: a shorter cap than HEARTH_ANSWER_MAX_TOKENS."""
        if chat is not None:
            found = self.chat(chat)
            if found.collection != self.name:
                raise ValueError(f"chat {chat} is in collection '{found.collection}', not '{self.name}'")
            history = self.chats.history(chat)
        with store_errors(self.settings):
            stream = self._answerer(server).ask(question, history, k, only=only, max_tokens=max_tokens)
        return SavedStream(stream, self.chats, chat) if chat is not None else stream

    def summarize(self, path: str, on_part=None, server: llm_server.ServerInfo | None = None,
                  chat: str | None = None) -> AnswerStream | SavedStream:
        """A streamed summary of the document at `path` (map over its parts, then reduce; see
        rag/summary.py); on_part(i, n, page, text) shows each part's summary as it is written.
        `chat`: a saved chat the summary is saved into as it streams."""
        record = self.document(path)
        with store_errors(self.settings):
            stream = summary.summarize(self._answerer(server), record, on_part)
        return SavedStream(stream, self.chats, chat) if chat is not None else stream

    # --- saved chats ------------------------------------------------------------------------------
    @property
    def chats(self) -> Chats:
        """The saved chats of this HEARTH_HOME (all collections): list, rename, delete, answers."""
        if self._chats is None:
            self._chats = Chats(self.settings)
        return self._chats

    def new_chat(self, question: str) -> Chat:
        """A chat in this collection, titled by its first question."""
        return self.chats.create(self.name, question)

    def chat(self, chat_id: str) -> Chat:
        found = self.chats.get(chat_id)
        if found is None:
            raise ValueError(f"no saved chat has the id {chat_id!r} (`hearth chats` lists them)")
        return found

    def _answerer(self, server=None) -> Answerer:
        server = llm_server.with_prompt_speed(self.settings, server or llm_server.current(self.settings))
        starting = bool(server and server.managed and llm_server.status(self.settings, server)[0] == "starting")
        if self._last is None or self._last.server != server:  # its HTTP clients are kept for the next question
            self._last = Answerer(self.library, server)
        self._last.starting = starting
        return self._last

    # --- the source viewer ------------------------------------------------------------------------
    def passage(self, cid: str, step: int = 0) -> Hit | None:
        """The stored passage `cid`, or the one `step` places after (negative: before) it in its
        document; None past either end."""
        try:
            doc, i = split_id(cid)
        except ValueError:
            raise ValueError(f"{cid!r} is not a passage id (they look like 1f3a9c0d2b4e6f78:12)") from None
        wanted = chunk_id(doc, i + step)
        with store_errors(self.settings):
            got = self.library.chunks([wanted])
        if wanted not in got:
            return None
        return _stored_hit(wanted, *got[wanted][:2])

    def passages_of(self, document: str | FileRecord) -> list[Hit]:
        """Every stored passage of a document (its path, or its record from documents()), in order;
        ValueError if a path is not here."""
        record = document if isinstance(document, FileRecord) else self.document(document)
        hits = []
        with store_errors(self.settings):
            for first in range(0, record.chunks, 500):
                ids = [chunk_id(record.doc_id, i) for i in range(first, min(record.chunks, first + 500))]
                got = self.library.chunks(ids)
                hits += [_stored_hit(c, *got[c][:2]) for c in ids if c in got]
        return hits

    def _stored_text(self, hit: Hit, reach: int = 4) -> str:
        """The page's text around `hit` as it was indexed: its stored neighbours on the same page, each
        laid at its offset (overlapping passages agree where they overlap)."""
        if hit.start is None:
            return hit.text
        parts = [hit]
        for step in (-1, 1):
            for k in range(1, reach + 1):
                other = self.passage(hit.chunk_id, step * k)
                if other is None or other.page != hit.page or other.start is None:
                    break
                parts.append(other)
        text = ""
        for part in sorted(parts, key=lambda p: p.start or 0):
            text = text[: part.start].ljust(part.start or 0) + part.text
        return text

    def view(self, hit: Hit, quote: str = "") -> dict:
        """What the viewer shows for a passage: a PDF page as a PNG with `quote` (default: the passage)
        highlighted, {"kind": "page", "png", "boxes"}; any other file, the text around the passage,
        {"kind": "text", "text", "span"}; {"kind": "missing"} when the file is gone or unreadable."""
        quote = quote or " ".join(hit.text.split())
        if not os.path.isfile(hit.source):
            return {"kind": "missing"}
        try:
            suffix = Path(hit.source).suffix.lower()
            if suffix == ".pdf" and hit.page:  # a scanned page shows as scanned: no text layer to highlight
                png, boxes = viewer.page_image(hit.source, hit.page, quote)
                return {"kind": "page", "png": png, "boxes": boxes}
            if suffix in IMAGE_TYPES:  # a photo or scan: the image itself (OCR has no offsets)
                return {"kind": "page", "png": viewer.image_page(hit.source, hit.page or 1), "boxes": []}
            text = self._stored_text(hit)  # what was indexed: no loader (nor OCR) runs in the app's process
            base = max(0, (hit.start or 0) - 200)
            where = viewer.find_words(text[base:], quote)
            if where is None:
                return {"kind": "text", "text": hit.text, "span": None}
            shown, span = viewer.in_context(text, base + where[0], base + where[1])
            return {"kind": "text", "text": shown, "span": span}
        except Exception as exc:  # changed on disk since it was indexed, damaged, ...
            return {"kind": "missing", "why": f"{type(exc).__name__}: {str(exc)[:120]}"}

    def evaluate(self, qa: list[dict], k: int = 5) -> dict[str, dict]:
        """hit@1, hit@k and MRR of each retrieval mode on a QA set (rag/evaluate.py)."""
        with store_errors(self.settings):
            return evaluate.evaluate(self.library, qa, k)

    def check_answers(self, qa: list[dict], limit: int) -> tuple[int, int]:
        """(answers whose citations all resolve, answers asked) for the first `limit` questions."""
        with store_errors(self.settings):
            return evaluate.citations_resolve(self._answerer(), qa, limit)

    def snapshot(self) -> dict:
        """What the collection holds, for comparisons (tests, bench/crash.py)."""
        with store_errors(self.settings):
            return self.library.snapshot()


def _stored_hit(cid: str, text: str, meta: dict) -> Hit:
    return Hit(text, meta.get("source", ""), meta.get("page"), 0.0, cid, meta.get("section"), meta.get("start"),
               bool(meta.get("ocr")))


def load_embedder(settings: Settings):
    """The embedding model `settings` name, to share between Hearth objects (the app's sessions)."""
    from ingest.embedding import Embedder

    return Embedder.from_settings(settings)


def saved_chats(settings: Settings) -> Chats:
    """The saved chats of settings.home, without opening a collection (close it, or use `with`)."""
    return Chats(settings)


# --- the model server (no collection needed) -------------------------------------------------------
def model_server(settings: Settings) -> llm_server.ServerInfo | None:
    """The server answers come from: HEARTH_LLM_URL, or the one Hearth started, or None."""
    return llm_server.current(settings)


def model_server_status(settings: Settings, info: llm_server.ServerInfo, timeout: float = 2.0):
    """(answering | busy | starting | down, its model names when answering)."""
    return llm_server.status(settings, info, timeout)


@dataclass
class PassageBudget:
    """How many passage tokens go into a question's prompt for a server, and why."""
    tokens: int
    prompt_tokens_per_s: float | None  # the server's measured prompt speed; None: not measured
    first_token_s: float  # HEARTH_FIRST_TOKEN_S
    basis: str  # measured (from the speed), model (what the default model reads closely), setting
    # (HEARTH_CONTEXT_TOKENS), engine (its default), context (all that fit)
    # With a measured speed: when the first token comes with a full budget (retrieval.budget_for's
    # arithmetic). Past first_token_s only where even one passage's worth takes longer.
    expected_first_token_s: float | None = None

    def describe(self) -> str:
        """One line for people: "prompt 88 tokens/s; passages up to 247 tokens for a first token within 5 s"."""
        speed = f"prompt {self.prompt_tokens_per_s:,.0f} tokens/s" if self.prompt_tokens_per_s else "prompt speed not measured"
        late = self.expected_first_token_s
        if self.basis == "model":  # sized from a measured speed, so `late` is known
            why = f", what the model reads closely (a first token in ~{late:.1f} s; more passages made its answers worse)"
        else:
            why = {"measured": f" for a first token within {self.first_token_s:g} s", "setting": " (HEARTH_CONTEXT_TOKENS)",
                   "engine": " (the engine's default)", "context": " (all that fit the context)"}[self.basis]
        if self.basis == "measured" and late is not None and late > self.first_token_s + 0.05:
            why = f", the least sent: a first token in ~{late:.1f} s, not within {self.first_token_s:g} s"
        return f"{speed}; passages up to {self.tokens:,} tokens{why}"

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "prompt_tokens_per_s": self.prompt_tokens_per_s,
                "first_token_s": self.first_token_s, "basis": self.basis,
                "expected_first_token_s": self.expected_first_token_s}


def passage_budget(settings: Settings, info: llm_server.ServerInfo | None, measure: bool = True) -> PassageBudget:
    """The passage budget answers from `info` get (rag/retrieval.budget_for), with the prompt speed
    it was sized from. A remote server's speed is measured here the first time in this process
    (`measure`: False for a server known not to answer: what was measured already is used)."""
    from . import retrieval

    if measure:
        info = llm_server.with_prompt_speed(settings, info)
    speed = info.prompt_tokens_per_s if info is not None else None
    tokens, basis = retrieval.budget_and_basis(settings, info)
    expected = (round(retrieval.FIRST_TOKEN_FIXED_S + (tokens + retrieval.PROMPT_FIXED_TOKENS) / speed, 2)
                if speed else None)
    return PassageBudget(tokens, speed, settings.first_token_s, basis, expected)


def start_model_server(settings: Settings, wait: bool = True, on_wait=None) -> llm_server.ServerInfo:
    """Start Hearth's own server (llama.cpp on a CPU, vLLM with an NVIDIA GPU), or return the running one."""
    return llm_server.start(settings, wait=wait, on_wait=on_wait)


def stop_model_server(settings: Settings) -> bool:
    return llm_server.stop(settings)


def model_server_log(settings: Settings, lines: int = 40) -> str:
    info = llm_server.current(settings)
    logs_dir = settings.home / "logs"
    logs = sorted(logs_dir.glob("llm-*.log"), key=os.path.getmtime) if logs_dir.is_dir() else []
    log = info.log if info and info.log else (str(logs[-1]) if logs else None)
    return llm_server.tail(log, lines) if log else ""


def available_models(settings: Settings) -> list[llm_server.ModelChoice]:
    """The models that can answer: GGUF files and vLLM model folders in the models folder, or the
    remote server's own list (HEARTH_LLM_URL)."""
    return llm_server.available_models(settings)


def switch_model(settings: Settings, choice: llm_server.ModelChoice, wait: bool = True, on_wait=None):
    """Restart Hearth's own server with `choice` (a remote model is picked per request instead)."""
    return llm_server.switch(settings, choice, wait=wait, on_wait=on_wait)


def free_port(preferred: int) -> int:
    return llm_server.free_port(preferred)


def check_model_server_url(url: str, settings: Settings) -> str:
    """A model server URL typed by a user: on this machine, HEARTH_LLM_URL's host, or allowed by
    HEARTH_LLM_ALLOWED_HOSTS; ServerError otherwise."""
    return llm_server.check_url(url, settings)


def is_local(address: str) -> bool:
    return llm_server.is_local(address)
