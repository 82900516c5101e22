"""The managed model server's state file and process: one server however many ask at once, a
state file that is never half-written or thrown away, and no signal to a process Hearth did not start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from ingest.settings import load_settings
from rag import llm_server


@pytest.mark.xdist_group("model-server")  # see tests/test_answer_e2e.py
def test_two_starts_at_once_make_one_server(home):
    """Two app sessions (here two processes) press Start at the same moment: one llama.cpp server."""
    code = ("import sys; from ingest.settings import load_settings; from rag import llm_server; "
            "print(llm_server.start(load_settings(llm_engine='llamacpp'), wait=False).pid)")
    env = {"HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    pids = {int(p.communicate(timeout=120)[0]) for p in procs}
    settings = load_settings(home=home)
    try:
        assert len(pids) == 1 and llm_server.current(settings).pid == pids.pop()
        saved = json.loads((home / "llm.json").read_text())
        assert saved["proc_start"] and not list(home.glob(".llm.json.*"))  # written whole, no temp file left
    finally:
        assert llm_server.stop(settings)
    assert llm_server.current(settings) is None and not (home / "llm.json").exists()


def test_stop_never_signals_a_process_that_reused_the_pid(home):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        state = home / "llm.json"
        home.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"engine": "llamacpp", "model": "m", "url": "http://127.0.0.1:9/v1",
                                     "pid": stranger.pid, "proc_start": 1}))  # the pid lives, started later
        settings = load_settings(home=home)
        assert llm_server.stop(settings) is False and stranger.poll() is None
        assert not state.exists()  # stale, so forgotten
        state.write_text(json.dumps({"engine": "llamacpp", "model": "m", "url": "http://127.0.0.1:9/v1",
                                     "pid": stranger.pid}))  # an older file, without a start time
        assert llm_server.current(settings) is None and stranger.poll() is None  # `sleep` is no llama.cpp
    finally:
        stranger.kill()
        stranger.wait()


def test_an_unreadable_state_file_is_kept_and_explained(home):
    home.mkdir(parents=True, exist_ok=True)
    state = home / "llm.json"
    state.write_text('{"engine": "llamacpp", "pid": 12')  # as if cut off by a crash of an old version
    settings = load_settings(home=home, llm_engine="llamacpp")
    assert llm_server.current(settings) is None and state.exists()
    with pytest.raises(llm_server.ServerError, match="llm.json is not readable.*delete it"):
        llm_server.start(settings, wait=False)
    assert state.read_text().startswith('{"engine"')  # untouched, and no second server was started


def test_the_models_on_this_machine_are_listed(tmp_path, home):
    from conftest import run_hearth

    models = tmp_path / "models"
    (models / "my-vllm-model").mkdir(parents=True)
    (models / "my-vllm-model" / "config.json").write_text("{}")
    (models / "notes").mkdir()  # no config.json: not a model
    (models / "small.gguf").write_bytes(b"GGUF")
    run = run_hearth(home, "llm", "models", "--json", HEARTH_MODELS_DIR=str(models))
    assert run.returncode == 0, run.stderr
    assert [(m["name"], m["engine"], m["running"]) for m in json.loads(run.stdout)] == [
        ("small", "llamacpp", False), ("my-vllm-model", "vllm", False)]
    missing = run_hearth(home, "llm", "use", "nope", HEARTH_MODELS_DIR=str(models))
    assert missing.returncode == 2 and "no model named 'nope'" in missing.stderr


def test_a_port_being_started_on_is_not_handed_out_again(tmp_path):
    """Servers load their model before they bind: while one is starting, its port stays reserved."""
    first, lock = llm_server.reserve_port(18765)
    try:
        second, other = llm_server.reserve_port(18765)
        os.close(other)
        assert second != first
    finally:
        os.close(lock)
    again, lock = llm_server.reserve_port(18765)  # released: free again
    os.close(lock)
    assert again == first
