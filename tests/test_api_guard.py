"""What a web page, a malformed request, a broken store or a client that hangs up can do to `hearth api`
and `hearth mcp --http`: real server processes, driven with httpx, the openai client and the MCP SDK's
client. The model server is a stand-in (FakeModel, below: a real HTTP server that streams numbered
words and counts what it sent), so that a stream can be long and its end observed."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest

from conftest import free_port
from ingest.libraries import open_library
from ingest.pipeline import Ingestor
from ingest.settings import load_settings
from test_servers import _start, _stop

pytestmark = pytest.mark.slow
TOKEN = "guard-token-8c2e"
GNOME = "What is the garden gnome called?"
CAP = 1000  # HEARTH_ANSWER_MAX_TOKENS of the API under test
EVIL = "https://evil.example"


class FakeModel:
    """An OpenAI-compatible model server on 127.0.0.1 that streams "w0 w1 w2 ..." (as many words as
    max_tokens asks, up to 2 x CAP, `delay` seconds apart) and records each stream's request, the words it sent and
    whether the client hung up before the end. A request that does not stream (the claim check's) gets "No"."""

    def __init__(self):
        fake = self
        self.delay, self.streams = 0.0, []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, body: dict):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # /v1/models: the health check
                self._json({"object": "list", "data": [{"id": "fake"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not body.get("stream"):
                    return self._json({"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
                                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "No"},
                                                    "finish_reason": "stop"}]})
                record = {"body": body, "sent": 0, "hung_up": False, "ended": threading.Event()}
                fake.streams.append(record)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for i in range(min(body.get("max_tokens") or 16, 2 * CAP)):
                        self.wfile.write(_chunk(f"w{i} "))
                        self.wfile.flush()
                        record["sent"] += 1
                        time.sleep(fake.delay)  # how fast this model writes
                    self.wfile.write(_chunk("", "stop") + b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    record["hung_up"] = True
                finally:
                    record["ended"].set()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _chunk(text: str, finish: str | None = None) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


@pytest.fixture(scope="module")
def home(tmp_path_factory, embedder):
    """A library with one document, and a collection "other" recorded as built with another embedding model."""
    docs, home = tmp_path_factory.mktemp("docs"), tmp_path_factory.mktemp("home")
    (docs / "garden.md").write_text("# Garden\n\nThe garden gnome is called Bartholomew and guards the tomatoes.\n")
    lib = open_library(load_settings(home=home))
    lib.embedder = embedder
    Ingestor(lib).sync([docs])
    lib.close()
    # The same weights under another name and folder stand in for "another model".
    other_model = tmp_path_factory.mktemp("models") / "another-embedding-model"
    shutil.copytree(embedder.path, other_model)
    other = open_library(load_settings(home=home, embed_model=str(other_model)), "other")
    Ingestor(other).sync([docs])
    other.close()
    return home


@pytest.fixture(scope="module")
def fake_model():
    fake = FakeModel()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def api(home, fake_model):
    """`hearth api` with a token, answering from FakeModel: its base URL and port."""
    # The model named, as a user who set it would: a collection built with another is refused (409).
    proc, port = _start(home, "api", HEARTH_API_TOKEN=TOKEN, HEARTH_LLM_URL=fake_model.url,
                        HEARTH_ANSWER_MAX_TOKENS=str(CAP), HEARTH_EMBED_MODEL="all-MiniLM-L6-v2")
    yield f"http://127.0.0.1:{port}/v1", port
    _stop(proc)


def _post(url: str, body, **headers) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", **headers}
    return httpx.post(f"{url}/chat/completions", content=content, headers=headers, timeout=120)


def _error(reply: httpx.Response, status: int, code: str | None = None) -> str:
    """The message of an error reply in OpenAI's shape, after checking its status (and code)."""
    assert reply.status_code == status, reply.text[:500]
    error = reply.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error) and (code is None or error["code"] == code), error
    return error["message"]


def _ask(**extra) -> dict:
    return {"model": "hearth:default", "messages": [{"role": "user", "content": GNOME}], **extra}


# --- web pages ----------------------------------------------------------------------------------------
def test_api_refuses_foreign_origins_and_non_json_posts_even_with_the_token(api, fake_model):
    url, port = api
    asked = len(fake_model.streams)
    # What a page at evil.example can send from the user's browser without a CORS preflight.
    _error(_post(url, json.dumps(_ask()).encode(), **{"Content-Type": "text/plain", "Origin": EVIL}), 403,
           "forbidden_origin")
    _error(_post(url, _ask(), **{"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    _error(_post(url, _ask(), **{"Content-Type": "application/x-www-form-urlencoded"}), 415)
    _error(_post(url, _ask(), Origin=EVIL), 403)
    for origin in ("null", f"http://127.0.0.1:{port + 1}", f"https://127.0.0.1:{port}", f"http://evil.example:{port}"):
        _error(httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {TOKEN}", "Origin": origin}), 403)
    # A CORS preflight from the page: refused, and nothing in it lets the browser go on.
    preflight = httpx.options(f"{url}/chat/completions", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 403
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-allow")]
    assert len(fake_model.streams) == asked  # none of them reached the model

    # This server's own origins, JSON with a charset, and clients that send no Origin are served.
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"):
        own = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {TOKEN}", "Origin": origin})
        assert own.status_code == 200 and own.json()["data"]
    reply = _post(url, _ask(max_tokens=3), **{"Content-Type": "application/json; charset=utf-8"})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"].startswith("w0 w1 w2")
    client = openai.OpenAI(base_url=url, api_key=TOKEN, max_retries=0)
    assert client.chat.completions.create(**_ask(max_tokens=2)).choices[0].message.content.startswith("w0 w1")


def test_mcp_over_http_refuses_foreign_origins_and_non_json_posts(home):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    proc, port = _start(home, "mcp", "--http")  # no token: the checks hold without one
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async def main():  # the SDK's client (POSTs JSON, GET and DELETE with no body) still works
            async with Client(streamable_http_client(url)) as client:
                found = (await client.call_tool("search", {"query": "garden gnome", "k": 1})).structured_content
                assert "Bartholomew" in found["result"][0]["text"]

        asyncio.run(main())
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "page", "version": "1"}}}
        accept = {"Accept": "application/json, text/event-stream"}
        for origin in (EVIL, f"http://127.0.0.1:{port + 1}"):  # (the SDK alone lets any 127.0.0.1 port in)
            _error(httpx.post(url, json=initialize, headers={**accept, "Origin": origin}), 403, "forbidden_origin")
        _error(httpx.post(url, content=json.dumps(initialize), headers={**accept, "Content-Type": "text/plain"}),
               415, "unsupported_media_type")
        preflight = httpx.options(url, headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
        own = httpx.post(url, json=initialize, headers={**accept, "Origin": f"http://localhost:{port}"})
        assert own.status_code == 200
    finally:
        _stop(proc)


def test_a_client_that_hangs_up_stops_a_whole_answer_too(api, fake_model):
    """The same without streaming: the client gives up waiting for the whole answer after 2 s."""
    url, _ = api
    warm = httpx.post(f"{url}/chat/completions", json=_ask(max_tokens=1), timeout=120,  # the search model loaded:
                      headers={"Authorization": f"Bearer {TOKEN}"})  # run alone, that took the 2 s below
    assert warm.status_code == 200
    fake_model.delay = 0.02
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/chat/completions", json=_ask(), timeout=httpx.Timeout(120, read=2),
                       headers={"Authorization": f"Bearer {TOKEN}"})
        stream = fake_model.streams[-1]
        assert stream["ended"].wait(60), "the model server is still being read from"
        assert stream["hung_up"] and stream["sent"] < CAP // 2, stream["sent"]
    finally:
        fake_model.delay = 0.0


# --- malformed requests, the store ---------------------------------------------------------------------
def test_malformed_bodies_are_a_400_and_another_embedding_model_a_409(api, fake_model):
    url, _ = api
    bad_part = _ask(messages=[{"role": "user", "content": [{"type": "text", "text": 42}]}])
    assert "text parts" in _error(_post(url, bad_part), 400)
    bad_part["messages"][0]["content"][0]["text"] = None
    _error(_post(url, bad_part), 400)
    assert "not JSON" in _error(_post(url, b"[" * 100_000), 400, "invalid_json")
    assert "not JSON" in _error(_post(url, b'{"model": ' * 50_000), 400, "invalid_json")

    # A collection built with another embedding model: said so, and the openai client is told not to retry.
    client = openai.OpenAI(base_url=url, api_key=TOKEN)  # (its default: 2 retries)
    with pytest.raises(openai.ConflictError, match="another-embedding-model") as failed:
        client.chat.completions.create(**_ask(model="hearth:other"))
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert failed.value.body["code"] == "embedding_model_mismatch"
    assert "w0" in client.chat.completions.create(**_ask(max_tokens=2)).choices[0].message.content  # still serving


def test_store_unreachable_is_a_503(home):
    closed = free_port()  # no Chroma server there
    proc, port = _start(home, "api", HEARTH_CHROMA_URL=f"http://127.0.0.1:{closed}")
    try:
        url = f"http://127.0.0.1:{port}/v1"
        assert f"127.0.0.1:{closed}" in _error(httpx.get(f"{url}/models", timeout=120), 503, "store_unreachable")
        _error(_post(url, _ask()), 503, "store_unreachable")
    finally:
        _stop(proc)


# --- the model server ---------------------------------------------------------------------------------
def test_max_tokens_is_capped_by_the_setting(api, fake_model):
    url, _ = api
    client = openai.OpenAI(base_url=url, api_key=TOKEN, max_retries=0)
    for asked, sent in ((7, 7), (100_000, CAP)):
        reply = client.chat.completions.create(**_ask(max_tokens=asked))
        assert fake_model.streams[-1]["body"]["max_tokens"] == sent
        assert len(reply.choices[0].message.content.split("\n")[0].split()) == sent


def test_a_client_that_hangs_up_stops_the_answer(api, fake_model):
    """The fake model would take CAP x 20 ms = 20 s to write the whole answer: once the client has read
    a few words and closed the connection, the API closes the model's stream long before that."""
    url, _ = api
    fake_model.delay = 0.02
    try:
        with httpx.stream("POST", f"{url}/chat/completions", json=_ask(stream=True), timeout=120,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
            assert reply.status_code == 200
            events = 0
            for line in reply.iter_lines():
                events += line.startswith("data: ")
                if events == 5:
                    break  # leaving the block closes the connection mid-stream
        stream = fake_model.streams[-1]
        assert stream["ended"].wait(60), "the model server is still being read from"
        assert stream["hung_up"] and stream["sent"] < CAP // 2, stream["sent"]
    finally:
        fake_model.delay = 0.0
