"""Answering, and the front ends' API: api.py (the verbs the CLI and the app use), answer.py
(condense, prompt, stream, check citations), retrieval.py (search and passages), llm_server.py and
engines/ (the model server), render.py and export.py (text shown and saved safely), cli.py.
docs/design.md draws how a question goes through them."""
