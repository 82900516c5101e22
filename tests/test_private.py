"""Nothing leaves the machine: ingest, search and ask (from the CLI, through `hearth api` and through
`hearth mcp`) run in a network namespace that has only a loopback interface (`unshare --net`), under
strace, and every connect/send/bind they (and the model server they start) make goes to 127.0.0.1,
::1 or a local socket."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from make_files import HOUSEHOLD, text_pdf

pytestmark = pytest.mark.slow

_ADDRESS = re.compile(r'sa_family=AF_INET6?, (?:sin6?_port=htons\((\d+)\), )?(?:sin_addr=inet_addr\("([^"]+)"\)|'
                      r'sin6_flowinfo=[^,]+, inet_pton\(AF_INET6, "([^"]+)"\))')


def _network_calls(trace: str) -> list[tuple[str, str]]:
    """(syscall, address) for every connect/sendto/sendmsg/bind to an IP address in an strace log."""
    calls = []
    for line in trace.splitlines():
        call = re.search(r"\b(connect|sendto|sendmsg|bind)\(", line)
        if call and (m := _ADDRESS.search(line)):
            calls.append((call.group(1), m.group(2) or m.group(3)))
    return calls


def test_ingest_search_and_ask_with_the_network_blocked(tmp_path):
    if not (shutil.which("unshare") and shutil.which("strace") and shutil.which("ip")):
        pytest.fail("needs unshare, strace and ip: `make test-tools` installs them")
    docs = tmp_path / "docs"
    docs.mkdir()
    text_pdf(docs / "household.pdf", HOUSEHOLD, title="Household")
    home, trace = tmp_path / "home", tmp_path / "trace.log"
    hearth = f"{shlex.quote(sys.executable)} -m rag.cli"
    script = " && ".join([
        "ip link set lo up",
        f"{hearth} ingest {shlex.quote(str(docs))}",
        f"{hearth} search 'how long to keep receipts' --k 2",
        f"{hearth} llm start --engine llamacpp",
        f"{hearth} ask 'How long must receipts be kept?'",
        f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'tests' / 'private_clients.py'))}",
        f"{hearth} llm stop",
        "python3 -c \"import socket; s = socket.socket(); s.settimeout(3); print('outside:', s.connect_ex(('1.1.1.1', 80)))\"",
    ])
    env = {**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    for var in ("HEARTH_LLM_URL", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ANONYMIZED_TELEMETRY"):
        env.pop(var, None)  # Hearth itself must keep them off, not the test's environment
    run = subprocess.run(
        ["unshare", "--net", "strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect,sendto,sendmsg,bind", "-o", str(trace),
         "sh", "-c", script], env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = " ".join(run.stdout.split())
    assert "1 added" in out and "household.pdf, page 2" in out
    assert re.search(r"\bsix\b", out.lower()), out  # the model answered from page 2
    api_said, mcp_said = out.split(" api: ")[1].split(" mcp search: ")  # the same through hearth api and mcp
    assert "six" in api_said.lower() and "household.pdf, page 2" in api_said
    assert mcp_said.startswith("household.pdf page 2") and "six" in mcp_said.split(" mcp ask: ")[1].lower()
    assert "outside: 101" in out  # ENETUNREACH: the namespace really has no way out

    calls = _network_calls(trace.read_text())
    assert ("connect", "1.1.1.1") in calls  # the trace does see an attempt to leave
    assert any(call == "connect" and addr == "127.0.0.1" for call, addr in calls)  # ask reached the server
    assert any(call == "bind" and addr == "127.0.0.1" for call, addr in calls)  # the server bound loopback
    # The probe above is the one call allowed out (and it failed); everything else stays on loopback.
    escaping = [(call, addr) for call, addr in calls if addr != "1.1.1.1" and not ipaddress.ip_address(addr).is_loopback]
    assert escaping == [], escaping
    print(f"\n{len(calls)} network calls, all to loopback; the probe to 1.1.1.1 got ENETUNREACH")
