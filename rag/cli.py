"""`hearth`: the command line, a thin layer over rag.api (every command scriptable, `--json`)."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import List, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape as _markup_escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ingest.errors import HearthError, ServerError
from ingest.settings import load_settings
from rag import api
from rag.api import Hearth

printable = api.render.printable

app = typer.Typer(help="Hearth: private Q&A over your own documents.", no_args_is_help=True, add_completion=False)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def escape(text: str, keep: str = "\n\t") -> str:
    """For printing: Rich markup escaped, control characters (ANSI escapes from a file name or a
    document) shown as escapes. File names keep nothing, so a newline in one can't fake a line."""
    return _markup_escape(printable(text, keep))


def shown(path) -> str:
    return escape(str(path), keep="")

CollectionOpt = typer.Option(None, "--collection", "-c", help="Collection (workspace) to use [default: HEARTH_COLLECTION or 'default']")
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON on stdout")
STOPPED_EXIT = 130  # stopped by Ctrl-C, as a shell reports it
HELD_EXIT = 6  # removals held back until --allow-removal (ingest/removal.py)
DOCS_SHOWN = 200  # documents `hearth docs` draws in its table unless told (a library may hold 100,000)
OnlyOpt = typer.Option(None, "--only", help="Search only the documents at or under this file or folder (repeatable)")


def _fail(exc: Exception, code: int) -> NoReturn:
    err.print(f"[red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code)


@contextmanager
def _library(collection: str | None, **overrides):
    """The opened collection; every store error becomes its message and exit code."""
    try:
        try:
            lib = Hearth(load_settings(**overrides), collection)
        except ValueError as exc:
            _fail(exc, 2)
        try:
            yield lib
        finally:
            lib.close()
    except HearthError as exc:  # its exit status is its own (ingest/errors.py)
        _fail(exc, exc.exit_code)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


@app.command()
def ingest(
    paths: Optional[List[Path]] = typer.Argument(None, help="Files or folders to keep in the library (with "
                                                 "--retry-failed and none given: the files that failed)"),
    collection: Optional[str] = CollectionOpt,
    strict: bool = typer.Option(False, "--strict", help="Exit non-zero if any file failed"),
    force: bool = typer.Option(False, "--force", help="Re-read and re-embed every file, changed or not"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Read again the files that failed before "
                                      "(skipped while unchanged otherwise)"),
    reembed: bool = typer.Option(False, "--reembed", help="Rebuild the collection with the configured embedding model"),
    model: Optional[str] = typer.Option(
        None, "--model", help="Embedding model of a new collection (with --reembed: of the rebuilt one): auto, "
                              "all-MiniLM-L6-v2 (English), multilingual-e5-small, or a model folder [default: HEARTH_EMBED_MODEL]"),
    no_wait: bool = typer.Option(False, "--no-wait", help="Fail at once if another process is writing"),
    allow_removal: bool = typer.Option(False, "--allow-removal", help="Remove documents even where the files gone "
                                       "look like a drive away (more than half of a folder's, or its drive changed)"),
    as_json: bool = JsonOpt,
):
    """Add, update and remove documents so the collection matches PATHS (incremental). Ctrl-C stops
    within seconds, keeping every file done: the same command again goes on where it stopped."""
    if not paths and not retry_failed:
        err.print("[red]error:[/] give the files or folders to ingest (or --retry-failed alone)")
        raise typer.Exit(2)
    with _library(collection, **({"embed_model": model} if model else {})) as lib:
        if not paths:
            paths = [Path(p) for p in lib.failed_paths()]
            if not paths:
                out.print("no failed files to retry (`hearth docs` lists what failed)")
                raise typer.Exit(0)
        report = _sync(lib, paths, force, quiet=as_json, reembed=reembed, wait=0 if no_wait else None,
                       retry_failed=retry_failed, allow_removal=allow_removal)
    if as_json:
        print(json.dumps({
            "collection": lib.name, "seconds": round(report.seconds, 3), "unchanged": report.unchanged,
            "chunks_added": report.chunks_added, "repaired": report.repaired,
            "stopped": report.stopped, "left": report.left,
            "held": {path: {"count": h.count, "recorded": h.recorded, "why": h.why} for path, h in report.held.items()},
            "timings": {k: round(v, 3) for k, v in report.timings.items()},
            "files": [{"path": r.path, "status": r.status, "chunks": r.chunks, "reason": r.reason,
                       **({"previous": r.previous} if r.previous else {})} for r in report.results],
        }, indent=2))
    else:
        _print_report(report, lib.name)
    for path, kept in report.missing.items():  # a drive not mounted must not look like an empty folder
        if kept:
            err.print(f"[yellow]{shown(path)} is not there: nothing was removed; {kept} document(s) indexed under "
                      f"it are kept (`hearth remove {shown(path)}` forgets them)[/]")
    for path, hold in report.held.items():  # files gone that may be a drive away: kept until confirmed
        err.print(f"[yellow]{escape(hold.message(str(path)), keep='')}; `hearth ingest {shown(path)} --allow-removal` "
                  "removes them[/]")
    raise typer.Exit(STOPPED_EXIT if report.stopped else HELD_EXIT if report.held else report.exit_code(strict))




def _sync(lib: Hearth, paths, force: bool = False, quiet: bool = False, reembed: bool = False,
          wait: float | None = None, retry_failed: bool = False, allow_removal: bool = False):
    """Hearth.sync with a progress bar on stderr (files done of those to do, rates, pages read of PDFs and
    scans, ETA). The first
    Ctrl-C stops it within seconds keeping what is done; a second one stops at once."""
    import signal
    import threading

    progress = Progress(
        TextColumn("[bold]ingesting"), BarColumn(), MofNCompleteColumn(), TextColumn("files ·"),
        TextColumn("{task.fields[files_rate]:.1f} files/s, {task.fields[chunks]} chunks ({task.fields[rate]:.0f}/s) ·"
                   "{task.fields[pages]}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[file]}"),
        console=err, transient=True, disable=quiet,
    )
    started = time.perf_counter()
    task = progress.add_task("ingest", total=None, chunks=0, rate=0.0, files_rate=0.0, pages="", file="")
    stop = threading.Event()

    def on_file(path, done, total, chunks, pages):
        took = max(time.perf_counter() - started, 1e-6)
        progress.update(task, completed=done, total=total, chunks=chunks, rate=chunks / took, files_rate=done / took,
                        pages=f" {pages} pages ({pages / took:.1f}/s) ·" if pages else "",
                        file=shown(os.path.basename(path))[:40])

    def interrupt(*_):
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: at once (the next run repairs what it cut)
        stop.set()
        err.print("[yellow]stopping: the files done are kept; the same command goes on from there "
                  "(Ctrl-C again to stop at once)…[/]")

    handlers = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with progress:
            return lib.sync(paths, force=force, reembed=reembed, progress=on_file, wait=wait, stop=stop,
                            retry_failed=retry_failed, allow_removal=allow_removal,
                            on_wait=lambda m: err.print(f"[yellow]{escape(m)}[/]"))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _print_report(report, collection: str):
    counts = [(s, report.count(s)) for s in ("added", "updated", "moved", "copied", "removed")]
    counts += [("unchanged", report.unchanged), ("failed", len(report.failures))]
    out.print(f"[bold]collection '{escape(collection)}'[/]: "
              + " · ".join(f"{n} {name}" for name, n in counts) + f" in {report.seconds:.2f} s")
    if report.chunks_added:
        embed = report.timings["embed"]
        out.print(f"{report.chunks_added} chunks, {report.chunks_added / max(report.seconds, 1e-9):.1f} chunks/s "
                  f"(embedding alone {report.chunks_added / max(embed, 1e-9):.0f}/s); time split: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()))
    if report.repaired:
        out.print(f"[yellow]repaired {report.repaired} entries left by an interrupted run[/]")
    if report.stopped:
        out.print(f"[yellow]stopped: {report.left} file(s) left to do; run the same command to go on "
                  "(nothing done is redone)[/]")
    noted = [r for r in report.results if r.reason and r.status not in ("failed", "skipped")]
    for r in noted:
        out.print(f"[cyan]note[/] {shown(r.path)}: {escape(r.reason)}")
    if report.failures:
        problems = Table(title="not ingested", show_header=True, title_style="bold red")
        problems.add_column("file", overflow="fold")
        problems.add_column("reason", overflow="fold")
        for r in report.failures:
            problems.add_row(shown(r.path), escape(r.reason))
        out.print(problems)


@app.command()
def watch(
    folders: List[Path] = typer.Argument(..., help="Folders to keep the collection in sync with"),
    collection: Optional[str] = CollectionOpt,
):
    """Keep the collection in sync with FOLDERS, live: a full sync first, then a line per change.
    Ctrl-C stops after the change in progress."""
    import signal

    with _library(collection) as lib:
        def log(line: str):
            out.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(line, keep='')}")

        try:
            watcher = lib.watch(folders, on_change=log)
        except ValueError as exc:
            _fail(exc, 2)

        def interrupt(*_):
            if watcher.stopping:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now (the next run repairs)
            err.print("[yellow]stopping after the change in progress… (Ctrl-C again to stop at once)[/]")
            watcher.stop()

        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        watcher.run()
        log(f"stopped: {len(watcher.results)} change(s) made")


def _print_support(result):
    """Each sentence with its mark: ✓ and the quote that supports it, ✗ when nothing it cites does."""
    claims = [x for x in result.sentences if x.supported is not None]
    if not claims:
        return
    out.print(f"\n[bold]Checked[/] {sum(bool(x.supported) for x in claims)} of {len(claims)} sentences "
              "supported by the passages shown")
    for x in claims:
        sentence = " ".join(x.text.split())
        if x.supported:
            quote = x.quote if len(x.quote) <= 160 else x.quote[:157] + "…"
            judged = (" (judged by the model)" if x.judged_by == "model" else "") + (
                f" (citation {'added' if x.attributed == 'added' else 'corrected'})" if x.attributed else "")
            out.print(f" [green]✓[/] {escape(sentence)}\n     [dim][{x.n}] “{escape(quote)}”{judged}[/]")
        else:
            why = ("no passage shown supports it" if not x.citations
                   else "not supported by " + "".join(f"[{n}]" for n in x.citations) + " nor any passage shown")
            out.print(f" [red]✗[/] {escape(sentence)}  [yellow]({escape(why)})[/]")


@app.command()
def docs(
    collection: Optional[str] = CollectionOpt,
    search_text: str = typer.Option("", "--search", help="Only documents whose path holds this text (any case)"),
    sort: str = typer.Option("path", "--sort", help=f"Order by {', '.join(api.SORTS)}"),
    descending: bool = typer.Option(False, "--desc", help="Largest, latest or last first"),
    limit: Optional[int] = typer.Option(None, "--limit", min=0, help="At most this many (0: all) [default: "
                                        f"{DOCS_SHOWN} in the table, all with --json]"),
    as_json: bool = JsonOpt,
):
    """List the documents in the collection, and files that could not be ingested."""
    limit = (0 if as_json else DOCS_SHOWN) if limit is None else limit
    with _library(collection) as lib:
        try:
            records, total = lib.documents_page(search_text, sort, descending, 0, limit or 2**62)
        except ValueError as exc:
            _fail(exc, 2)
        problems = lib.problems()
    if as_json:
        print(json.dumps({
            "collection": lib.name, "total": total,
            "documents": [{"path": r.path, "pages": r.pages, "chunks": r.chunks, "size": r.size, "language": r.language,
                           "sha256": r.sha256, "indexed_at": r.indexed_at, "notes": r.notes} for r in records],
            "problems": [{"path": p, "reason": why} for p, why in problems.items()],
        }, indent=2))
        return
    title = f"{total} documents in '{escape(lib.name)}'" + (f" with '{escape(search_text)}' in the path" if search_text else "")
    table = Table(title=title, caption=(f"{len(records)} of {total} shown: --limit 0 shows all, --search and --sort find "
                                        "the others" if len(records) < total else None))
    for col, just in (("file", "left"), ("pages", "right"), ("chunks", "right"), ("size", "right"), ("language", "left"),
                      ("indexed", "left"), ("notes", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for r in records:  # notes: pages read by OCR, tables, capped sheets, re-read pages
        table.add_row(shown(r.path), str(r.pages or ""), str(r.chunks), _size(r.size), r.language or "",
                      _when(r.indexed_at), escape(r.notes or ""))
    out.print(table)
    for path, reason in problems.items():
        out.print(f"[red]not ingested[/] {shown(path)}: {escape(reason)}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


@app.command()
def remove(paths: List[Path] = typer.Argument(..., help="Files or folders to forget"),
           collection: Optional[str] = CollectionOpt, as_json: bool = JsonOpt):
    """Remove documents (at or under PATHS) from the collection; the files themselves stay."""
    with _library(collection) as lib:
        removed = lib.remove(paths, on_wait=lambda m: err.print(f"[yellow]{escape(m)}[/]"))
    if as_json:
        print(json.dumps({"removed": [{"path": r.path, "chunks": r.chunks} for r in removed]}, indent=2))
    else:
        for r in removed:
            out.print(f"removed {shown(r.path)} ({r.chunks} chunks)")
        out.print(f"{len(removed)} document(s) removed" if removed else "nothing to remove: no indexed file there")
    raise typer.Exit(0 if removed else 1)


@app.command()
def compact(as_json: bool = JsonOpt):
    """Give back the disk space that deleted and changed documents left unused (all collections)."""
    with _library(None) as lib:
        before, after = lib.compact(on_wait=lambda m: err.print(f"[yellow]{escape(m)}[/]"))
    if as_json:
        print(json.dumps({"bytes_before": before, "bytes_after": after}, indent=2))
    else:
        out.print(f"library on disk: {_size(before)} -> {_size(after)} ({_size(max(0, before - after))} given back)")


@app.command()
def search(
    query: str = typer.Argument(..., help="The query, or '-' to read one query per line from stdin"),
    k: int = typer.Option(5, "--k", "-k", min=1, max=200, help="Number of passages"),
    mode: Optional[str] = typer.Option(None, "--mode", help="hybrid, dense or keyword [default: HEARTH_RETRIEVAL, hybrid]"),
    only: Optional[List[Path]] = OnlyOpt,
    collection: Optional[str] = CollectionOpt,
    as_json: bool = JsonOpt,
):
    """Find the passages that best match QUERY. With '-' and --json: one JSON object per input line."""
    with _library(collection) as lib:
        queries = (line.rstrip("\n") for line in sys.stdin) if query == "-" else [query]
        for q in queries:
            try:
                hits = lib.search(q, k, mode=mode, only=only)
            except ValueError as exc:
                _fail(exc, 2)
            if as_json:
                print(json.dumps({"query": q, "hits": [h.to_json() for h in hits]}), flush=True)
            else:
                _print_hits(q, hits)


def _print_hits(query: str, hits):
    if not hits:
        out.print(f"no passages found for {escape(query)!r}")
        return
    for rank, h in enumerate(hits, 1):
        where = shown(h.source) + (f", page {h.page}" if h.page else "") + (" (read by OCR)" if h.ocr else "")
        out.print(f"[bold]{rank}.[/] [green]{h.score:.3f}[/] {where}"
                  + (f"  [dim]§ {escape(h.section)}[/]" if h.section else ""))
        snippet = " ".join(h.text.split())
        out.print("   " + escape(snippet[:300] + ("…" if len(snippet) > 300 else "")))


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question"),
    k: Optional[int] = typer.Option(None, "--k", "-k", min=1, max=50, help="Passages to give the model [default: HEARTH_TOP_K]"),
    collection: Optional[str] = CollectionOpt,
    export: Optional[Path] = typer.Option(None, "--export", help="Also write the answer as Markdown to this file"),
    chat: Optional[str] = typer.Option(None, "--chat", help="Continue this saved chat (`hearth chats` lists them)"),
    only: Optional[List[Path]] = OnlyOpt,
    no_save: bool = typer.Option(False, "--no-save", help="Don't save the question and answer as a chat"),
    as_json: bool = JsonOpt,
):
    """Answer QUESTION from your documents, streaming, then check each sentence against its sources.
    The answer is saved as a new chat (or into --chat ID) that the app lists too."""
    if chat and not collection:
        with api.saved_chats(load_settings()) as chats:
            found = chats.get(chat)
        if found is None:
            _fail(ValueError(f"no saved chat has the id {chat!r} (`hearth chats` lists them)"), 2)
        collection = found.collection
    with _library(collection) as lib:
        lib.load_model()  # before the answer's clock starts: its timings measure the question
        try:
            chat_id = chat or (None if no_save else lib.new_chat(question).id)
            stream = lib.ask(question, k=k, chat=chat_id, only=only)
        except ValueError as exc:
            _fail(exc, 2)
        if as_json:
            result = stream.collect()
            print(json.dumps({**result.to_json(), **({"chat": chat_id} if chat_id else {})}, indent=2))
        else:
            lead = stream.lead()
            if lead is not None:  # what the documents say, before the model's first token
                out.print(f"[bold]From the documents[/] [dim]([{lead.n}])[/]: “{escape(lead.quote)}”\n")
            for text in stream:
                out.print(escape(text), end="", soft_wrap=True)
            out.print()
            result = stream.result
            for n, attempt in enumerate(filter(None, (result, result.retry)), 1):
                if result.retry is not None:
                    out.print(f"\n[bold]{'First attempt' if n == 1 else 'Second attempt, from the next passages'}[/]")
                if attempt.mismatch:
                    out.print(f"[bold red]! {escape(api.MISMATCH_NOTE)}[/]")
                _print_sources(attempt)
            if chat_id:
                out.print(f"[dim]saved as chat {chat_id}: continue it with --chat {chat_id}[/]")
        if export:
            api.export.write(export, api.export.answer_markdown(result, lib.settings.library_dir, lib.name))
            if not as_json:
                out.print(f"[dim]exported to {shown(str(export))}[/]")
    raise typer.Exit(1 if result.error and not result.answer else 0)


@app.command()
def summarize(
    path: Path = typer.Argument(..., help="A document of the collection"),
    collection: Optional[str] = CollectionOpt,
    as_json: bool = JsonOpt,
):
    """Summarize a whole document: each part in turn (shown as it is written), then the whole, with
    page citations checked like an answer's."""
    with _library(collection) as lib:
        lib.load_model()

        def on_part(i, n, page, text):
            if not as_json:
                err.print(f"\r[dim]part {i}/{n}{f' (page {page})' if page else ''}: "
                          f"{escape(' '.join(text.split())[-100:])}[/]", end="")

        try:
            stream = lib.summarize(str(path), on_part)
        except ValueError as exc:
            _fail(exc, 2)
        if as_json:
            result = stream.collect()
            print(json.dumps(result.to_json(), indent=2))
        else:
            err.print()
            for text in stream:
                out.print(escape(text), end="", soft_wrap=True)
            out.print()
            result = stream.result
            _print_sources(result)
    raise typer.Exit(1 if result.error and not result.answer else 0)


def _print_sources(result):
    if result.error:
        err.print(f"[yellow]{escape(result.error)}[/]")
    _print_support(result)
    cited = {c.n for c in result.citations}
    if result.passages:
        out.print("\n[bold]Sources[/]" + ("" if cited else " [dim](retrieved; none cited)[/]"))
    for n, hit in enumerate(result.passages, 1):
        mark = "[green]✓[/]" if n in cited else " "
        where = shown(hit.source) + (f", page {hit.page}" if hit.page else "") + (" (read by OCR)" if hit.ocr else "")
        out.print(f" {mark} [{n}] {where}" + (f"  [dim]§ {escape(hit.section)}[/]" if hit.section else ""))
    t = result.timings
    out.print(f"[dim]{escape(result.model or 'no model')} · retrieve {t.get('retrieve_ms', 0)} ms · first token "
              f"{t.get('first_token_ms', '-')} ms · total {t.get('total_ms', 0)} ms[/]")


@app.command()
def serve(
    port: Optional[int] = typer.Option(None, "--port", help="Preferred port [default: HEARTH_APP_PORT, 8501]"),
    samples: bool = typer.Option(True, "--samples/--no-samples", help="Ingest data/ when the library is empty"),
    llm: bool = typer.Option(True, "--llm/--no-llm", help="Start the local model server in the background"),
):
    """Start the model server (in the background), add the sample documents to an empty library, and
    serve the app on 127.0.0.1. `make run` runs this."""
    from ingest.settings import PROJECT

    settings = load_settings()
    if llm and not settings.llm_url:
        try:
            info = api.start_model_server(settings, wait=False)
            out.print(f"model server: {info.engine} {escape(info.model)} at {info.url} "
                      f"(log: {escape(info.log or '-')}; `hearth llm stop` stops it)")
        except ServerError as exc:  # the app still searches; it says why it can't answer
            err.print(f"[yellow]model server not started:[/] {escape(str(exc))}")
    if samples:
        with _library(None) as lib:
            if lib.is_empty():
                out.print(f"empty library: adding the sample documents in {PROJECT / 'data'}")
                _print_report(_sync(lib, [PROJECT / "data"]), lib.name)
    port = api.free_port(port or settings.app_port)
    # rag.app_guard runs Streamlit behind a guard: only this machine's own app pages may drive it
    argv = [sys.executable, "-m", "rag.app_guard", "run", str(PROJECT / "app.py"), "--server.address", settings.app_address,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.maxUploadSize", str(max(1, int(settings.max_file_mb)))]
    out.print(f"[bold]Hearth is at http://{settings.app_address}:{port}[/] (Ctrl-C stops the app)")
    sys.stdout.flush()
    os.chdir(PROJECT)  # Streamlit reads .streamlit/config.toml from the working folder
    os.execv(sys.executable, argv)


@app.command("api")
def api_server(
    port: Optional[int] = typer.Option(None, "--port", help="Port [default: HEARTH_API_PORT, 8502]"),
    host: Optional[str] = typer.Option(None, "--host", help="Address [default: HEARTH_API_ADDRESS, 127.0.0.1]"),
):
    """Serve the library as an OpenAI-compatible API (/v1/models, /v1/chat/completions): each
    collection is a model, hearth:<collection>. Needs a model server (`hearth llm start`)."""
    from rag import openai_api

    settings = load_settings()
    host, port = host or settings.api_address, port or settings.api_port
    _serve_http(settings, host, port, lambda: openai_api.create_app(settings),
                f"OpenAI-compatible API at http://{host}:{port}/v1[/] (models: hearth:<collection>; ")


@app.command("mcp")
def mcp_server(
    http: bool = typer.Option(False, "--http", help="Streamable HTTP at http://HOST:PORT/mcp instead of stdio"),
    port: Optional[int] = typer.Option(None, "--port", help="Port for --http [default: HEARTH_API_PORT + 1, 8503]"),
    host: Optional[str] = typer.Option(None, "--host", help="Address for --http [default: HEARTH_API_ADDRESS]"),
):
    """Serve the library to MCP clients (tools: search, ask, list_documents, get_passage; documents
    as resources). Over stdio by default: the client starts this command itself."""
    from rag import mcp_server as mcp

    settings = load_settings()
    if not http:
        mcp.serve_stdio(settings)
        return
    host, port = host or settings.api_address, port or settings.api_port + 1
    _serve_http(settings, host, port, lambda: mcp.http_app(settings, host), f"MCP server at http://{host}:{port}/mcp[/] (")


def _serve_http(settings, host: str, port: int, make_app, banner: str):
    """The address checked before anything loads (exit 2 with why), then served until Ctrl-C."""
    from rag import serving

    try:
        serving.check_address(settings, host)
    except ValueError as exc:
        _fail(exc, 2)
    out.print(f"[bold]{banner}Ctrl-C stops it)")
    sys.stdout.flush()
    serving.run(make_app(), settings, host, port)


@app.command("eval")
def evaluate(
    qa_file: Path = typer.Argument(..., help='JSONL, one {"question": ..., "answer": ...} per line'),
    k: int = typer.Option(5, "--k", "-k", min=1, max=100, help="Passages retrieved per question"),
    answers: int = typer.Option(0, "--answers", help="Also ask the model the first N questions and count answers whose citations all resolve"),
    collection: Optional[str] = CollectionOpt,
    as_json: bool = JsonOpt,
):
    """Retrieval quality on a QA set: hit@1, hit@k and MRR for dense, keyword and hybrid search."""
    try:
        qa = api.load_qa(qa_file)
    except (OSError, ValueError) as exc:
        _fail(exc, 2)
    with _library(collection) as lib:
        table = lib.evaluate(qa, k)
        resolved = None
        if answers:
            try:
                resolved = lib.check_answers(qa, answers)
            except RuntimeError as exc:
                err.print(f"[yellow]answers not checked:[/] {escape(str(exc))}")
    if as_json:
        print(json.dumps({"questions": len(qa), "k": k, "modes": table,
                          **({"citations_resolve": {"ok": resolved[0], "asked": resolved[1]}} if resolved else {})}, indent=2))
        return
    out.print(f"{len(qa)} questions from {shown(str(qa_file))}, collection '{escape(lib.name)}', k={k}")
    out.print(f"| mode | hit@1 | hit@{k} | MRR |\n|---|---:|---:|---:|")
    for mode, row in table.items():
        out.print(f"| {mode} | {row['hit@1']:.3f} | {row[f'hit@{k}']:.3f} | {row['mrr']:.3f} |")
    if resolved:
        out.print(f"answers whose citations all resolve: {resolved[0]}/{resolved[1]}")


chats_app = typer.Typer(help="Saved chats (the app's and `hearth ask`'s): list, show, export, rename, delete.",
                        invoke_without_command=True)
app.add_typer(chats_app, name="chats")


@contextmanager
def _chats():
    with api.saved_chats(load_settings()) as chats:
        yield chats


def _chat_or_fail(chats, chat_id: str):
    found = chats.get(chat_id)
    if found is None:
        _fail(ValueError(f"no saved chat has the id {chat_id!r} (`hearth chats` lists them)"), 2)
    return found


@chats_app.callback()
def chats_list(
    ctx: typer.Context,
    search: str = typer.Option("", "--search", "-s", help="Only chats with these words in a title, question or answer"),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Only this collection's chats"),
    as_json: bool = JsonOpt,
):
    """List saved chats, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    with _chats() as chats:
        found = chats.list(collection, search)
    if as_json:
        print(json.dumps([c.to_json() for c in found], indent=2))
        return
    if not found:
        out.print("No saved chats" + (" match." if search else " yet: `hearth ask` and the app save them."))
        return
    table = Table("id", "title", "collection", "turns", "updated", box=None)
    for c in found:
        table.add_row(c.id, escape(c.title, keep=""), escape(c.collection), str(c.turns), _when(c.updated_at))
    out.print(table)


@chats_app.command("show")
def chats_show(chat_id: str = typer.Argument(..., help="The chat's id"), as_json: bool = JsonOpt):
    """Print a saved chat: each question, its answer and the check of its sentences."""
    with _chats() as chats:
        chat = _chat_or_fail(chats, chat_id)
        answers = chats.answers(chat_id)
    if as_json:
        print(json.dumps({**chat.to_json(), "answers": [a.to_json() for a in answers]}, indent=2))
        return
    out.print(f"[bold]{escape(chat.title, keep='')}[/] [dim]({chat.id}, collection {escape(chat.collection)})[/]")
    for a in answers:
        out.print(f"\n[bold]Q:[/] {escape(a.question)}\n{escape(a.answer)}")
        _print_sources(a)


@chats_app.command("export")
def chats_export(
    chat_id: Optional[str] = typer.Argument(None, help="The chat's id [default: every chat]"),
    to: Path = typer.Option(..., "--out", "-o", help="Markdown file (one chat) or folder (every chat)"),
):
    """Write one chat, or every chat, as Markdown with its citations."""
    settings = load_settings()
    with _chats() as chats:
        picked = [_chat_or_fail(chats, chat_id)] if chat_id else chats.list()
        written = []
        for chat in picked:
            md = api.export.chat_markdown(chats.answers(chat.id), settings.library_dir, chat.collection, chat.title)
            target = to if chat_id else to / f"hearth-chat-{chat.id}.md"
            written.append(api.export.write(target, md))
    out.print(f"{len(written)} chat{'s' if len(written) != 1 else ''} written to {shown(to)}")


@chats_app.command("rename")
def chats_rename(chat_id: str = typer.Argument(...), title: str = typer.Argument(...)):
    """Give a saved chat a new title."""
    with _chats() as chats:
        _chat_or_fail(chats, chat_id)
        try:
            chats.rename(chat_id, title)
        except ValueError as exc:
            _fail(exc, 2)
    out.print(f"renamed {chat_id}")


@chats_app.command("delete")
def chats_delete(chat_id: str = typer.Argument(...)):
    """Delete a saved chat (its documents stay)."""
    with _chats() as chats:
        _chat_or_fail(chats, chat_id)
        chats.delete(chat_id)
    out.print(f"deleted {chat_id}")


llm_app = typer.Typer(help="The local model server Hearth runs (llama.cpp on CPU, vLLM on GPU).", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("start")
def llm_start(
    engine: Optional[str] = typer.Option(None, "--engine", help="auto (vllm with an NVIDIA GPU, else llamacpp), llamacpp or vllm"),
    model: Optional[str] = typer.Option(None, "--model", help="GGUF file (llamacpp) or model folder/name (vllm)"),
    port: Optional[int] = typer.Option(None, "--port", help="Preferred port [default: HEARTH_LLM_PORT]"),
):
    """Start the model server in the background (or reuse the running one) and wait until it answers."""
    settings = load_settings(llm_model=model, llm_port=port, llm_engine=engine)
    try:
        started = time.perf_counter()
        info = api.start_model_server(settings, on_wait=lambda m: err.print(f"[dim]{escape(m)}[/]"))
    except ServerError as exc:
        _fail(exc, 1)
    speed = f"; prompt {info.prompt_tokens_per_s:,.0f} tokens/s" if info.prompt_tokens_per_s else ""
    out.print(f"{info.engine} serving {escape(info.model)} at {info.url} (pid {info.pid}; "
              f"ready in {time.perf_counter() - started:.1f} s{speed})")


@llm_app.command("models")
def llm_models(as_json: bool = JsonOpt):
    """The models Hearth can answer with (GGUF files, vLLM folders, or the remote server's list)."""
    settings = load_settings()
    choices = api.available_models(settings)
    running = api.model_server(settings)
    if as_json:
        print(json.dumps([{**c.to_json(), "running": bool(running and running.model == c.name)} for c in choices], indent=2))
        return
    if not choices:
        out.print("No models found: run `make setup`, or put GGUF files or model folders in "
                  f"{shown(settings.models_dir)}")
    for c in choices:
        mark = "[green]●[/]" if running and running.model == c.name else " "
        out.print(f" {mark} {escape(c.name)}  [dim]{c.engine} · {shown(c.model)}[/]")
    out.print("[dim]switch with: hearth llm use NAME[/]")


@llm_app.command("use")
def llm_use(name: str = typer.Argument(..., help="A model's name from `hearth llm models`")):
    """Answer with this model from now on: Hearth's own server is restarted with it."""
    settings = load_settings()
    choice = next((c for c in api.available_models(settings) if c.name == name), None)
    if choice is None:
        _fail(ValueError(f"no model named {name!r}: `hearth llm models` lists them"), 2)
    if choice.engine == "remote":
        _fail(ValueError("a remote server's model is chosen with HEARTH_LLM_MODEL"), 2)
    try:
        info = api.switch_model(settings, choice, on_wait=lambda m: err.print(f"[dim]{escape(m)}[/]"))
    except ServerError as exc:
        _fail(exc, 1)
    out.print(f"{info.engine} serving {escape(info.model)} at {info.url} (pid {info.pid})")


@llm_app.command("stop")
def llm_stop():
    """Stop the model server Hearth started."""
    out.print("stopped" if api.stop_model_server(load_settings()) else "no Hearth-managed server is running")


@llm_app.command("status")
def llm_status(as_json: bool = JsonOpt):
    """Which server Hearth would use, whether it answers, and its prompt speed and passage budget."""
    from dataclasses import asdict

    settings = load_settings()
    info = api.model_server(settings)
    state, models = api.model_server_status(settings, info) if info else ("none", None)
    up = state in ("answering", "busy")
    budget = api.passage_budget(settings, info, measure=up) if info else None
    if as_json:
        print(json.dumps({"running": info is not None, "healthy": up, "state": state, "models": models or [],
                          **(asdict(info) if info else {}),
                          **({"passage_budget": budget.to_json()} if budget else {})}, indent=2))
    elif info is None:
        out.print("no model server: start one with `hearth llm start`, or set HEARTH_LLM_URL")
    else:
        shown_state = {"answering": "[green]answering[/]", "busy": "[green]answering[/] (busy: a question waits its turn)",
                       "starting": "[yellow]starting[/]"}.get(state, "[red]not answering[/]")
        out.print(f"{info.engine} {escape(info.model)} at {info.url}: {shown_state}" + (f" (pid {info.pid})" if info.pid else ""))
        out.print(f"[dim]{escape(budget.describe())}[/]")
    raise typer.Exit(0 if up else 1)


@llm_app.command("logs")
def llm_logs(lines: int = typer.Option(40, "--lines", "-n")):
    """The end of the model server's log."""
    print(api.model_server_log(load_settings(), lines) or "no log yet")


@app.command()
def collections(as_json: bool = JsonOpt):
    """List collections with their embedding model and number of documents."""
    with _library(None) as lib:
        rows = lib.collections()
    if as_json:
        print(json.dumps([{"name": n, "embed_model": m, "dimension": d, "documents": f} for n, m, d, f in rows]))
        return
    for name, model, dim, files in rows:
        out.print(f"{escape(name)}: {files} documents, {escape(model)} ({dim} dims)")


if __name__ == "__main__":
    app()
