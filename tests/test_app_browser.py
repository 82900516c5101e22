"""The app end to end in a real browser: Debian's chromium driven by Playwright, against the app
as `hearth serve` starts it (streamlit on 127.0.0.1, llama.cpp with Qwen2.5-Coder-1.5B).

Upload a PDF and a Markdown file holding <script> and <img onerror>, wait for ingestion, ask,
check the source card (file and page), download the Markdown export, and check that the
document's HTML shows as text with nothing executed. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout, expect

from conftest import ROOT, free_port, wait_for_port
from ingest.libraries import open_library
from ingest.pipeline import Ingestor
from ingest.settings import load_settings
from make_files import HOUSEHOLD as FACTS, corrupt_pdf, text_pdf
from rag import llm_server

pytestmark = pytest.mark.slow
# One model server at a time on this machine (they would race for its port): `make test` runs on two
# workers, and every test that starts a managed server is in this group, on one of them. The tests
# answered by a FaultyServer start none and run on either worker.
MODEL_SERVER = pytest.mark.xdist_group("model-server")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
ASK = "Ask a question about your documents"
HOSTILE = """# Garden notes

The garden gnome is called Bartholomew and he guards the tomato bed.
<script>window.__pwned = "script"</script>
<img src="x" onerror="window.__pwned = 'img'; alert('img')">
"""


def _serve(home, **env):
    port = free_port()
    env = {**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT), **env}
    # Its output goes to a file, not a pipe nobody reads while the tests run: a pipe holds 64 KB, and an
    # app with more to say would block on its next write, mid-answer (tests/artifacts keeps the file).
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"serve-{port}.log"
    with open(log, "w") as out:  # the app holds its own copy
        proc = subprocess.Popen([str(ROOT / ".venv/bin/hearth"), "serve", "--no-samples", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, proc)
    except RuntimeError as exc:  # it exited: what it said is in the log, not on a pipe
        raise RuntimeError(f"{exc}{log.read_text()}") from None
    return proc, f"http://127.0.0.1:{port}"


@contextmanager
def _served(home):
    """`hearth serve` over `home` (and the model server it starts), stopped on the way out."""
    proc, url = _serve(home)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        llm_server.stop(load_settings(home=home))


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with _served(home) as url:
        yield url, home


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: `make test-tools` installs Debian's chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _assert_not_reachable_from_outside(port: int):
    """The app listens on 127.0.0.1 only: this machine's other addresses refuse the connection."""
    addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    for address in [a for a in addresses if ":" not in a and not a.startswith("127.")]:
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()


@MODEL_SERVER
def test_upload_ask_cite_export_and_nothing_executes(app_url, browser, tmp_path):
    url, home = app_url
    _assert_not_reachable_from_outside(int(url.rsplit(":", 1)[1]))
    text_pdf(tmp_path / "household.pdf", FACTS, title="Household")
    (tmp_path / "garden notes.md").write_text(HOSTILE)
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    started = time.perf_counter()
    page.goto(url)
    page.get_by_placeholder(ASK).wait_for(timeout=120_000)
    print(f"\npage usable {time.perf_counter() - started:.1f} s after opening it")
    page.get_by_text("answering").wait_for(timeout=300_000)  # the sidebar's model server status
    page.screenshot(path=ARTIFACTS / "01-empty-library.png")

    # Library: upload both files; ingestion runs with a progress bar, then the table lists them.
    page.get_by_text("Library", exact=True).click()
    corrupt_pdf(tmp_path / "broken.pdf")
    page.locator("input[type=file]").set_input_files(
        [tmp_path / "household.pdf", tmp_path / "garden notes.md", tmp_path / "broken.pdf"])
    page.get_by_text("2 documents", exact=True).wait_for(timeout=300_000)  # the first ingest loads the model: slow beside the other worker
    page.get_by_text("broken.pdf was not added: corrupt or unreadable PDF").wait_for()  # in plain words
    page.screenshot(path=ARTIFACTS / "02-library-after-upload.png")
    lib = open_library(load_settings(home=home))
    assert sorted(os.path.basename(r.path) for r in lib.documents()) == ["garden notes.md", "household.pdf"]
    assert all(r.path.startswith(str(lib.folder)) for r in lib.documents())  # stored in the library folder
    lib.close()

    # Chat: the answer streams, then cites page 2 of the PDF in a source card.
    page.get_by_text("Chat", exact=True).click()
    box = page.get_by_placeholder(ASK)
    box.fill("How long do I have to keep receipts?")
    asked = time.perf_counter()
    box.press("Enter")
    page.get_by_text("▌").first.wait_for(timeout=120_000)
    first_token = time.perf_counter() - asked
    page.get_by_role("button", name="Export answer").wait_for(timeout=180_000)
    print(f"first token in the UI {first_token:.1f} s, whole answer {time.perf_counter() - asked:.1f} s")
    answer = page.locator("[data-testid='stChatMessage']").nth(1)
    assert "six" in answer.inner_text().lower()
    card = page.locator("[data-testid='stExpander']", has_text="household.pdf, page 2").first
    assert "cited" in card.inner_text() and "kept for six years" in card.inner_text()
    card.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "03-answer-with-sources.png")
    assert "SentenceTransformer" not in page.locator("body").inner_text()  # no stray object on the page

    with page.expect_download() as download:
        page.get_by_role("button", name="Export answer").click()
    md = open(download.value.path(), encoding="utf-8").read()
    assert md.startswith("# Hearth answer") and "**Question:** How long do I have to keep receipts\\?" in md
    assert "household\\.pdf, page 2" in md and "[^" in md and "> Receipts and bank statements" in md

    # The hostile document: its HTML shows as text, nothing runs.
    box.fill("What is the garden gnome called?")
    box.press("Enter")
    page.get_by_role("button", name="Export answer").nth(1).wait_for(timeout=180_000)
    card = page.locator("[data-testid='stExpander']", has_text="garden notes.md").first
    passage = card.get_by_text("window.__pwned").first
    try:  # a cited passage starts open, but may still be painting: reading it at once raced (one CI run)
        passage.wait_for(state="visible", timeout=5_000)
    except PlaywrightTimeout:
        card.locator("summary").click()  # a passage not cited starts collapsed
        passage.wait_for(state="visible", timeout=10_000)
    text = card.inner_text()
    assert '<script>window.__pwned = "script"</script>' in text and "onerror=" in text
    card.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "04-hostile-document-as-text.png")
    assert page.evaluate("window.__pwned") is None and dialogs == []
    assert page.locator("[data-testid='stMainBlockContainer']").count() == 1  # so the next count is not vacuous
    assert page.locator("[data-testid='stMainBlockContainer'] img[src='x']").count() == 0


@pytest.fixture
def stocked_app(tmp_path):
    """The app over a library of its own that already holds the household PDF and the garden notes
    (so this test does not depend on the upload test having run first, or on the same worker)."""
    text_pdf(tmp_path / "household.pdf", FACTS, title="Household")
    (tmp_path / "garden notes.md").write_text(HOSTILE)
    home = tmp_path / "home"
    lib = open_library(load_settings(home=home))
    Ingestor(lib).sync([tmp_path / "household.pdf", tmp_path / "garden notes.md"])
    lib.close()
    with _served(home) as url:
        yield url


@MODEL_SERVER
def test_two_browser_sessions_at_once_keep_their_own_chats(stocked_app, browser):
    """Two users (separate browser contexts: separate sessions) ask at the same moment; each page
    shows its own question and answer only, and clearing one chat leaves the other."""
    url = stocked_app
    pages = [browser.new_context(viewport={"width": 1200, "height": 900}).new_page() for _ in range(2)]
    questions = ["How long do I have to keep receipts?", "What is the garden gnome called?"]
    for page in pages:
        page.goto(url)
        page.get_by_placeholder(ASK).wait_for(timeout=120_000)
    asked = time.perf_counter()
    for page, question in zip(pages, questions):
        page.get_by_placeholder(ASK).fill(question)
        page.get_by_placeholder(ASK).press("Enter")
    for page in pages:  # llama.cpp answers one at a time: the second waits for the first (a bound for a
        # busy 2-core machine, where each answer may be retried and judged: 300 s ran out once in CI)
        page.get_by_role("button", name="Export answer").wait_for(timeout=600_000)
    print(f"both answers shown {time.perf_counter() - asked:.1f} s after asking")
    pages[0].screenshot(path=ARTIFACTS / "06-session-one.png")
    pages[1].screenshot(path=ARTIFACTS / "07-session-two.png")
    receipts, gnome = (p.locator("[data-testid='stMainBlockContainer']").inner_text() for p in pages)
    # Each page holds its own question only; the answers are the model's words, which may write the
    # number as a digit ("6 years": one CI run did, the sampled model is not deterministic).
    assert questions[0] in receipts and questions[1] not in receipts, receipts
    assert re.search(r"\b(six|6)\b", receipts.lower()), receipts
    assert questions[1] in gnome and questions[0] not in gnome and "Bartholomew" in gnome, gnome
    for page in pages:
        assert page.locator("[data-testid='stChatMessage']").count() == 2
    pages[0].get_by_role("button", name="New chat").click()
    pages[0].get_by_role("button", name="Export answer").wait_for(state="detached")
    # The other session leaves its chat (Library page: no messages) and comes back: its chat is still there.
    # Waiting on these conditions, not a sleep: the count was 2 before any rerun, so a bare count proves nothing.
    pages[1].get_by_text("Library", exact=True).click()
    expect(pages[1].locator("[data-testid='stChatMessage']")).to_have_count(0, timeout=60_000)
    pages[1].get_by_text("Chat", exact=True).click()
    expect(pages[1].locator("[data-testid='stChatMessage']")).to_have_count(2, timeout=60_000)
    assert questions[1] in pages[1].locator("[data-testid='stMainBlockContainer']").inner_text()
    for page in pages:
        page.context.close()


def test_html_and_script_in_a_model_answer_never_run(browser, tmp_path):
    """The model's own output is no safer than a document: a server answering with <script>,
    <img onerror> and a javascript: link shows them as text (or drops them), and nothing runs."""
    from faulty_server import FaultyServer

    text_pdf(tmp_path / "household.pdf", FACTS, title="Household")
    home = tmp_path / "home"
    lib = open_library(load_settings(home=home))
    Ingestor(lib).sync([tmp_path / "household.pdf"])
    lib.close()
    with FaultyServer() as server:
        proc, url = _serve(home, HEARTH_LLM_URL=server.url("hostile"))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url)
            box = page.get_by_placeholder(ASK)
            box.wait_for(timeout=120_000)
            box.fill("How long do I keep receipts?")
            box.press("Enter")
            page.get_by_role("button", name="Export answer").wait_for(timeout=120_000)
            answer = page.locator("[data-testid='stChatMessage']").nth(1)
            assert "six years" in answer.inner_text() and "<script>window.__pwned" in answer.inner_text()
            for link in answer.locator("a").all():  # a link may render, but never as javascript:
                assert not (link.get_attribute("href") or "").lower().startswith("javascript")
            page.screenshot(path=ARTIFACTS / "05-hostile-answer-as-text.png")
            assert page.evaluate("window.__pwned") is None and dialogs == []
            assert page.locator("[data-testid='stMainBlockContainer']").count() == 1  # the counts below are not vacuous
            assert page.locator("[data-testid='stMainBlockContainer'] img[src='y']").count() == 0
            assert page.locator("[data-testid='stMainBlockContainer'] script").count() == 0
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class _Listener:
    """An HTTP server on 127.0.0.1 that every payload points at: it counts what reaches it."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        import threading

        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_nothing_a_document_or_an_answer_writes_reaches_the_network(browser, tmp_path):
    """Images, links, raw HTML, CSS, data: URIs, directives, LaTeX and broken fences, written by a
    document (source cards, file names in the library table) and by the model (while it streams and
    once it has finished), and the exported answer opened as a web page: not one request leaves."""
    from markdown_it import MarkdownIt

    from faulty_server import FaultyServer
    from payloads import payloads

    listener = _Listener()
    attacks = payloads(listener.base)
    assert len(attacks) >= 20
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "payloads.md").write_text("# Receipts\n\nReceipts are kept for six years.\n\n" + "\n\n".join(attacks))
    (docs / "one-line.txt").write_text("Receipts are kept for six years. " + " ".join(a.replace("\n", " ") for a in attacks))
    (docs / ":red[x] ![a](b.png) <img src=x> [l](y).txt").write_text("Receipts are kept for six years.")
    home = tmp_path / "home"
    lib = open_library(load_settings(home=home))
    Ingestor(lib).sync([docs])
    lib.close()
    answer = "Receipts are kept for six years [1].\n\n" + "\n\n".join(attacks) + " [2]"
    with FaultyServer(answer=answer, delay_s=0.15) as server:
        proc, url = _serve(home, HEARTH_LLM_URL=server.url("hostile"))
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page = context.new_page()
            outside = []  # any request that is not to the app itself
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
            page.goto(url)
            box = page.get_by_placeholder(ASK)
            box.wait_for(timeout=120_000)
            box.fill("How long are receipts kept? " + attacks[0])
            box.press("Enter")
            page.get_by_text("▌").first.wait_for(timeout=120_000)  # streaming: part of the payloads shown
            page.wait_for_timeout(1500)
            streaming = len(listener.hits)
            page.screenshot(path=ARTIFACTS / "08-payloads-streaming.png")
            page.get_by_role("button", name="Export answer").wait_for(timeout=120_000)
            for summary in page.locator("[data-testid='stExpander'] summary").all():  # every source card open
                summary.click()
            page.wait_for_timeout(1500)
            main = page.locator("[data-testid='stMainBlockContainer']")
            assert main.count() == 1 and "/img.png?d=secret" in main.inner_text()  # shown, as text
            assert main.locator("img, iframe, video, audio, svg image, link").count() == 0
            assert main.locator("a[href^='http'], a[href^='//'], a[href^='www'], a[href^='mailto']").count() == 0
            page.screenshot(path=ARTIFACTS / "09-payloads-answered.png", full_page=True)
            with page.expect_download() as download:
                page.get_by_role("button", name="Export answer").click()
            exported = open(download.value.path(), encoding="utf-8").read()

            page.get_by_text("Library", exact=True).click()
            page.get_by_text("3 documents", exact=True).wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=ARTIFACTS / "10-payloads-library.png")

            viewer = context.new_page()  # the export as a Markdown viewer shows it (CommonMark + GFM links)
            viewer.on("request", lambda r: outside.append(r.url) if not r.url.startswith("about:") else None)
            viewer.set_content(MarkdownIt("gfm-like").render(exported))
            viewer.wait_for_timeout(1500)
            assert "/img.png?d=secret" in viewer.inner_text("body")
            context.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            listener.close()
    print(f"\n{len(attacks)} payloads; requests to the listener: {len(listener.hits)} (while streaming: {streaming})")
    assert listener.hits == [] and outside == [], (listener.hits, outside)


@MODEL_SERVER
def test_the_app_is_private_however_it_is_started(browser, tmp_path):
    """`streamlit run /path/to/app.py` from another folder, with a user config that asks for every
    interface and usage statistics: the app still listens on 127.0.0.1 only and the page asks for
    nothing outside. Forced onto all interfaces by a flag, it shows nothing but a refusal."""
    user = tmp_path / "user-home"
    (user / ".streamlit").mkdir(parents=True)
    (user / ".streamlit" / "config.toml").write_text(
        '[server]\naddress = "0.0.0.0"\n[browser]\ngatherUsageStats = true\n')
    env = {**os.environ, "HOME": str(user), "HEARTH_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("HEARTH_LLM_URL", None)
    for extra, private in (([], True), (["--server.address", "0.0.0.0"], False)):
        port = free_port()
        proc = subprocess.Popen([str(ROOT / ".venv/bin/streamlit"), "run", str(ROOT / "app.py"), "--server.port",
                                 str(port), "--server.headless", "true", *extra], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_port(port, proc)
            page = browser.new_page()
            outside = []
            page.on("request", lambda r: outside.append(r.url) if "127.0.0.1" not in r.url else None)
            page.goto(f"http://127.0.0.1:{port}")
            if private:
                _assert_not_reachable_from_outside(port)
                page.get_by_placeholder(ASK).wait_for(timeout=120_000)
            else:
                page.get_by_text("so other machines could reach your documents").wait_for(timeout=120_000)
                assert page.get_by_placeholder(ASK).count() == 0
            page.wait_for_timeout(1000)
            assert outside == []
            page.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _ask(page, url, question):
    """The app opened at `url` in `page`, `question` asked; the page is returned."""
    page.goto(url)
    page.get_by_placeholder(ASK).wait_for(timeout=120_000)
    page.get_by_placeholder(ASK).fill(question)
    page.get_by_placeholder(ASK).press("Enter")
    return page


def _household_home(tmp_path):
    """A home whose library holds household.pdf (FACTS, a page each), ingested."""
    text_pdf(tmp_path / "household.pdf", FACTS, title="Household")
    home = tmp_path / "home"
    lib = open_library(load_settings(home=home))
    Ingestor(lib).sync([tmp_path / "household.pdf"])
    lib.close()
    return home


def test_a_citation_opens_its_page_with_the_supporting_span_highlighted(browser, tmp_path):
    """"Show in the document" renders the cited PDF page (pypdfium2) with the sentence that supports
    the answer painted over it: the yellow in the image the browser shows lies on the span's
    character boxes, as pdfium gives them; Next passage moves on to page 3."""
    import io

    import pypdfium2 as pdfium
    from PIL import Image

    from faulty_server import FaultyServer
    from rag import viewer

    home = _household_home(tmp_path)
    span = "Receipts and bank statements must be kept for six years after the tax year ends."
    doc = pdfium.PdfDocument(str(tmp_path / "household.pdf"))
    text_page = doc[1].get_textpage()
    a, b = viewer.find_words(text_page.get_text_range(), span)
    height = doc[1].get_size()[1]
    chars = [text_page.get_charbox(i) for i in range(a, b) if not text_page.get_text_range()[i].isspace()]
    expected = (min(c[0] for c in chars) * viewer.SCALE, (height - max(c[3] for c in chars)) * viewer.SCALE,
                max(c[2] for c in chars) * viewer.SCALE, (height - min(c[1] for c in chars)) * viewer.SCALE)
    doc.close()
    with FaultyServer(answer="Receipts must be kept for six years after the tax year ends [1].") as server:
        proc, url = _serve(home, HEARTH_LLM_URL=server.url("hostile"), HEARTH_VERIFY_CLAIMS="false")
        try:
            page = _ask(browser.new_page(viewport={"width": 1400, "height": 1600}), url, "How long do I keep receipts?")
            page.get_by_role("button", name="Show in the document").first.click()
            image = page.locator("[data-testid='stImage'] img").first
            image.wait_for(timeout=60_000)
            src = image.get_attribute("src")
            assert not src.startswith("http") or src.startswith(url)  # served by the app itself
            png = page.evaluate("async (src) => { const r = await fetch(src); const b = new Uint8Array(await "
                                "r.arrayBuffer()); return Array.from(b); }", src)
            shown = Image.open(io.BytesIO(bytes(png))).convert("RGB")
            yellow = [(x, y) for y in range(0, shown.height, 2) for x in range(0, shown.width, 2)
                      if (lambda p: p[2] < 150 and p[0] > 200 and p[1] > 150)(shown.getpixel((x, y)))]
            assert yellow, "no highlight in the page image"
            box = (min(x for x, _ in yellow), min(y for _, y in yellow), max(x for x, _ in yellow), max(y for _, y in yellow))
            overlap_w = min(box[2], expected[2]) - max(box[0], expected[0])
            overlap_h = min(box[3], expected[3]) - max(box[1], expected[1])
            assert overlap_w > 0.8 * (expected[2] - expected[0]) and overlap_h > 0.5 * (expected[3] - expected[1]), (box, expected)
            page.screenshot(path=ARTIFACTS / "08-source-viewer.png", full_page=True)
            page.get_by_role("button", name="Next passage").first.click()
            page.get_by_text("page 3").first.wait_for(timeout=60_000)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_right_and_a_flagged_answer_look_different(browser, tmp_path):
    """A right answer: the lead quote, then the answer with a green mark on each backed sentence and
    no warning. A wrong one (its main claim in no passage shown): a red "did not match the documents"
    note above it, its sentences marked unsupported; the lead quote still shows what the documents
    say. Screenshots of both in tests/artifacts."""
    from faulty_server import FaultyServer

    home = _household_home(tmp_path)
    with FaultyServer(answer="Receipts and bank statements must be kept for six years after the tax year ends [1].") as server:
        proc, url = _serve(home, HEARTH_LLM_URL=server.url("hostile"), HEARTH_VERIFY_CLAIMS="false")
        try:
            page = _ask(browser.new_page(viewport={"width": 1200, "height": 1400}), url, "How long do I keep receipts?")
            page.get_by_role("button", name="Export answer").wait_for(timeout=120_000)
            right = page.locator("[data-testid='stChatMessage']").nth(1)
            assert "✓" in right.inner_text() and "unsupported" not in right.inner_text()
            assert "did not match the documents" not in right.inner_text()
            assert "kept for six years" in right.locator("blockquote").first.inner_text()  # the lead quote
            page.screenshot(path=ARTIFACTS / "11-right-answer.png", full_page=True)

            server.httpd.answer = "You can throw receipts away after one month [1]. Nobody checks them."
            page.get_by_role("button", name="New chat").click()  # not a follow-up: this faulty server can't condense
            page.get_by_text("Receipts and bank statements must be kept").first.wait_for(state="detached", timeout=60_000)
            page.get_by_placeholder(ASK).fill("Can I throw my old receipts away?")
            page.get_by_placeholder(ASK).press("Enter")
            page.get_by_text("did not match the documents").wait_for(timeout=120_000)
            wrong = page.locator("[data-testid='stChatMessage']").nth(1)
            page.get_by_role("button", name="Export answer").wait_for(timeout=120_000)
            assert "unsupported" in wrong.inner_text() and "did not match the documents" in wrong.inner_text()
            assert "kept for six years" in wrong.locator("blockquote").first.inner_text()  # what the documents say
            wrong.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "12-flagged-answer.png", full_page=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_an_answer_that_fails_its_check_is_asked_again_and_the_budget_shows(browser, tmp_path):
    """The first answer says the passages don't answer: it stays on screen, marked "First attempt",
    and under the note that the question was asked again, the second answer from the next passages
    with its own sources. The sidebar's model panel shows the server's measured prompt speed and the
    passage budget. Screenshot in tests/artifacts."""
    from faulty_server import FaultyServer

    home = _household_home(tmp_path)
    script = [("Northside Heating", "The documents don't say when the boiler is serviced."),
              ("six years", "Receipts are kept for six years after the tax year ends [1]."),
              ("31st of July", "The tax return for 2025 is due on the 31st of July 2026 [1].")]
    with FaultyServer(script=script, tokens_per_s=400) as server:
        proc, url = _serve(home, HEARTH_LLM_URL=server.url("scripted"), HEARTH_VERIFY_CLAIMS="false",
                           HEARTH_CONTEXT_TOKENS="30", HEARTH_MIN_SCORE="0")  # one page a prompt
        try:
            page = _ask(browser.new_page(viewport={"width": 1400, "height": 1600}), url, "When is the boiler serviced?")
            page.get_by_text("so the question was asked again with the next passages").last.wait_for(timeout=120_000)
            answer = page.locator("[data-testid='stChatMessage']").nth(1)
            # While the second answer streams, its note is drawn apart; the answer's message holds both
            # attempts once the run that finished it redrew the page.
            answer.get_by_text("so the question was asked again with the next passages").wait_for(timeout=120_000)
            page.get_by_role("button", name="Export answer").first.wait_for(timeout=120_000)
            # Read once the message holds both attempts: a redraw as the run ends can show it half drawn
            # for a moment (a fresh-clone run read the first attempt alone there).
            deadline = time.monotonic() + 120
            while "asked again" not in (text := " ".join(answer.inner_text().split())) and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            assert "First attempt" in text and "The documents don't say when the boiler is serviced" in text
            assert "asked again" in text and text.index("First attempt") < text.index("asked again"), text
            second = text[text.index("asked again"):]  # the second answer and its sources, from another page
            assert ("31st of July" in second and "page 1" in second) or ("six years" in second and "page 2" in second), text
            panel = " ".join(page.locator("[data-testid='stSidebar']").inner_text().split())
            assert re.search(r"prompt [\d,]+ tokens/s; passages up to 30 tokens", panel), panel
            page.screenshot(path=ARTIFACTS / "13-retry-and-budget.png", full_page=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@MODEL_SERVER  # load-sensitive: kept off the time of the model-server tests
def test_a_folder_added_in_the_background_shows_live_progress_and_stops(browser, tmp_path):
    """The Library's "Add a folder on this computer" in a real browser: the progress (files done of
    those to do, rate, time left) updates by itself every second, with no click, and Stop ends it
    with the files done kept. (Streamlit drops a page's fragments when a run that a click superseded
    finishes late; the progress would then freeze: AppTest can't see that, a browser can.)"""
    folder = tmp_path / "letters"
    folder.mkdir()
    words = "kettle harbour ledger violin orchard lantern pepper meadow copper signal winter ladder river".split()
    for i in range(400):
        paras = [" ".join(words[(i + j * 7 + k) % len(words)] for k in range(110)) for j in range(2 + i % 2)]
        (folder / f"letter-{i:03d}.md").write_text(f"# Letter {i}\n\n" + "\n\n".join(paras))
    home = tmp_path / "home"
    proc, url = _serve(home, HEARTH_LLM_URL="http://127.0.0.1:9/v1")  # no model server needed here
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_text("Library", exact=True).click()
        box = page.get_by_role("textbox", name="Add a folder on this computer")
        box.fill(str(folder))
        box.press("Enter")  # a run, then the click's: the race that froze the progress
        page.get_by_role("button", name="Add folder").click()
        so_far = page.get_by_text(re.compile(r"s so far$"))
        try:
            so_far.first.wait_for(timeout=300_000)  # the app's first ingest loads its model: slow beside the other worker's tests
        except PlaywrightTimeout:  # what the page showed instead
            page.screenshot(path=ARTIFACTS / "13-folder-ingest-never-began.png")
            pytest.fail("no progress in 300 s; the page read:\n" + page.locator("body").inner_text())
        seen = set()
        for _ in range(20):  # ~10 s: the caption's clock moves on its own
            if so_far.count():
                seen.add(so_far.first.inner_text())
            if len(seen) >= 3:
                break
            page.wait_for_timeout(500)
        assert len(seen) >= 3, seen
        assert page.get_by_text(re.compile(r"of 400 files done")).count() == 1
        page.screenshot(path=ARTIFACTS / "13-folder-ingest-progress.png")
        page.get_by_role("button", name="Stop").click()
        page.get_by_text(re.compile("stopped: [0-9,]+ files left to do")).wait_for(timeout=60_000)
        page.screenshot(path=ARTIFACTS / "14-folder-ingest-stopped.png")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lib = open_library(load_settings(home=home))
    try:
        assert 0 <= len(lib.documents()) < 400 and lib.count() == sum(r.chunks for r in lib.documents())
    finally:
        lib.close()
