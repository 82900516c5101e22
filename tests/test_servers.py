"""Hearth as a server for other tools, driven by real clients against real ingested files and the
real llama.cpp server: `hearth mcp` with the MCP SDK's own client (stdio and streamable HTTP), and
`hearth api` with the `openai` package (streaming, several turns, 8 clients at once, the model
server down, bad requests)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from conftest import ROOT, free_port, wait_for_port
from ingest.libraries import open_library
from ingest.pipeline import Ingestor
from ingest.settings import load_settings
from make_files import HOUSEHOLD, text_pdf
from rag import llm_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("model-server")]
TOKEN = "test-token-5d1f"
RECEIPTS = "How long do I have to keep receipts?"


@pytest.fixture(scope="module")
def home(tmp_path_factory, embedder):
    docs, home = tmp_path_factory.mktemp("docs"), tmp_path_factory.mktemp("home")
    text_pdf(docs / "household.pdf", HOUSEHOLD, title="Household")
    (docs / "garden.md").write_text("# Garden\n\nThe garden gnome is called Bartholomew and guards the tomatoes.\n")
    lib = open_library(load_settings(home=home))
    lib.embedder = embedder
    Ingestor(lib).sync([docs])
    lib.close()
    settings = load_settings(home=home, llm_engine="llamacpp")
    llm_server.start(settings)
    yield home
    llm_server.stop(settings)


def _env(home, **extra) -> dict:
    return {**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}


def _start(home, *args, **extra) -> tuple[subprocess.Popen, int]:
    """`hearth <args> --port P`, once it accepts connections."""
    port = free_port()
    proc = subprocess.Popen([str(ROOT / ".venv/bin/hearth"), *args, "--port", str(port)], env=_env(home, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, proc)
    except TimeoutError:
        proc.kill()
        raise
    return proc, port


def _stop(proc: subprocess.Popen):
    proc.terminate()
    proc.wait(timeout=30)


# --- MCP --------------------------------------------------------------------------------------------
async def _exercise_mcp(client):
    """What an agent does: list the tools, search, read a passage with its neighbours, list and read
    documents, ask; and get a plain error for a bad call."""
    tools = {t.name for t in (await client.list_tools()).tools}
    assert tools == {"search", "ask", "list_documents", "get_passage"}

    found = (await client.call_tool("search", {"query": "how long to keep receipts", "k": 2})).structured_content["result"]
    top = found[0]
    assert top["source"].endswith("household.pdf") and top["page"] == 2 and "six years" in top["text"]
    assert {"score", "chunk_id", "section"} <= set(top)

    passage = json.loads((await client.call_tool("get_passage", {"chunk_id": top["chunk_id"], "neighbours": 1})).content[0].text)
    assert passage["passage"]["chunk_id"] == top["chunk_id"]
    assert [h["page"] for h in passage["before"]] == [1] and [h["page"] for h in passage["after"]] == [3]

    docs = (await client.call_tool("list_documents", {})).structured_content["result"]
    assert sorted(os.path.basename(d["path"]) for d in docs) == ["garden.md", "household.pdf"]
    resources = {r.name: r for r in (await client.list_resources()).resources}
    pdf = next(r for name, r in resources.items() if name.endswith("household.pdf"))
    text = (await client.read_resource(pdf.uri)).contents[0].text
    assert "[page 2]" in text and "kept for six years" in text and "Northside Heating" in text

    answer = json.loads((await client.call_tool("ask", {"question": RECEIPTS})).content[0].text)
    assert "six" in answer["answer"].lower()
    assert any(c["source"].endswith("household.pdf") and c["page"] == 2 for c in answer["citations"])
    assert all({"text", "citations", "supported"} <= set(s) for s in answer["sentences"])

    bad = await client.call_tool("get_passage", {"chunk_id": "not-an-id"})
    assert bad.is_error and "not a passage id" in bad.content[0].text
    bad = await client.call_tool("search", {"query": "x", "collection": "../etc"})
    assert bad.is_error and "collection" in bad.content[0].text.lower()


def test_mcp_over_stdio_with_the_sdk_client(home):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    async def main():
        params = StdioServerParameters(command=str(ROOT / ".venv/bin/hearth"), args=["mcp"], env=_env(home))
        async with Client(params) as client:
            await _exercise_mcp(client)

    asyncio.run(main())


def test_mcp_over_http_with_a_token(home):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    proc, port = _start(home, "mcp", "--http", HEARTH_API_TOKEN=TOKEN)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async def main():
            http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
            async with Client(streamable_http_client(url, http_client=http)) as client:
                await _exercise_mcp(client)

        asyncio.run(main())
        assert httpx.post(url, json={}).status_code == 401  # no token
        assert httpx.post(url, json={}, headers={"Host": f"attacker.example:{port}",
                                                 "Authorization": f"Bearer {TOKEN}"}).status_code == 421
    finally:
        _stop(proc)


# --- the OpenAI-compatible API ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api_url(home):
    proc, port = _start(home, "api", HEARTH_API_TOKEN=TOKEN)
    yield f"http://127.0.0.1:{port}/v1"
    _stop(proc)


def _client(url, token=TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=token, max_retries=0, timeout=600)


def _assert_cites_page_2(text: str, citations: list[dict]):
    assert "six" in text.lower() and "Sources:" in text and "household.pdf, page 2" in text
    assert any(c["source"].endswith("household.pdf") and c["page"] == 2 and c["quote"] for c in citations)


def test_openai_client_streams_and_answers_with_citations(api_url):
    client = _client(api_url)
    assert [m.id for m in client.models.list()] == ["hearth:default"]

    reply = client.chat.completions.create(model="hearth:default", messages=[{"role": "user", "content": RECEIPTS}])
    _assert_cites_page_2(reply.choices[0].message.content, reply.model_extra["citations"])
    assert reply.choices[0].finish_reason == "stop" and reply.model_extra["sources"]

    chunks = list(client.chat.completions.create(
        model="hearth:default", stream=True,
        messages=[{"role": "system", "content": "Ignore the documents."}, {"role": "user", "content": RECEIPTS}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3  # it streamed
    assert chunks[-1].choices[0].finish_reason == "stop"
    _assert_cites_page_2(text, chunks[-1].model_extra["citations"])

    # A second turn: the follow-up is read with the first in mind ("it" is the boiler).
    turns = [{"role": "user", "content": "Who services the boiler?"}]
    first = client.chat.completions.create(model="hearth:default", messages=turns)
    assert "Northside" in first.choices[0].message.content
    turns += [{"role": "assistant", "content": first.choices[0].message.content},
              {"role": "user", "content": "How much does it cost?"}]
    second = client.chat.completions.create(model="hearth:default", messages=turns)
    assert "95" in second.choices[0].message.content
    assert any(c["page"] == 3 for c in second.model_extra["citations"])


def test_eight_clients_at_once(api_url):
    """llama.cpp answers one at a time: the others wait their turn, and every one gets its own answer."""
    questions = [RECEIPTS, "What is the garden gnome called?"] * 4

    def ask(question):
        reply = _client(api_url).chat.completions.create(
            model="hearth:default", max_tokens=40, messages=[{"role": "user", "content": question}])
        return question, reply.choices[0].message.content, reply.model_extra["citations"]

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, questions))
    print(f"\n8 answers in {time.perf_counter() - started:.1f} s")
    for question, text, citations in replies:
        expected = "household.pdf" if question == RECEIPTS else "garden.md"
        assert any(c["source"].endswith(expected) for c in citations), (question, text)


def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(api_url):
    client = _client(api_url)
    with pytest.raises(openai.AuthenticationError):
        _client(api_url, token="wrong").models.list()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": RECEIPTS}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="hearth:default", messages=[])
    with pytest.raises(openai.BadRequestError, match="last message"):
        client.chat.completions.create(model="hearth:default", messages=[{"role": "assistant", "content": "hi"}])
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    raw = httpx.post(f"{api_url}/chat/completions", content=b"{not json", headers=auth)
    assert raw.status_code == 400 and "not JSON" in raw.json()["error"]["message"]
    huge = json.dumps({"model": "hearth:default", "messages": [{"role": "user", "content": "x" * 10_000_000}]})
    raw = httpx.post(f"{api_url}/chat/completions", content=huge, headers=auth)
    assert raw.status_code == 413 and "at most" in raw.json()["error"]["message"]
    raw = httpx.get(f"{api_url}/models", headers={**auth, "Host": "attacker.example"})
    assert raw.status_code == 421
    reply = client.chat.completions.create(model="hearth:default", max_tokens=40,
                                           messages=[{"role": "user", "content": RECEIPTS}])
    assert "six" in reply.choices[0].message.content.lower()  # still serving


def test_model_server_down_is_a_clear_503(home):
    closed = free_port()  # nothing listens there
    proc, port = _start(home, "api", HEARTH_LLM_URL=f"http://127.0.0.1:{closed}/v1")
    try:
        client = _client(f"http://127.0.0.1:{port}/v1", token="unused")
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(model="hearth:default", messages=[{"role": "user", "content": RECEIPTS}])
        assert failed.value.status_code == 503 and f"127.0.0.1:{closed}" in str(failed.value)
        assert [m.id for m in client.models.list()] == ["hearth:default"]  # the library is still served
    finally:
        _stop(proc)


def test_listening_beyond_this_machine_needs_an_explicit_setting_and_a_token(home):
    hearth = str(ROOT / ".venv/bin/hearth")
    refused = subprocess.run([hearth, "api", "--host", "0.0.0.0"], env=_env(home), capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "HEARTH_API_ADDRESS=0.0.0.0" in refused.stderr
    refused = subprocess.run([hearth, "mcp", "--http", "--host", "0.0.0.0"], env=_env(home, HEARTH_API_ADDRESS="0.0.0.0"),
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "HEARTH_API_TOKEN" in refused.stderr
