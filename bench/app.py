"""How long `make run` takes to a usable page, and the time to first token in the app, in a real browser.

    .venv/bin/python bench/app.py

Runs `make run` twice against a fresh HEARTH_HOME on a set-up machine: the first run finds an empty
library (so it ingests data/ and cold-starts the model server), the second finds both ready. Each
time: seconds until the URL is printed, until the page is usable (chat box drawn) and until the
model server answers; then the sample questions are asked in the browser and the time to the
first streamed token and to the whole answer are measured, with the cited source checked.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402  (bench/ is on the path of a script run from it)

from ingest.settings import load_settings  # noqa: E402
from rag import llm_server  # noqa: E402

ASK = "Ask a question about your documents"

QUESTIONS = [  # each answered in data/; the second run asks other ones (no prompt-cache hits)
    [("How can I read an Excel spreadsheet in R?", "R-data.pdf"),
     ("How do I create a sequence of numbers like 1 to 30?", "R-intro.pdf"),
     ("What does the attach function do with a data frame?", "R-intro.pdf")],
    [("How do I export a data frame to a CSV file?", "R-data.pdf"),
     ("How can I read data from a relational database?", "R-data.pdf"),
     ("How do I fit a linear regression model?", "R-intro.pdf")],
]


def launch(home: Path):
    """`make run`; returns (process, url, seconds until the URL was printed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HEARTH_HOME": str(home), "HEARTH_APP_PORT": str(port)}
    started = time.perf_counter()
    proc = subprocess.Popen(["make", "-s", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    for line in proc.stdout:
        found = re.search(r"Hearth is at (http://\S+)", line)
        if found:
            return proc, found.group(1), time.perf_counter() - started, started
    raise RuntimeError("make run ended without printing the app's URL")


def measure(browser, home: Path, label: str, questions) -> dict:
    proc, url, to_url, started = launch(home)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        while True:  # the URL is printed just before streamlit binds its port
            try:
                page.goto(url)
                break
            except Exception:
                time.sleep(0.2)
        page.get_by_placeholder(ASK).wait_for(timeout=300_000)
        usable = time.perf_counter() - started
        page.get_by_text("answering").wait_for(timeout=600_000)
        answering = time.perf_counter() - started
        first, total, cited = [], [], 0
        for question, source in questions:
            page.goto(url)  # a new browser session: an empty chat, so no follow-up rewriting
            box = page.get_by_placeholder(ASK)
            box.wait_for()
            box.fill(question)
            asked = time.perf_counter()
            box.press("Enter")
            page.get_by_text("▌").first.wait_for(timeout=300_000)
            first.append(time.perf_counter() - asked)
            page.get_by_text("▌").first.wait_for(state="detached", timeout=300_000)
            page.get_by_role("button", name="Export answer").wait_for(timeout=300_000)
            total.append(time.perf_counter() - asked)
            cards = page.locator("[data-testid='stExpander']", has_text=source)
            cited += any("· cited" in cards.nth(i).inner_text() for i in range(cards.count()))
        page.close()
        return {"run": label, "url": to_url, "usable": usable, "answering": answering, "n": len(questions),
                "first": statistics.median(first), "total": statistics.median(total), "cited": cited}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main():
    print(describe(), flush=True)
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="hearth-bench-app-"))
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            rows.append(measure(browser, home, "first run (empty library)", QUESTIONS[0]))
            rows.append(measure(browser, home, "next run (library and model server ready)", QUESTIONS[1]))
            browser.close()
    finally:
        llm_server.stop(load_settings(home=home))
    print(f"\n`make run` on a set-up machine, 3 questions about data/ per run asked in Chromium "
          f"(medians; {os.cpu_count()} CPUs)")
    print("| run | URL printed | page usable | model answering | 1st token in UI | whole answer | cited source |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['url']:.1f} s | {r['usable']:.1f} s | {r['answering']:.1f} s | "
              f"{r['first']:.1f} s | {r['total']:.1f} s | {r['cited']}/{r['n']} |")


if __name__ == "__main__":
    main()
