"""`hearth api`: the library as an OpenAI-compatible server on 127.0.0.1, for chat clients.

    client = openai.OpenAI(base_url="http://127.0.0.1:8502/v1", api_key=HEARTH_API_TOKEN or "none")
    client.chat.completions.create(model="hearth:default", messages=[...], stream=True)

Each collection is a model, `hearth:<collection>`. A completion is Hearth.ask's answer: the last user
message is the question, the user/assistant turns before it its history (a follow-up is condensed as
in the app). The reply's text keeps the model's [n] markers and ends with the sources they name; a
`citations` field (on the last chunk of a stream) holds them as checked against the passages,
`sentences` each sentence's mark, `lead` the passage span closest to the question, `mismatch` whether the
answer's main claim went unsupported (then the text ends with a note saying so, and the lead quote), and
`sources` the passages themselves. System messages are not passed on: the grounded prompt is Hearth's.
`max_tokens` can only lower HEARTH_ANSWER_MAX_TOKENS; a client that closes a stream stops the answer.

Nothing here talks to anything but the store and the local model server (rag/llm_server.py).
"""

from __future__ import annotations

import gc
import json
import threading
import time
import uuid

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ingest.errors import ModelMismatch, StoreBusy, StoreError
from ingest.settings import Settings

from . import api

PREFIX = "hearth:"
MAX_BODY = 1_000_000  # bytes: a chat request is a few KB; a bigger one is refused before it is read
MAX_QUESTION = 4000  # characters of the question itself
HANG_UP_POLL_S = 0.2  # how often a non-streamed answer looks whether its client is still there


class RequestError(Exception):
    def __init__(self, status: int, message: str, code: str = "invalid_request", kind: str = "invalid_request_error",
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.kind, self.headers = status, code, kind, headers


def error_response(exc: RequestError) -> JSONResponse:
    """The OpenAI error shape, which its clients turn into BadRequestError, NotFoundError, ..."""
    return JSONResponse({"error": {"message": str(exc), "type": exc.kind, "param": None, "code": exc.code}},
                        status_code=exc.status, headers=exc.headers)


STORE_ERRORS = (StoreError, ModelMismatch)


def store_error(exc: Exception) -> JSONResponse:
    """The store down or busy: try again later (503). A collection built with another embedding model:
    a retry can't help (409, and OpenAI's clients are told not to retry)."""
    if isinstance(exc, ModelMismatch):
        return error_response(RequestError(409, str(exc), "embedding_model_mismatch",
                                           headers={"x-should-retry": "false"}))
    if isinstance(exc, StoreBusy):
        return error_response(RequestError(503, str(exc), "store_busy", "server_error", {"Retry-After": "10"}))
    return error_response(RequestError(503, str(exc), "store_unreachable", "server_error"))


def create_app(settings: Settings, embedder=None) -> Starlette:
    embedder = embedder or api.load_embedder(settings)
    embedder.model  # loaded now, not on the first request

    def collection_names() -> list[str]:
        with api.Hearth(settings, embedder=embedder) as lib:
            return [row[0] for row in lib.collections()] or [lib.name]

    def answer(body: dict) -> Reply:
        question, history, _, max_tokens = parse_chat(body)
        max_tokens = min(max_tokens or settings.answer_max_tokens, settings.answer_max_tokens)  # the setting caps
        model = body["model"]
        name = model[len(PREFIX):] if model.startswith(PREFIX) else ""
        if not name or name not in collection_names():
            raise RequestError(404, f"model {model!r} does not exist: GET /v1/models lists this library's "
                                    f"collections as {PREFIX}<collection>", "model_not_found")
        server = api.model_server(settings)
        if server is None:
            raise RequestError(503, "no model server is running: start one with `hearth llm start`",
                               "model_server_down", "server_error")
        lib = api.Hearth(settings, name, embedder=embedder)
        try:
            return Reply(model, lib, lib.ask(question, history, server=server, max_tokens=max_tokens))
        except BaseException:
            lib.close()
            raise

    async def models(request: Request) -> Response:
        try:
            names = await run_in_threadpool(collection_names)
        except STORE_ERRORS as exc:
            return store_error(exc)
        return JSONResponse({"object": "list", "data": [
            {"id": PREFIX + name, "object": "model", "created": 0, "owned_by": "hearth"} for name in names]})

    async def completions(request: Request) -> Response:
        try:
            body = await read_json(request)
            reply = await run_in_threadpool(answer, body)
        except RequestError as exc:
            return error_response(exc)
        except STORE_ERRORS as exc:
            return store_error(exc)
        except ValueError as exc:  # e.g. a collection name the store refuses
            return error_response(RequestError(400, str(exc)))
        if body.get("stream"):
            return EventStream(reply.events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        whole = await whole_unless_gone(request, reply)
        return JSONResponse(whole) if whole is not None else Response(status_code=499)  # nobody to read it

    return Starlette(routes=[Route("/v1/models", models, methods=["GET"]),
                             Route("/v1/chat/completions", completions, methods=["POST"])])


async def whole_unless_gone(request: Request, reply: "Reply") -> dict | None:
    """reply.whole(), unless the client hangs up first: then the model server's stream is closed at
    the next token (as EventStream does for a streamed answer) and None is returned."""
    gone, done = threading.Event(), threading.Event()

    async def watch():
        while not done.is_set():
            if await request.is_disconnected():
                gone.set()
                return
            await anyio.sleep(HANG_UP_POLL_S)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        try:
            return await run_in_threadpool(reply.whole, gone)
        finally:
            done.set()


class EventStream(StreamingResponse):
    """Server-sent events from a generator stepped in worker threads and closed as soon as the response
    ends: when the client goes away (Starlette cancels the response), closing it ends the model
    server's stream, so no more tokens are asked for."""

    def __init__(self, events, **kwargs):
        lock = threading.Lock()

        def step():
            with lock:
                return next(events, None)

        def close():
            with lock:  # a step whose wait was cancelled still runs in its thread: close after its token
                events.close()

        async def pieces():
            while (piece := await run_in_threadpool(step)) is not None:
                yield piece

        super().__init__(pieces(), **kwargs)
        self.close_events = close

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # also when cancelled
                await run_in_threadpool(self.close_events)


class Reply:
    """One answer as a chat completion, whole or as server-sent events. The first piece of text is
    waited for before any status is sent: a model server that fails before writing a word gives a
    503, not a 200 with an empty answer."""

    def __init__(self, model: str, lib: api.Hearth, stream: api.AnswerStream):
        self.model, self.lib, self.stream = model, lib, stream
        self.id, self.created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
        self.deltas = iter(stream)
        self.first = next(self.deltas, None)
        result = stream.result
        if self.first is None and not result.answer:  # the caller closes `lib` on the way out
            retry = {"Retry-After": "10"} if "still starting" in result.error else None
            raise RequestError(503, result.error or "the model server sent no answer", "model_server_down",
                               "server_error", retry)

    def sources_text(self) -> str:
        """The sources the [n] markers name, so the text stands on its own in any chat client."""
        result, folder = self.stream.result, self.lib.folder
        lines = [f"[{c.n}] {api.export.display_path(c.source, folder)}" + (f", page {c.page}" if c.page else "")
                 for c in result.citations]
        text = ("\n\nSources:\n" + "\n".join(lines)) if lines else ""
        if result.mismatch:  # a client shows only this text: the note and what the documents say
            text += f"\n\n({api.MISMATCH_NOTE}" + (f" The closest passage says: {result.lead_text})" if result.lead else ")")
        if result.error:
            text += f"\n\n({result.error})"
        if result.retry is not None:  # the second attempt's text streamed after the first's (rag/answer.py)
            lines = [f"[{c.n}] {api.export.display_path(c.source, folder)}" + (f", page {c.page}" if c.page else "")
                     for c in result.retry.citations]
            text += ("\n\nSources of the second attempt:\n" + "\n".join(lines)) if lines else ""
        return text

    def extra(self) -> dict:
        result = self.stream.result
        return {"citations": [c.to_json() for c in result.citations],
                "sentences": [result.sentence_json(x) for x in result.sentences], "lead": result.lead_json(),
                "mismatch": result.mismatch,
                "sources": [h.to_json() for h in result.passages], "incomplete": result.incomplete,
                "retry": result.retry.to_json() if result.retry else None}

    def whole(self, gone: threading.Event | None = None) -> dict | None:
        """The answer as one chat completion; None if `gone` is set first (the client hung up)."""
        try:
            for _ in self.deltas:
                if gone is not None and gone.is_set():
                    self._stop_reading()
                    return None
            result = self.stream.result
            text = result.answer + (api.RETRY_MARK + result.retry.answer if result.retry else "") + self.sources_text()
            return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}], **self.extra()}
        finally:
            self.lib.close()

    def _event(self, delta: dict, finish: str | None = None, **extra) -> str:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk)}\n\n"

    def events(self):
        finished = False
        try:
            yield self._event({"role": "assistant", "content": self.first or ""})
            for delta in self.deltas:
                yield self._event({"content": delta})
            if tail := self.sources_text():
                yield self._event({"content": tail})
            yield self._event({}, "stop", **self.extra())
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:  # closed early (the client left): stop reading the model server's stream
                self._stop_reading()
            self.lib.close()

    def _stop_reading(self):
        self.deltas.close()
        # openai's Stream and its generator refer to each other: its connection is closed only once
        # the cycle collector frees them, so run it now (~0.2 s, and only when a client hangs up).
        gc.collect()


async def read_json(request: Request) -> dict:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestError(413, f"the request body is {int(declared):,} bytes; at most {MAX_BODY:,} are accepted",
                           "request_too_large")
    data = bytearray()
    async for piece in request.stream():
        data += piece
        if len(data) > MAX_BODY:
            raise RequestError(413, f"the request body is over {MAX_BODY:,} bytes", "request_too_large")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep, e.g. "[[[[..."
        raise RequestError(400, "the request body is not JSON", "invalid_json") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return body


def _text(content) -> str:
    """A message's content: a string, or OpenAI's list of parts (the text parts are kept)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(t, str) for t in texts):
            return " ".join(texts)
    raise RequestError(400, "each message's content must be a string or a list of text parts, "
                            '{"type": "text", "text": "<a string>"}')


def parse_chat(body: dict) -> tuple[str, list[tuple[str, str]], bool, int | None]:
    """(question, earlier (question, answer) turns, stream, max_tokens) from a chat completion request."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise RequestError(400, f"model is required: GET /v1/models lists them ({PREFIX}<collection>)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "messages is required: a list ending with the user's question")
    turns = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            raise RequestError(400, "each message needs a role (system, user or assistant) and content")
        if m["role"] in ("user", "assistant"):
            turns.append((m["role"], _text(m.get("content") or "")))
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise RequestError(400, "the last message must be the user's question")
    question = turns[-1][1]
    if len(question) > MAX_QUESTION:
        raise RequestError(400, f"the question is {len(question):,} characters; at most {MAX_QUESTION:,}")
    history, asked = [], None
    for role, text in turns[:-1]:
        if role == "user":
            asked = text
        elif asked is not None:
            history.append((asked, text))
            asked = None
    stream = body.get("stream", False)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if not isinstance(stream, bool):
        raise RequestError(400, "stream must be true or false")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise RequestError(400, "max_tokens must be a positive whole number")
    return question, history, stream, max_tokens
