"""Serving the Streamlit app so that only this machine's own pages can drive it.

A web page elsewhere can rebind its own host name to 127.0.0.1 (DNS rebinding) and then open the
app in the user's browser tab: same port, but its own name in the Host header and its own origin.
`hearth serve` therefore runs Streamlit through this module, which wraps Streamlit's ASGI app
(Streamlit 1.67 serves with Starlette and uvicorn) in AppGuard: a request or websocket whose Host
is not a loopback name or HEARTH_APP_ADDRESS at the app's port, or whose Origin is not the app's
own (the rule is rag/origin.py's, the same as `hearth api`'s), is refused before Streamlit sees it. app.py checks the same of its session's headers, for an
app started with plain `streamlit run`.

    python -m rag.app_guard run app.py --server.port 8501 ...   (what `hearth serve` executes)
"""

from __future__ import annotations

import sys
from .origin import own_names, refusal, scheme_of

REFUSED = b"Hearth answers only pages of this machine's own app (Host and Origin headers)."


class AppGuard:
    """ASGI middleware in front of Streamlit: refuses (403, nothing of the app shown) foreign Hosts
    and Origins, for plain requests and websocket handshakes alike."""

    def __init__(self, app, app_address: str):
        self.app, self.names = app, own_names(app_address)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            port = (scope.get("server") or (None, None))[1]
            if refusal(headers.get("host"), headers.get("origin"), self.names, port, schemes=(scheme_of(scope),),
                       origin_required=scope["type"] == "websocket"):
                return await _refuse(scope, send)
        await self.app(scope, receive, send)


async def _refuse(scope, send):
    if scope["type"] == "websocket":  # closing before accepting: uvicorn answers the handshake with 403
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(REFUSED)).encode())]})
    await send({"type": "http.response.body", "body": REFUSED})


def install() -> None:
    """Make Streamlit build its app behind AppGuard (its factory is looked up when the server starts)."""
    from streamlit.web.server.starlette import starlette_server

    from ingest.settings import load_settings

    build = starlette_server.create_starlette_app
    address = load_settings().app_address
    starlette_server.create_starlette_app = lambda runtime: AppGuard(build(runtime), address)


def main(argv: list[str]) -> None:
    from streamlit.web import cli

    install()
    sys.argv = ["streamlit", *argv]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
