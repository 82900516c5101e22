"""Who may talk to Hearth's HTTP servers: the one rule the app (rag/app_guard.py, and app.py under
plain `streamlit run`), `hearth api` and `hearth mcp --http` (rag/serving.py) all apply.

A request is this machine's own when its Host names the server (a loopback name, or the address it
was allowed to listen on, at the server's port) and its Origin, if it has one, is the server's own
origin (the same scheme, one of those names, the same port). A web page that rebinds its own host
name to 127.0.0.1 fails the first; a page elsewhere sending requests from the user's browser (it
always names its origin on a cross-site request and on every websocket) fails the second; curl, SDK,
openai and MCP clients send no Origin. A server bound to every interface with a token (only `hearth
api` and `hearth mcp --http` have one) accepts any Host: it may be reached by any of the machine's
addresses, and the token guards it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "[::]")
DEFAULT_PORTS = {"http": 80, "https": 443}


def own_names(*addresses: str | None) -> set[str]:
    """The host names a server answers to: the loopback names and the addresses it was allowed to use."""
    return {n.strip("[]").lower() for n in (*LOOPBACK_NAMES, *addresses) if n and n not in WILDCARDS}


def _split_host(value: str) -> tuple[str, int | None]:
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or "").lower(), parts.port
    except ValueError:  # "evil:port" with a bad port, or other junk
        return "", None


def refusal(host: str | None, origin: str | None, names: set[str], port: int | None = None, *,
            schemes: tuple[str, ...] = ("http",), origin_required: bool = False,
            any_host: bool = False) -> str | None:
    """None for a request of this machine's own; else what gives it away: "host" or "origin".
    `port`: the server's (None: not known, any); `schemes`: those its own pages are served with."""
    if not any_host:
        name, host_port = _split_host(host or "")
        if name not in names or (port is not None and (host_port or DEFAULT_PORTS["http"]) != port):
            return "host"
    if not origin:
        return "origin" if origin_required else None
    parts = urlsplit(origin)
    try:
        origin_port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return "origin"
    if parts.scheme in schemes and (parts.hostname or "").lower() in names and port in (None, origin_port):
        return None
    return "origin"


def is_own(host: str | None, origin: str | None, names: set[str], port: int | None = None, **rule) -> bool:
    """Whether a request passes the rule (see refusal)."""
    return refusal(host, origin, names, port, **rule) is None


def scheme_of(scope: dict) -> str:
    """The scheme an ASGI request came in with, as its pages' origin names it (ws is http's, wss https')."""
    return {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
