"""Run by tests/test_private.py inside its network namespace (no way out but loopback): the library
as other tools reach it, `hearth api` through the openai client and `hearth mcp` through the MCP
SDK's stdio client, each asking the question once. Prints what they answered."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HEARTH = [sys.executable, "-m", "rag.cli"]
QUESTION = "How long must receipts be kept?"


def through_the_api():
    import openai

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(HEARTH + ["api", "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        reply = client.chat.completions.create(model="hearth:default", messages=[{"role": "user", "content": QUESTION}])
        print("api:", " ".join(reply.choices[0].message.content.split()))
    finally:
        server.terminate()
        server.wait(timeout=30)


def through_mcp():
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    async def main():
        params = StdioServerParameters(command=sys.executable, args=["-m", "rag.cli", "mcp"], env=dict(os.environ),
                                       cwd=str(Path(__file__).resolve().parent.parent))
        async with Client(params) as client:
            hits = (await client.call_tool("search", {"query": QUESTION, "k": 1})).structured_content["result"]
            print("mcp search:", os.path.basename(hits[0]["source"]), "page", hits[0]["page"])
            answer = json.loads((await client.call_tool("ask", {"question": QUESTION})).content[0].text)
            print("mcp ask:", " ".join(answer["answer"].split()))

    asyncio.run(main())


if __name__ == "__main__":
    through_the_api()
    through_mcp()
