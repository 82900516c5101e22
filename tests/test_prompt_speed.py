"""The passage budget follows the machine: a model server's prompt speed is measured once (two
one-token requests of ~400 tokens) and the passages are cut to what it reads within
HEARTH_FIRST_TOKEN_S. The real llama.cpp server is measured in tests/test_answer_e2e.py
(test_cli_ask_json_and_export); here a server on 127.0.0.1 that takes a known time per prompt token
checks the arithmetic."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_hearth
from faulty_server import FaultyServer
from ingest.settings import load_settings
from rag import api, llm_server
from rag.engines.llamacpp import CONTEXT_TOKENS as CPU_CONTEXT_TOKENS
from rag.engines.llamacpp import READ_TOKENS as CPU_READ_TOKENS
from rag.llm_server import ServerInfo
from rag.retrieval import MIN_PASSAGE_TOKENS, budget_for


def _server(engine="llamacpp", speed=None) -> ServerInfo:
    return ServerInfo(engine, "qwen", "http://127.0.0.1:9/v1", prompt_tokens_per_s=speed)


def test_the_budget_is_what_the_server_reads_within_the_first_token_wait(home):
    settings = load_settings(llm_context=4096, answer_max_tokens=400)
    assert settings.first_token_s == 5.0 and settings.context_tokens == 0
    laptop_2_cores, laptop_8_cores = budget_for(settings, _server(speed=88)), budget_for(settings, _server("vllm", speed=300))
    # 88 * (5 - 0.6) - 140: a little under the fixed 300 it replaces (docs/decisions.md); 300 * 4.4 - 140
    assert laptop_2_cores == 247 and laptop_8_cores == 1180, (laptop_2_cores, laptop_8_cores)
    assert budget_for(settings, _server("vllm", speed=88)) == laptop_2_cores  # the speed decides, not the engine
    assert budget_for(load_settings(first_token_s=10.0), _server("vllm", speed=88)) > 2 * laptop_2_cores  # a longer wait allowed
    fits = budget_for(settings)
    assert budget_for(settings, _server(speed=20)) == MIN_PASSAGE_TOKENS  # always something to quote
    assert budget_for(settings, _server("vllm", speed=20_000)) == fits > 3000  # never past the context


def test_a_fast_machine_gives_the_small_default_model_no_more_than_it_reads_closely(home):
    settings = load_settings(llm_context=4096, answer_max_tokens=400)
    assert budget_for(settings, _server(speed=300)) == CPU_READ_TOKENS < 1180  # not what it could read in 5 s
    assert budget_for(settings, _server(speed=20_000)) == CPU_READ_TOKENS
    assert budget_for(load_settings(llm_model="/models/bigger.gguf"), _server(speed=300)) == 1180  # another model: the wait decides
    assert budget_for(load_settings(context_tokens=1200), _server(speed=300)) == 1200  # the setting still wins
    fast = api.passage_budget(settings, _server(speed=300))
    assert (fast.tokens, fast.basis) == (CPU_READ_TOKENS, "model")
    assert fast.expected_first_token_s == pytest.approx(0.6 + (300 + 140) / 300, abs=0.01)
    assert fast.describe() == ("prompt 300 tokens/s; passages up to 300 tokens, what the model reads closely "
                               "(a first token in ~2.1 s; more passages made its answers worse)")


def test_the_setting_wins_and_an_unmeasured_server_keeps_the_engines_default(home):
    settings = load_settings(llm_context=4096, answer_max_tokens=400)
    assert budget_for(load_settings(context_tokens=800), _server(speed=88)) == 800
    assert budget_for(settings, _server(speed=None)) == CPU_CONTEXT_TOKENS
    assert budget_for(settings, _server("vllm", speed=None)) == budget_for(settings) > 3000
    line = api.passage_budget(settings, _server(speed=88)).describe()
    assert line == "prompt 88 tokens/s; passages up to 247 tokens for a first token within 5 s"
    assert api.passage_budget(settings, _server(speed=None)).to_json() == {
        "tokens": CPU_CONTEXT_TOKENS, "prompt_tokens_per_s": None, "first_token_s": 5.0, "basis": "engine",
        "expected_first_token_s": None}
    assert api.passage_budget(settings, _server(speed=None)).describe() == (
        f"prompt speed not measured; passages up to {CPU_CONTEXT_TOKENS} tokens (the engine's default)")
    assert api.passage_budget(load_settings(context_tokens=800), _server(speed=None)).describe() == (
        "prompt speed not measured; passages up to 800 tokens (HEARTH_CONTEXT_TOKENS)")
    assert api.passage_budget(settings, _server(speed=88)).expected_first_token_s == pytest.approx(5.0, abs=0.02)
    slow = api.passage_budget(settings, _server(speed=50))  # even one passage's worth is late: said so
    assert slow.tokens == MIN_PASSAGE_TOKENS and slow.expected_first_token_s == pytest.approx(6.4, abs=0.01)
    assert slow.describe() == "prompt 50 tokens/s; passages up to 150 tokens, the least sent: a first token in ~6.4 s, not within 5 s"
    assert api.passage_budget(load_settings(context_tokens=800), _server(speed=88)).basis == "setting"


def test_the_speed_is_timed_on_fresh_prompts_and_the_faster_request_counts():
    with FaultyServer(tokens_per_s=400.0, first_extra_s=1.0) as server:
        speed = llm_server.measure_prompt_speed(server.url("timed"), "timed")
        prompts = list(server.httpd.prompts)
    assert 300 < speed <= 400, speed  # the first request's extra second is not counted; HTTP time is
    assert len(prompts) == llm_server.SPEED_REQUESTS == 2
    words = prompts[0].split()
    assert 140 <= len(words) <= 200  # ~200 tokens of English in a model's tokenizer
    assert prompts[0].split()[0] != prompts[1].split()[0] and prompts[0].split()[1:] == prompts[1].split()[1:]  # nonce first


def test_a_chat_only_server_is_measured_through_chat_and_a_dead_one_is_none():
    with FaultyServer(tokens_per_s=1000.0) as server:
        assert 600 < llm_server.measure_prompt_speed(server.url("chatonly"), "x") <= 1000
        assert llm_server.measure_prompt_speed(server.url("html"), "x") is None  # not JSON: no usage
        assert llm_server.measure_prompt_speed(server.url("stall"), "x", timeout=60) is None  # a stream: not waited for
    assert llm_server.measure_prompt_speed("http://127.0.0.1:9/v1", "x") is None


def test_hearths_own_server_is_measured_once_and_saved_with_it(home):
    """A managed server's state (here naming this test process, so that it counts as running)
    gets the speed in llm.json; a failed measurement is saved too and leaves the engine's default."""
    settings = load_settings(llm_context=4096)
    settings.home.mkdir(parents=True, exist_ok=True)
    old = {"engine": "llamacpp", "model": "timed", "url": "http://127.0.0.1:9/v1", "pid": os.getpid(), "port": 9,
           "log": None, "started_at": 1.0, "managed": True, "ready_at": 2.0,
           "proc_start": llm_server.process_start_time(os.getpid())}
    (settings.home / "llm.json").write_text(json.dumps(old))  # written before speeds were: still read
    info = llm_server.current(settings)
    assert info is not None and info.prompt_tokens_per_s is None and info.measured_at is None
    assert llm_server.measure_managed(settings, info) is None  # nothing listens: no speed, no error
    saved = json.loads((settings.home / "llm.json").read_text())
    assert saved["measured_at"] and saved["prompt_tokens_per_s"] is None
    assert budget_for(settings, llm_server.current(settings)) == CPU_CONTEXT_TOKENS

    with FaultyServer(tokens_per_s=200.0) as server:
        (settings.home / "llm.json").write_text(json.dumps({**old, "url": server.url("timed")}))
        info = llm_server.current(settings)
        speed = llm_server.measure_managed(settings, info)
        assert 150 < speed <= 200 and info.prompt_tokens_per_s == speed
        assert llm_server.measure_managed(settings, llm_server.current(settings)) == speed  # once: not again
        assert len(server.httpd.prompts) == 2
    saved = llm_server.current(settings)
    assert saved.prompt_tokens_per_s == speed and saved.measured_at
    budget = api.passage_budget(settings, saved)
    # 150-200 tokens/s reads more than the default model reads closely in 5 s: its cap, from the speed
    assert budget.basis == "model" and budget.tokens == budget_for(settings, saved) == CPU_READ_TOKENS
    assert budget.prompt_tokens_per_s == speed and budget.expected_first_token_s < settings.first_token_s
    (settings.home / "llm.json").unlink()  # it names this process: nothing may try to stop it


def test_a_remote_server_is_measured_once_per_process_and_shown_by_llm_status(home, monkeypatch):
    with FaultyServer(tokens_per_s=500.0) as server:
        url = server.url("timed")
        monkeypatch.setenv("HEARTH_LLM_URL", url)
        settings = load_settings()
        assert llm_server.current(settings).prompt_tokens_per_s is None  # looking a server up measures nothing
        assert server.httpd.prompts == []
        first = llm_server.with_prompt_speed(settings, llm_server.current(settings))  # a question's budget, a status
        assert first.engine == "remote" and 350 < first.prompt_tokens_per_s <= 500 and first.measured_at
        assert llm_server.current(settings).prompt_tokens_per_s == first.prompt_tokens_per_s  # kept in memory ...
        assert api.passage_budget(settings, llm_server.current(settings)).prompt_tokens_per_s == first.prompt_tokens_per_s
        assert len(server.httpd.prompts) == 2  # ... measured once
        run = run_hearth(home, "llm", "status", "--json", timeout=120, HEARTH_LLM_URL=url)
        shown = json.loads(run.stdout)
        assert run.returncode == 0 and 350 < shown["prompt_tokens_per_s"] <= 500, (run.stdout, run.stderr)
        assert shown["passage_budget"]["basis"] == "measured" and shown["passage_budget"]["tokens"] > 1000
        text = run_hearth(home, "llm", "status", timeout=120, HEARTH_LLM_URL=url).stdout
        assert "tokens/s; passages up to" in text and "for a first token within 5 s" in text, text


@pytest.fixture(autouse=True)
def _fresh_remote_speeds():
    llm_server._remote_speeds.clear()
    yield
    llm_server._remote_speeds.clear()
