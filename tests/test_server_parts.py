"""The pieces of `hearth api` and `hearth mcp` that need no server: reading a chat request, who may
listen where, and a document's text from its overlapping passages."""

from __future__ import annotations

import pytest

from ingest.settings import load_settings
from rag.mcp_server import joined
from rag.openai_api import RequestError, parse_chat
from rag.retrieval import Hit
from rag.serving import check_address


def test_a_chat_request_becomes_a_question_and_its_history():
    question, history, stream, max_tokens = parse_chat({"model": "hearth:default", "stream": True, "max_tokens": 50,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Who services the boiler?"},
                     {"role": "assistant", "content": "Northside Heating [1]."},
                     {"role": "user", "content": [{"type": "text", "text": "How much"}, {"type": "text", "text": "does it cost?"}]}]})
    assert question == "How much does it cost?" and history == [("Who services the boiler?", "Northside Heating [1].")]
    assert stream is True and max_tokens == 50


@pytest.mark.parametrize("body, words", [
    ({"messages": [{"role": "user", "content": "q"}]}, "model is required"),
    ({"model": "hearth:default"}, "messages is required"),
    ({"model": "hearth:default", "messages": [{"role": "user", "content": "  "}]}, "last message"),
    ({"model": "hearth:default", "messages": [{"role": "robot", "content": "q"}]}, "role"),
    ({"model": "hearth:default", "messages": [{"role": "user", "content": 5}]}, "content"),
    ({"model": "hearth:default", "messages": [{"role": "user", "content": "q" * 5000}]}, "at most"),
    ({"model": "hearth:default", "stream": "yes", "messages": [{"role": "user", "content": "q"}]}, "stream"),
    ({"model": "hearth:default", "max_tokens": 0, "messages": [{"role": "user", "content": "q"}]}, "max_tokens"),
])
def test_bad_chat_requests_say_what_is_wrong(body, words):
    with pytest.raises(RequestError, match=words) as refused:
        parse_chat(body)
    assert refused.value.status == 400


def test_listening_beyond_loopback_needs_the_address_set_and_a_token():
    check_address(load_settings(), "127.0.0.1")
    with pytest.raises(ValueError, match="HEARTH_API_ADDRESS=0.0.0.0"):
        check_address(load_settings(), "0.0.0.0")
    with pytest.raises(ValueError, match="HEARTH_API_TOKEN"):
        check_address(load_settings(api_address="0.0.0.0"), "0.0.0.0")
    check_address(load_settings(api_address="0.0.0.0", api_token="s3cret"), "0.0.0.0")
    assert "s3cret" not in repr(load_settings(api_token="s3cret"))  # a token never lands in a traceback


def test_a_documents_text_from_overlapping_passages_keeps_each_word_once():
    page = "Receipts must be kept for six years. Scan them. Store the scans in the Archive folder."
    hits = [Hit(page[0:40], "a.pdf", 2, 0, "d:0", start=0), Hit(page[30:70], "a.pdf", 2, 0, "d:1", start=30),
            Hit(page[60:], "a.pdf", 2, 0, "d:2", start=60), Hit("The boiler.", "a.pdf", 3, 0, "d:3", start=0)]
    assert joined(hits) == f"[page 2]\n{page}\n\n[page 3]\nThe boiler."
