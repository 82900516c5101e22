"""No web page can drive Hearth: the app and the API refuse other origins (issue 31).

A page elsewhere can rebind its own name to 127.0.0.1 (DNS rebinding) or post to 127.0.0.1 from its
own origin. Chromium plays that page here: --host-resolver-rules maps evil.example to 127.0.0.1, as
a rebinding DNS server would. The servers are the real ones: `hearth serve` (Streamlit behind
rag/app_guard.py), plain `streamlit run app.py`, and `hearth api` in front of a model server that
counts what reaches it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from conftest import ROOT, free_port, wait_for_port
from faulty_server import FaultyServer
from ingest.libraries import open_library
from ingest.pipeline import Ingestor
from ingest.settings import load_settings

FOREIGN_PAGE = "Hearth shows nothing here: this page is not addressed to this machine's own app."  # app.py

CHROMIUM = "/usr/bin/chromium"
ASK = "Ask a question about your documents"
EVIL = "evil.example"


def _env(home, **extra):
    env = {k: v for k, v in os.environ.items() if k != "HEARTH_LLM_URL"}  # no model server unless given
    return {**env, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT), **extra}


@contextmanager
def _process(args, port, env, cwd=None):
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def _app(home, plain: bool = False):
    """`hearth serve` (or, plain, `streamlit run app.py` as a user might) on a free port."""
    port = free_port()
    if plain:
        args = [str(ROOT / ".venv/bin/streamlit"), "run", str(ROOT / "app.py"), "--server.port", str(port)]
    else:
        args = [str(ROOT / ".venv/bin/hearth"), "serve", "--no-llm", "--no-samples", "--port", str(port)]
    with _process(args, port, _env(home), cwd=ROOT):
        yield port


def _websocket(port: int, host: str, origin: str | None) -> bool:
    """Whether the app's websocket opens for a handshake naming `host` and `origin` (sent to 127.0.0.1,
    as a browser does once the name is rebound)."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port))
    try:
        with connect(f"ws://{host}/_stcore/stream", sock=sock, origin=origin, subprotocols=["streamlit"],
                     open_timeout=30):
            return True
    except InvalidStatus as exc:
        assert exc.response.status_code == 403
        return False


@pytest.mark.slow
def test_the_app_refuses_foreign_hosts_and_origins(tmp_path):
    with _app(tmp_path / "home") as port:
        own, evil = f"127.0.0.1:{port}", f"{EVIL}:{port}"
        for path in ("/", "/_stcore/health", "/_stcore/host-config"):
            assert httpx.get(f"http://{own}{path}").status_code == 200
            refused = httpx.get(f"http://{own}{path}", headers={"Host": evil})
            assert refused.status_code == 403 and b"<script" not in refused.content
            assert httpx.get(f"http://{own}{path}", headers={"Origin": f"http://{evil}"}).status_code == 403
        assert httpx.get(f"http://{own}/", headers={"Host": f"localhost:{port}"}).status_code == 200
        assert _websocket(port, own, f"http://{own}")  # the app's own page
        assert not _websocket(port, evil, f"http://{evil}")  # a rebound name
        assert not _websocket(port, own, f"http://{EVIL}:{port}")  # a foreign page
        assert not _websocket(port, own, f"http://127.0.0.1:{free_port()}")  # another local origin
        assert not _websocket(port, own, None)


@pytest.fixture(scope="module")
def rebinding_browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: `make test-tools` installs Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"])
        yield browser
        browser.close()


@pytest.mark.slow
@pytest.mark.parametrize("plain", [False, True], ids=["hearth-serve", "plain-streamlit-run"])
def test_a_rebound_name_shows_nothing_of_the_app(rebinding_browser, tmp_path, plain):
    """Opened under a foreign name the app shows nothing; under its own it works. Started with plain
    `streamlit run` (no guard in front), app.py's own check of the session's headers still stops it."""
    lib = open_library(load_settings(home=tmp_path / "home"))
    (tmp_path / "secret.md").write_text("# Secret\n\nThe safe's code is 4711.\n")
    Ingestor(lib).sync([tmp_path / "secret.md"])
    lib.close()
    with _app(tmp_path / "home", plain=plain) as port:
        page = rebinding_browser.new_page()
        page.goto(f"http://127.0.0.1:{port}")
        page.get_by_placeholder(ASK).wait_for(timeout=120_000)
        assert "Library" in page.locator("body").inner_text()
        response = page.goto(f"http://{EVIL}:{port}")
        if plain:  # Streamlit serves the page; the session's script stops before it shows anything
            assert response.status == 200
            page.get_by_text(FOREIGN_PAGE).wait_for(timeout=60_000)
        else:
            assert response.status == 403 and "Hearth answers only" in page.content()
        text = page.locator("body").inner_text()
        assert "secret.md" not in text and "Library" not in text and page.get_by_placeholder(ASK).count() == 0, text
        page.close()


ATTACK = """<!doctype html><title>attack</title><script>
window.done = 0; window.opened = 0;
const finish = () => { window.done += 1; };
for (const url of [%(sockets)s]) {
  const ws = new WebSocket(url, "streamlit");
  let settled = false;
  const settle = () => { if (!settled) { settled = true; finish(); } };
  ws.onopen = () => { window.opened += 1; settle(); };
  ws.onclose = settle;
}
const body = JSON.stringify({model: "hearth:default", messages: [{role: "user", content: "What is the safe's code?"}]});
// what any page may send without asking first (no preflight), and what it may send only if allowed
fetch("%(api)s", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body}).then(finish, finish);
fetch("%(api)s", {method: "POST", headers: {"Content-Type": "application/json"}, body}).then(finish, finish);
fetch("%(mcp)s", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
  body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "tools/call", params: {name: "ask", arguments: {question: "code?"}}})}).then(finish, finish);
</script>"""


@contextmanager
def _page_server(folder):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_page_from_another_origin_cannot_make_the_app_or_the_api_do_anything(rebinding_browser, tmp_path):
    """A page served from another local origin (and one under a rebound name) opens the app's
    websocket and posts questions to `hearth api` and `hearth mcp --http`: every one is refused, and
    the model server behind the API is asked nothing. A client of this machine still gets answers."""
    home = tmp_path / "home"
    lib = open_library(load_settings(home=home))
    (tmp_path / "secret.md").write_text("# Secret\n\nThe safe's code is 4711.\n")
    Ingestor(lib).sync([tmp_path / "secret.md"])
    lib.close()
    model = FaultyServer(answer="The safe's code is 4711 [1].")
    api_port, mcp_port = free_port(), free_port()
    with model, _app(home) as app_port, \
            _process([str(ROOT / ".venv/bin/hearth"), "api", "--port", str(api_port)], api_port,
                     _env(home, HEARTH_LLM_URL=model.url("hostile"))), \
            _process([str(ROOT / ".venv/bin/hearth"), "mcp", "--http", "--port", str(mcp_port)], mcp_port,
                     _env(home, HEARTH_LLM_URL=model.url("hostile"))):
        asked = lambda: len(model.httpd.authorizations)  # noqa: E731 - every request it got
        (tmp_path / "site").mkdir()
        sockets = [f'"ws://127.0.0.1:{app_port}/_stcore/stream"', f'"ws://{EVIL}:{app_port}/_stcore/stream"']
        (tmp_path / "site" / "attack.html").write_text(ATTACK % {
            "sockets": ", ".join(sockets), "api": f"http://127.0.0.1:{api_port}/v1/chat/completions",
            "mcp": f"http://127.0.0.1:{mcp_port}/mcp"})
        before = asked()
        with _page_server(tmp_path / "site") as site:
            for origin in (f"http://localhost:{site}", f"http://{EVIL}:{site}"):
                page = rebinding_browser.new_page()
                page.goto(f"{origin}/attack.html")
                page.wait_for_function("window.done === 5", timeout=120_000)
                assert page.evaluate("window.opened") == 0
                page.close()
        assert asked() == before, "a foreign page's request reached the model server"
        # this machine's own clients: the API answers (asking the model), the app's own page opens
        reply = httpx.post(f"http://127.0.0.1:{api_port}/v1/chat/completions", timeout=120,
                           json={"model": "hearth:default", "messages": [{"role": "user", "content": "What is the safe's code?"}]})
        assert reply.status_code == 200 and "4711" in reply.json()["choices"][0]["message"]["content"]
        assert asked() > before
        assert _websocket(app_port, f"127.0.0.1:{app_port}", f"http://127.0.0.1:{app_port}")
