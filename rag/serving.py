"""Who may talk to Hearth's own HTTP servers (`hearth api`, `hearth mcp --http`), and running them.

They listen on 127.0.0.1 unless HEARTH_API_ADDRESS names another address on purpose, and then only
with HEARTH_API_TOKEN set. Every request must pass rag/origin.py's rule (the app's too): a Host
naming this machine, no Origin but the server's own. With a token set it must carry it as a Bearer
token. A POST that is not `application/json` (what an HTML form or a "simple" fetch sends, without
a CORS preflight) is refused as well.
"""

from __future__ import annotations

import hmac
import json

from ingest.settings import Settings

from .llm_server import is_local
from .origin import WILDCARDS, own_names, refusal, scheme_of


def check_address(settings: Settings, host: str) -> None:
    """ValueError, in words, for an address that would let other machines in without being asked to."""
    if is_local(host):
        return
    if host != settings.api_address:
        raise ValueError(f"listening on {host} lets other machines read your documents: set "
                         f"HEARTH_API_ADDRESS={host} (and HEARTH_API_TOKEN) to allow it")
    if not settings.api_token:
        raise ValueError(f"HEARTH_API_ADDRESS={host} lets other machines in: set HEARTH_API_TOKEN as well, "
                         "so that only clients holding it are answered")


class Guard:
    """ASGI middleware: a Host header naming this server, no Origin but its own, JSON POSTs, and the
    Bearer token when one is set."""

    def __init__(self, app, settings: Settings, host: str, port: int):
        self.app, self.token, self.port = app, settings.api_token.encode(), port
        self.names = own_names(host, settings.api_address)
        self.any_host = host in WILDCARDS and bool(self.token)  # reached by any of the machine's addresses

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":  # neither server has one: refused before the app sees it
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            why = refusal(headers.get(b"host", b"").decode("latin-1"), headers.get(b"origin", b"").decode("latin-1"),
                          self.names, self.port, schemes=(scheme_of(scope),), any_host=self.any_host)
            if why == "host":
                return await _refuse(send, 421, "this server answers only requests addressed to this machine "
                                                "(Host header)", "wrong_host")
            if why == "origin":  # a browser names the page's origin; curl, SDK and openai clients send none
                return await _refuse(send, 403, "this server answers no web page but its own (Origin header)",
                                     "forbidden_origin")
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if scope["method"] == "POST" and ctype != b"application/json":
                return await _refuse(send, 415, "the request body must be JSON (Content-Type: application/json)",
                                     "unsupported_media_type")
            given = headers.get(b"authorization", b"")
            if self.token and not hmac.compare_digest(given, b"Bearer " + self.token):
                return await _refuse(send, 401, "a valid HEARTH_API_TOKEN is needed (Authorization: Bearer ...)",
                                     "invalid_api_key")
        await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str, code: str):
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def run(app, settings: Settings, host: str, port: int):
    """Serve `app` behind the guard until Ctrl-C (uvicorn; its access log off: questions are private)."""
    import uvicorn

    check_address(settings, host)
    uvicorn.run(Guard(app, settings, host, port), host=host, port=port, log_level="warning", access_log=False)
