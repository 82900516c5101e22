"""One origin rule (rag/origin.py) for the three servers a browser could reach: the app behind
`hearth serve` (rag/app_guard.AppGuard), `hearth api` and `hearth mcp --http` (rag/serving.Guard, as
each is served). One table of (bound to, Host, Origin, expected) runs against all three; the servers
themselves are driven in a browser by tests/test_app_guard.py and tests/test_api_guard.py."""

from __future__ import annotations

import asyncio

import pytest

from ingest.settings import load_settings
from rag.app_guard import AppGuard
from rag.origin import is_own, own_names
from rag.serving import Guard

P = 8611
TOKEN = "s3cret"
# (bound to / allowed address, Host, Origin, passes)
TABLE = [
    ("127.0.0.1", f"127.0.0.1:{P}", None, True),  # curl, SDK, openai and MCP clients send no Origin
    ("127.0.0.1", f"localhost:{P}", f"http://localhost:{P}", True),  # the server's own page
    ("127.0.0.1", f"[::1]:{P}", f"http://[::1]:{P}", True),
    ("127.0.0.1", f"LOCALHOST:{P}", None, True),  # host names are case-blind
    ("127.0.0.1", f"evil.example:{P}", None, False),  # a name rebound to 127.0.0.1
    ("127.0.0.1", f"evil.example:{P}", f"http://evil.example:{P}", False),
    ("127.0.0.1", f"127.0.0.1:{P}", f"http://evil.example:{P}", False),  # a page elsewhere posting here
    ("127.0.0.1", f"127.0.0.1:{P}", f"http://127.0.0.1:{P + 1}", False),  # another local server's page
    ("127.0.0.1", f"127.0.0.1:{P}", f"https://127.0.0.1:{P}", False),  # not this server's scheme
    ("127.0.0.1", f"127.0.0.1:{P}", "null", False),  # a sandboxed page or a file://
    ("127.0.0.1", f"127.0.0.1:{P + 1}", None, False),  # another port
    ("127.0.0.1", "127.0.0.1", None, False),  # no port: 80
    ("127.0.0.1", "127.0.0.1:x", None, False),
    ("127.0.0.1", None, None, False),
    ("hearth.lan", f"hearth.lan:{P}", f"http://hearth.lan:{P}", True),  # an address allowed on purpose
    ("hearth.lan", f"127.0.0.1:{P}", None, True),
    ("hearth.lan", f"other.lan:{P}", None, False),
]
# Bound to every interface: `hearth api`/`mcp --http` take any Host (they must have a token); the app
# has no token, so a Host must still name it.
WILDCARD = [("0.0.0.0", f"192.168.1.20:{P}", None, {"app": False, "api": True, "mcp": True}),
            ("0.0.0.0", f"127.0.0.1:{P}", f"http://evil.example:{P}", {"app": False, "api": False, "mcp": False})]


async def _downstream(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _guard(server: str, bound: str):
    if server == "app":
        return AppGuard(_downstream, bound)
    settings = load_settings(api_address=bound, api_token=TOKEN if bound == "0.0.0.0" else "")
    return Guard(_downstream, settings, bound, P)  # as serving.run wraps the API's and the MCP app


def _status(guard, host: str | None, origin: str | None, kind: str = "http") -> int:
    headers = [(b"authorization", f"Bearer {TOKEN}".encode())]
    headers += [(b"host", host.encode())] if host is not None else []
    headers += [(b"origin", origin.encode())] if origin is not None else []
    scope = {"type": kind, "scheme": "http" if kind == "http" else "ws", "method": "GET", "path": "/",
             "headers": headers, "server": ("127.0.0.1", P)}
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    asyncio.run(guard(scope, receive, send))
    return sent[0].get("status", 403) if sent[0]["type"] == "http.response.start" else 403


@pytest.mark.parametrize("server", ["app", "api", "mcp"])
@pytest.mark.parametrize("bound, host, origin, passes", TABLE)
def test_one_rule_for_every_server(server, bound, host, origin, passes, monkeypatch):
    monkeypatch.delenv("HEARTH_API_TOKEN", raising=False)
    status = _status(_guard(server, bound), host, origin)
    assert (status == 200) == passes, (server, bound, host, origin, status)
    if not passes and server != "app":  # the API says which header gave the request away
        assert status == (421 if not is_own(host, None, own_names(bound), P) else 403)


@pytest.mark.parametrize("server", ["app", "api", "mcp"])
@pytest.mark.parametrize("bound, host, origin, passes", WILDCARD)
def test_bound_to_every_interface(server, bound, host, origin, passes, monkeypatch):
    monkeypatch.delenv("HEARTH_API_TOKEN", raising=False)
    assert (_status(_guard(server, bound), host, origin) == 200) == passes[server]


def test_a_websocket_needs_the_apps_own_origin_and_the_api_has_none():
    app = _guard("app", "127.0.0.1")
    assert _status(app, f"127.0.0.1:{P}", f"http://127.0.0.1:{P}", "websocket") == 200  # reaches Streamlit
    assert _status(app, f"127.0.0.1:{P}", None, "websocket") == 403  # browsers always send one: none is not a browser's
    assert _status(app, f"127.0.0.1:{P}", f"http://evil.example:{P}", "websocket") == 403
    assert _status(_guard("api", "127.0.0.1"), f"127.0.0.1:{P}", f"http://127.0.0.1:{P}", "websocket") == 403
