"""An OpenAI-compatible endpoint that fails on purpose, on 127.0.0.1: the failures a real server has
(answers with an HTML error page, broken JSON, a 500, silence, a stream that stalls or is cut off)
on demand. Real model servers (llama.cpp, vLLM) are what every other answer test talks to.

    with FaultyServer() as server:
        url = server.url("cut")   # -> http://127.0.0.1:PORT/cut/v1

"scripted" is no failure either: it answers each prompt with the first of `script`'s (marker, answer)
pairs whose marker the prompt holds, streamed like "hostile" (the model's side of a test of what
Hearth does with what the model writes; a request that is not streamed gets the same text whole, and
/completions, where Hearth measures a server's prompt speed, is answered as in "timed").

Two modes are no failure but a clock: "timed" answers a one-token completion after a delay of its
prompt's words / tokens_per_s (plus first_extra_s on the first request), with the words as
usage.prompt_tokens; "chatonly" does the same on /chat/completions and has no /completions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("html", "badjson", "wrongshape", "http500", "binary", "silent", "stall", "cut")
# Not a failure: a complete answer whose text carries HTML, script and a javascript: link.
HOSTILE_ANSWER = ("Receipts are kept for six years [1]. <script>window.__pwned = 'answer'</script> "
                  "<img src=y onerror=\"window.__pwned = 'answer-img'\"> [details](javascript:window.__pwned='link')")


def _chunk(text: str) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "faulty",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status: int, ctype: str, body: bytes):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # /v1/models: the health check sees a server that is up
        self.server.authorizations.append(self.headers.get("Authorization"))
        self._send(200, "application/json", b'{"object": "list", "data": [{"id": "faulty"}]}')

    def do_POST(self):
        self.server.authorizations.append(self.headers.get("Authorization"))
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        mode = self.path.strip("/").split("/")[0]
        text = self.server.answer  # what "hostile" streams; "scripted" picks its own
        if mode in ("timed", "chatonly"):
            return self._timed(mode, json.loads(body))
        if mode == "scripted" and not self.path.endswith("/chat/completions"):
            return self._timed("timed", json.loads(body))  # a prompt-speed measurement: timed, like a model
        if mode == "scripted":
            request = json.loads(body)
            prompt = "\n".join(m["content"] for m in request["messages"])
            with self.server.lock:
                self.server.prompts.append(prompt)
            text = next((answer for marker, answer in self.server.script if marker in prompt), "I don't know.")
            if not request.get("stream"):
                choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                return self._send(200, "application/json", json.dumps(
                    {"id": "x", "object": "chat.completion", "created": 0, "model": "scripted", "choices": [choice]}).encode())
            mode = "hostile"
        if mode == "html":
            return self._send(200, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>")
        if mode == "http500":
            return self._send(500, "application/json", b'{"error": {"message": "CUDA error: out of memory"}}')
        if mode == "binary":
            return self._send(200, "application/octet-stream", bytes(range(256)) * 8)
        if mode == "silent":  # never answers; the client's timeout must end the wait
            time.sleep(self.server.hold_s)
            self.server.holds_ended += 1
            return self._send(200, "text/plain", b"")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if mode == "hostile":  # the server's answer (HOSTILE_ANSWER unless set), a piece at a time
            for i in range(0, len(text), 24):
                self.wfile.write(_chunk(text[i : i + 24]))
                self.wfile.flush()
                time.sleep(self.server.delay_s)
            final = json.loads(_chunk("")[6:])
            final["choices"][0]["finish_reason"] = "stop"
            self.wfile.write(b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n")
        elif mode == "badjson":
            self.wfile.write(b"data: {\"choices\": [{\"delta\": {\"content\": \"Hel\n\n" + b"data: }}}{{{\n\n")
        elif mode == "wrongshape":
            self.wfile.write(b'data: {"unexpected": true, "choices": "none"}\n\n')
        else:  # stall or cut: a few words, then silence or a dropped connection
            for word in ("The ", "boiler ", "is "):
                self.wfile.write(_chunk(word))
                self.wfile.flush()
                time.sleep(0.05)
            if mode == "stall":
                time.sleep(self.server.hold_s)
                self.server.holds_ended += 1
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)


    def _timed(self, mode: str, request: dict):
        chat = self.path.endswith("/chat/completions")
        if mode == "chatonly" and not chat:
            return self._send(404, "application/json", b'{"error": {"message": "Not Found"}}')
        prompt = "\n".join(m["content"] for m in request["messages"]) if chat else request["prompt"]
        with self.server.lock:
            self.server.prompts.append(prompt)
            extra = self.server.first_extra_s if len(self.server.prompts) == 1 else 0.0
        tokens = len(prompt.split())
        time.sleep(tokens / self.server.tokens_per_s + extra)
        choice = {"index": 0, "finish_reason": "length",
                  **({"message": {"role": "assistant", "content": "The"}} if chat else {"text": "The"})}
        body = {"id": "x", "object": "chat.completion" if chat else "text_completion", "created": 0, "model": "timed",
                "choices": [choice], "usage": {"prompt_tokens": tokens, "completion_tokens": 1, "total_tokens": tokens + 1}}
        self._send(200, "application/json", json.dumps(body).encode())


class FaultyServer:
    def __init__(self, hold_s: float = 30.0, answer: str = HOSTILE_ANSWER, delay_s: float = 0.0,
                 tokens_per_s: float = 100.0, first_extra_s: float = 0.0, script: list[tuple[str, str]] = ()):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.tokens_per_s, self.httpd.first_extra_s = tokens_per_s, first_extra_s  # the timed modes' clock
        self.httpd.prompts, self.httpd.lock = [], threading.Lock()  # every prompt the timed modes were sent
        self.httpd.hold_s = hold_s
        self.httpd.answer, self.httpd.delay_s = answer, delay_s
        self.httpd.script = list(script)  # the scripted mode's (marker, answer) pairs
        self.httpd.authorizations = []  # the Authorization header of every request (None: none sent)
        self.httpd.holds_ended = 0  # silent and stall requests whose hold_s ran out
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{mode}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
