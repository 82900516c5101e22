"""The support set in another language: each sentence of bench/support-set.jsonl machine-translated,
its passage left in English, to measure the support check across languages (a German sentence
resting on an English passage, in a collection that mixes them).

    .venv/bin/python bench/support_translate.py de [--every 2]  # writes bench/support-set-de.jsonl
    HEARTH_EMBED_MODEL=multilingual-e5-small .venv/bin/python bench/support.py bench/support-set-de.jsonl

The translator is Hearth's own CPU model server (Qwen2.5-Coder-1.5B), the only model here; its
translations were not read by a native speaker, and a wrong one turns a label wrong, so the figures
are a floor. Labels are kept: a falsified sentence keeps its changed number or name in translation.
"""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.language import NAMES, of_short  # noqa: E402
from ingest.settings import load_settings  # noqa: E402
from rag import llm_server  # noqa: E402


def translate(server, text: str, lang: str) -> str:
    body = {"model": server.model or "local", "temperature": 0, "max_tokens": 200, "messages": [
        {"role": "system", "content": f"Translate the user's text into {NAMES[lang]}. Keep code, commands, names "
                                      "and numbers exactly as they are. Reply with the translation alone."},
        {"role": "user", "content": text}]}
    request = urllib.request.Request(server.url + "/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        return json.load(reply)["choices"][0]["message"]["content"].strip()


def main(lang: str, every: int):
    rows = [json.loads(line) for line in (ROOT / "bench/support-set.jsonl").read_text().splitlines() if line.strip()]
    rows = rows[::every]
    path = ROOT / f"bench/support-set-{lang}.jsonl"
    done = {json.loads(line)["english"] for line in path.read_text().splitlines()} if path.exists() else set()
    settings = load_settings(home=Path(tempfile.mkdtemp(prefix="hearth-translate-")), llm_engine="llamacpp")
    server = llm_server.start(settings)
    kept = 0
    try:
        with path.open("a") as out:  # a row at a time: a stopped run goes on where it was
            for i, row in enumerate(rows, 1):
                if row["sentence"] in done:
                    continue
                text = translate(server, row["sentence"], lang)
                if of_short(text) == lang:  # a reply left in English (or garbled) would test nothing
                    out.write(json.dumps({**row, "sentence": text, "english": row["sentence"]}, ensure_ascii=False) + "\n")
                    out.flush()
                    kept += 1
                print(f"{i}/{len(rows)} {text[:90]}", flush=True)
    finally:
        llm_server.stop(settings)
    print(f"{kept} more of {len(rows)} sentences translated into {NAMES[lang]} -> {path}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lang", nargs="?", default="de")
    parser.add_argument("--every", type=int, default=1, help="translate every Nth sentence only")
    args = parser.parse_args()
    main(args.lang, args.every)
